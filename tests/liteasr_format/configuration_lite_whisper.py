# Test fixture: a configuration file in the format of the efficient-speech/lite-whisper-* (LiteASR) Hub repos, as
# their auto_map names it. Written for the tests from the format (not our modeling/ code): a WhisperConfig with
# model_type "lite-whisper" and `low_rank_config`, one {projection: rank} dict per encoder layer, unvalidated.
from transformers import WhisperConfig


class LiteWhisperConfig(WhisperConfig):
    model_type = "lite-whisper"

    def __init__(self, low_rank_config=None, **kwargs):
        super().__init__(**kwargs)
        self.low_rank_config = low_rank_config
