"""lite-whisper: low-rank compression of Whisper's encoder, published as a Transformers model on the Hub.

The names a Python user needs (resolved on first use, so that `import lite_whisper` stays light):

    convert, ConversionOptions, RecoveryOptions, ReconstructionOptions   the method (lite_whisper.compression)
    evaluate_model                                                       WER, loops, real-time factor, sizes
    push_to_hub                                                          load check, model card, upload
    LiteWhisperConfig, LiteWhisperForConditionalGeneration, LiteWhisperModel, LiteWhisperPipeline   the model

    from lite_whisper import ConversionOptions, convert, evaluate_model, push_to_hub

    out = convert("whisper-base", "lite-base", None, ConversionOptions(target_params=0.5))
    evaluate_model(out, "test-set", language="en")
    push_to_hub(out, "org/lite-whisper-base", dry_run=True)
"""

from __future__ import annotations

from lite_whisper.lazy import lazy_names

__version__ = "0.1.0"

# Where each public name lives, by module (resolved on first use).
_PUBLIC = {name: module for module, names in {
    "lite_whisper.compression": ("convert", "ConversionOptions", "RecoveryOptions", "ReconstructionOptions"),
    "lite_whisper.evaluation.evaluate": ("evaluate_model",),
    "lite_whisper.publish.hub": ("push_to_hub",),
    "lite_whisper.modeling": ("LiteWhisperConfig", "LiteWhisperForConditionalGeneration", "LiteWhisperModel",
                              "LiteWhisperPipeline"),
}.items() for name in names}

__all__ = sorted(_PUBLIC)

__getattr__, __dir__ = lazy_names(__name__, _PUBLIC, globals())
