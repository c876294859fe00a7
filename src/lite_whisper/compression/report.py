"""conversion.json: what a conversion did (method, options, ranks, energy kept, sensitivity, recovery, sizes)."""

from __future__ import annotations

import hashlib
import resource
from dataclasses import asdict
from pathlib import Path

from lite_whisper.compression import budget as budget_mod
from lite_whisper.compression.budget import low_rank_config
from lite_whisper.compression.options import ConversionOptions
from lite_whisper.modeling import PROJECTIONS



def folder_hash(path: str | Path) -> str | None:
    """SHA-256 of a local model folder's weights (None for a Hub id)."""
    path = Path(path)
    if not path.is_dir():
        return None
    digest = hashlib.sha256()
    for f in sorted(path.glob("*.safetensors")):
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 24), b""):
                digest.update(chunk)
    return digest.hexdigest()


def conversion_report(base, config, result, options: ConversionOptions, num_samples: int, seconds: float) -> dict:
    """conversion.json of a pipeline's CompressionResult."""
    dense_params = budget_mod.encoder_params(config)
    lite_params = budget_mod.encoder_params(config, result.ranks)
    flops_ratio = budget_mod.encoder_flops(config) / budget_mod.encoder_flops(config, result.ranks)
    layers = config.encoder_layers
    return {
        "base_model": str(base),
        "base_model_sha256": folder_hash(base),
        "method": "lite-whisper " + {"oneshot": "one-shot"}.get(options.pipeline, options.pipeline)
        + (" threshold" if options.threshold else " budget"),
        "pipeline": options.pipeline,
        "options": asdict(options),
        "num_samples": num_samples,
        "low_rank_config": low_rank_config(layers, result.ranks),
        "energy_kept": [{p: round(result.energy[(i, p)], 6) for p in PROJECTIONS} for i in range(layers)],
        "sensitivity": [{p: result.gains.get((i, p)) for p in PROJECTIONS} for i in range(layers)] if result.gains else None,
        "reconstruction": result.reconstruction or None,
        "recovery": result.recovery or None,
        "rounds": result.rounds or None,
        "encoder_params": lite_params,
        "encoder_params_original": dense_params,
        "encoder_params_fraction": lite_params / dense_params,
        "encoder_flops_speedup": flops_ratio,
        "seconds": round(seconds, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
