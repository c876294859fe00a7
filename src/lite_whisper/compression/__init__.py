"""The method, and only the method: low-rank compression of Whisper's encoder.

The data flows down these modules, in this order:

    options.py         what to do (ConversionOptions, ReconstructionOptions, RecoveryOptions)
    validation.py      whether the inputs allow it, checked in seconds before any expensive work
    statistics.py      calibration statistics of each projection (covariances; one-shot or paired passes)
    activations.py     encoder activations memory-mapped on disk (reconstruction's inputs)
    ranks.py           rank choice: energy thresholds (LiteASR), greedy budget allocation
    budget.py          encoder parameters and FLOPs at given ranks; budgets from targets
    sensitivity.py     measured gain of each projection
    allocation.py      rank choosers called during the pass (threshold, budget)
    factors.py         statistics -> factors (PCA or reduced-rank regression)
    reconstruction.py  block-wise reconstruction of each compressed layer
    recovery.py        decoder-aware recovery (distillation through the frozen decoder); augment.py its audio
    quality.py         the quality check that ends a conversion
    lite_model.py      a LiteWhisper built from a Whisper + factors, saved as a folder
    report.py          conversion.json
    conversion.py      the orchestration (convert) of the steps above
    pipelines/         ways of compressing (oneshot, sequential, iterative), a registry by name
    distributed.py     several processes through accelerate
    types.py           Key, Rank, Factors, FactorTable, RankTable: the one declaration of each

Tools around the method (evaluation, publish, interop, benchmarks, cli) import it only through the names below,
resolved on first use so that importing this package (say, for ConversionOptions) does not import torch.
"""

from __future__ import annotations

from lite_whisper.lazy import lazy_names

_PUBLIC = {
    "convert": ".conversion",
    "projection_budget": ".budget",
    "ConversionOptions": ".options",
    "ReconstructionOptions": ".options",
    "RecoveryOptions": ".options",
    "AUTO_RECONSTRUCTION_BELOW": ".options",
    "add_arguments": ".options",
    "from_arguments": ".options",
    "seconds_or_auto": ".options",
    "switched": ".options",
    "parse_threshold": ".ranks",
    "validate_inputs": ".validation",
    "DEFAULT_POOL_SIZE": ".validation",
    "check_base_model": ".validation",
    "check_output": ".validation",
    "checkpoint_shapes": ".validation",
    "compare_shapes": ".validation",
    "dimension_problems": ".validation",
    "expected_shapes": ".validation",
    "encoder_params": ".budget",
    "encoder_flops": ".budget",
    "lite_config_from_whisper": ".lite_model",
    "save_lite_whisper": ".lite_model",
    "set_fast_path": ".lite_model",
    "needs_launch": ".distributed",
    "relaunch": ".distributed",
    "is_main_process": ".distributed",
}

__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_names(__name__, _PUBLIC, globals())
