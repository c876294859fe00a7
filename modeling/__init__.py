"""The Hub payload: the code files uploaded next to a LiteWhisper checkpoint's weights.

The package imports these very files as `lite_whisper.modeling` (one source of truth); this `__init__.py` is
package glue only and is not uploaded.
"""

from .configuration_lite_whisper import PROJECTIONS, LiteWhisperConfig, projection_shape, validate_low_rank_config
from .modeling_lite_whisper import (
    PROJECTION_MODULES,
    LiteWhisperEncoder,
    LiteWhisperEncoderLayer,
    LiteWhisperForConditionalGeneration,
    LiteWhisperModel,
    LowRankLinear,
    get_projection,
    set_projection,
)
from .pipeline_lite_whisper import LiteWhisperPipeline

# The files uploaded with every LiteWhisper checkpoint, in this folder.
CODE_FILES = ("configuration_lite_whisper.py", "modeling_lite_whisper.py", "pipeline_lite_whisper.py")

__all__ = [
    "CODE_FILES",
    "PROJECTIONS",
    "PROJECTION_MODULES",
    "LiteWhisperConfig",
    "LiteWhisperEncoder",
    "LiteWhisperEncoderLayer",
    "LiteWhisperForConditionalGeneration",
    "LiteWhisperModel",
    "LiteWhisperPipeline",
    "LowRankLinear",
    "get_projection",
    "projection_shape",
    "set_projection",
    "validate_low_rank_config",
]
