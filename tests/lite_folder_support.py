"""A real LiteWhisper folder for the evaluation and publishing tests, built once into the test cache.

tiny.en with every encoder projection truncated by exact SVD: a genuine low-rank model that still transcribes
the synthesized speech (so decoding stays short), built with the package's own `build_lite_whisper` and
`save_lite_whisper` (atomic, so a cached folder is always complete).
"""

from __future__ import annotations

from pathlib import Path

LITE_RANKS = {"q_proj": 192, "k_proj": 192, "v_proj": 256, "out_proj": 256, "fc1": 320, "fc2": 320}


def lite_tiny_en(tiny_en_dir: Path) -> Path:
    """The cached LiteWhisper folder of tiny.en at LITE_RANKS (beside tiny_en_dir)."""
    from lite_whisper.data.assets import cached

    def build(out: Path) -> None:
        from transformers import WhisperForConditionalGeneration

        from lite_whisper.compression.lite_model import build_lite_whisper, save_lite_whisper, svd_factors

        whisper = WhisperForConditionalGeneration.from_pretrained(tiny_en_dir)
        ranks = [dict(LITE_RANKS) for _ in range(whisper.config.encoder_layers)]
        save_lite_whisper(build_lite_whisper(whisper, svd_factors(whisper, ranks)), out, tiny_en_dir)

    return cached(tiny_en_dir.parent / f"{tiny_en_dir.name}-lite-svd-{code_version()}", build)


def code_version() -> str:
    """A short hash of the Hub payload's code files: a cached LiteWhisper folder carries copies of them, so one
    written by other code is not reused."""
    import hashlib

    from lite_whisper import modeling

    digest = hashlib.sha256()
    for name in modeling.CODE_FILES:
        digest.update((Path(modeling.__file__).parent / name).read_bytes())
    return digest.hexdigest()[:10]


def linked_copy(folder: Path, target: Path) -> Path:
    """`target` with a symlink to every file of `folder`: a writable stand-in (for README, plots) sharing weights."""
    target.mkdir(parents=True)
    for f in folder.iterdir():
        if f.is_file():
            (target / f.name).symlink_to(f.resolve())
    return target


_MEASURED: dict[tuple[str, str, int], dict] = {}


def measured(folder: Path, dataset: Path, max_samples: int) -> dict:
    """`evaluate_model` on the first utterances of `dataset`, once per process (tests share the result)."""
    from lite_whisper.evaluation.evaluate import evaluate_model

    key = (str(folder), str(dataset), max_samples)
    if key not in _MEASURED:
        _MEASURED[key] = evaluate_model(folder, dataset, max_samples=max_samples, batch_size=4, progress=False)
    return _MEASURED[key]
