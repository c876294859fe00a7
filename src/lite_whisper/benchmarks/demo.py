"""The whole job on a real Whisper, offline: import tiny.en from its PyPI package -> convert at a budget with
`convert`'s defaults (the calibration pool, the same options as `lite-whisper convert --target-params`) ->
evaluate original and lite on human English (`real-en` read and conversational speech) and on a synthesized set
-> side-by-side table -> model card with plots -> push dry-run. `make demo` runs it; every step is the package's
own function, as the CLI calls them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lite_whisper.compression import ConversionOptions
from lite_whisper.compression import convert
from lite_whisper.data import assets
from lite_whisper.evaluation.evaluate import evaluate_model, format_timing, timed_beside
from lite_whisper.interop.pypi_whisper import whisper_model
from lite_whisper.publish.card import results_table, timing_note
from lite_whisper.publish.hub import push_to_hub
from lite_whisper.whisper import quiet_whisper_generate_note


REAL_SETS = ("real-en-read", "real-en-mfa")  # human English (docs/real-speech.md); never in the calibration pool


def demo_options(target_params: float) -> ConversionOptions:
    """The demo's conversion: `ConversionOptions` with only the budget set, as `lite-whisper convert --target-params`
    and `convert()` resolve it (one default everywhere: the pool, its size, the fits and the recovery)."""
    return ConversionOptions(target_params=target_params)


def run(target_params: float, num_test: int, output: Path, repo_id: str) -> Path:
    step = lambda text: print(f"\n== {text}", flush=True)  # noqa: E731
    step("import whisper tiny.en from its PyPI package (CTranslate2 -> transformers)")
    base = whisper_model("tiny.en")
    step(f"build the human English test sets ({', '.join(REAL_SETS)}) and {num_test} synthesized test clips")
    real = {name: assets.real_speech_set(name) for name in REAL_SETS}
    test = assets.speech_set("test", num_test, seed=2)

    lite_dir = output / f"lite-whisper-tiny.en-p{round(target_params * 100)}"
    options = demo_options(target_params)
    step(f"convert at {target_params:.0%} of the encoder's parameters with convert's defaults "
         f"({options.resolved().pipeline}, the calibration pool) -> {lite_dir}")
    convert(base, lite_dir, None, options, overwrite=True)

    step("evaluate the original and the lite model (greedy decoding, Whisper English normalizer); time both warm, "
         "alternating batch by batch, on the synthesized set")
    original = evaluate_model(base, test, label="whisper-tiny.en (original)", timing_repeats=0)
    lite = evaluate_model(lite_dir, test, label=lite_dir.name, baseline=base)
    results = [timed_beside(original, lite), lite]  # the original's time: the same interleaved runs
    for name, folder in real.items():  # WER only: the speed is the synthesized set's interleaved measurement
        results += [evaluate_model(base, folder, language="en", label="whisper-tiny.en (original)",
                                   timing_repeats=0),
                    evaluate_model(lite_dir, folder, language="en", label=lite_dir.name, timing_repeats=0)]
    print("\n" + results_table(results))
    print("\n" + timing_note(results[:2]) + ":")
    print("\n".join(format_timing(lite["timing"])[1:]))

    step(f"model card with plots, and a push dry-run to {repo_id}")
    pushed = push_to_hub(lite_dir, repo_id, dry_run=True, results=results, base_model="openai/whisper-tiny.en")
    print(f"model card: {pushed.card}")
    for path, size in pushed.files:
        print(f"  would upload {size:>12,}  {path}")
    return lite_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target-params", type=float, default=0.7, help="fraction of encoder parameters to keep")
    parser.add_argument("--num-test", type=int, default=48, help="synthesized evaluation clips (default: 48)")
    parser.add_argument("--output", type=Path, default=Path("outputs"), help="where the lite model goes")
    parser.add_argument("--repo-id", default="your-org/lite-whisper-tiny.en", help="repo id for the card/dry-run")
    args = parser.parse_args(argv)
    quiet_whisper_generate_note()  # transformers' note about its own call inside Whisper's generate()
    run(args.target_params, args.num_test, args.output, args.repo_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
