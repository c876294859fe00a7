"""The whole job on a real Whisper, offline: import tiny.en from its PyPI package -> synthesize calibration and
evaluation sets -> convert at a budget -> evaluate original and lite -> side-by-side table -> model card with
plots -> push dry-run. `make demo` runs it; every step is the package's own function, as the CLI calls them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .card import results_table, timing_note
from .convert import convert
from .data import assets
from .evaluation import evaluate_model, format_timing, timed_beside
from .hub import push_to_hub
from .options import ConversionOptions
from .whisper import quiet_whisper_generate_note


def run(target_params: float, num_calibration: int, num_test: int, output: Path, repo_id: str) -> Path:
    step = lambda text: print(f"\n== {text}", flush=True)  # noqa: E731
    step("import whisper tiny.en from its PyPI package (CTranslate2 -> transformers)")
    base = assets.whisper_model("tiny.en")
    step(f"synthesize {num_calibration} calibration and {num_test} evaluation clips (disjoint sentences)")
    calibration = assets.speech_set("calibration", num_calibration, seed=1)
    test = assets.speech_set("test", num_test, seed=2)

    lite_dir = output / f"lite-whisper-tiny.en-p{round(target_params * 100)}"
    step(f"convert at {target_params:.0%} of the encoder's parameters -> {lite_dir}")
    convert(base, lite_dir, str(calibration), ConversionOptions(target_params=target_params,
                                                                num_samples=num_calibration), overwrite=True)

    step("evaluate the original and the lite model (greedy decoding, Whisper English normalizer); time both warm, "
         "alternating batch by batch")
    original = evaluate_model(base, test, label="whisper-tiny.en (original)", timing_repeats=0)
    lite = evaluate_model(lite_dir, test, label=lite_dir.name, baseline=base)
    original = timed_beside(original, lite)  # the same interleaved runs
    print("\n" + results_table([original, lite]))
    print("\n" + timing_note([original, lite]) + ":")
    print("\n".join(format_timing(lite["timing"])[1:]))

    step(f"model card with plots, and a push dry-run to {repo_id}")
    pushed = push_to_hub(lite_dir, repo_id, dry_run=True, results=[original, lite], base_model="openai/whisper-tiny.en")
    print(f"model card: {pushed.card}")
    for path, size in pushed.files:
        print(f"  would upload {size:>12,}  {path}")
    return lite_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target-params", type=float, default=0.7, help="fraction of encoder parameters to keep")
    parser.add_argument("--num-calibration", type=int, default=32, help="calibration clips (default: 32)")
    parser.add_argument("--num-test", type=int, default=48, help="evaluation clips (default: 48)")
    parser.add_argument("--output", type=Path, default=Path("outputs"), help="where the lite model goes")
    parser.add_argument("--repo-id", default="your-org/lite-whisper-tiny.en", help="repo id for the card/dry-run")
    args = parser.parse_args(argv)
    quiet_whisper_generate_note()  # transformers' note about its own call inside Whisper's generate()
    run(args.target_params, args.num_calibration, args.num_test, args.output, args.repo_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
