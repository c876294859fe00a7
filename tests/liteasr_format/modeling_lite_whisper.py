# Test fixture: a modeling file in the format of the efficient-speech/lite-whisper-* (LiteASR) Hub repos. Written for
# the tests from the format (not our modeling/ code): each projection listed in `low_rank_config` becomes
# x @ weight1 [in, rank] @ weight2 [rank, out] + bias; the model classes take the low-rank config as a constructor
# argument; only the top class has `config_class` (auto_map maps AutoModel to it). No fast path, no strict loading.
import torch
from torch import nn
from transformers.models.whisper.modeling_whisper import (
    WhisperEncoder,
    WhisperEncoderLayer,
    WhisperForConditionalGeneration,
    WhisperModel,
)

from .configuration_lite_whisper import LiteWhisperConfig


class LinearLowRank(nn.Module):
    def __init__(self, in_features, out_features, rank):
        super().__init__()
        self.weight1 = nn.Parameter(torch.randn(in_features, rank))
        self.weight2 = nn.Parameter(torch.randn(rank, out_features))
        self.bias = nn.Parameter(torch.zeros(out_features))

    def forward(self, x):
        return (x @ self.weight1) @ self.weight2 + self.bias


class LiteWhisperEncoderLayer(WhisperEncoderLayer):
    def __init__(self, config, ranks):
        super().__init__(config)
        width, ffn = self.embed_dim, config.encoder_ffn_dim
        shapes = {"q_proj": (width, width), "k_proj": (width, width), "v_proj": (width, width),
                  "out_proj": (width, width), "fc1": (width, ffn), "fc2": (ffn, width)}
        for name, rank in ranks.items():
            low_rank = LinearLowRank(*shapes[name], rank)
            if name in ("fc1", "fc2"):
                setattr(self, name, low_rank)
            else:
                setattr(self.self_attn, name, low_rank)


class LiteWhisperEncoder(WhisperEncoder):
    def __init__(self, config, low_rank_config):
        super().__init__(config)
        self.layers = nn.ModuleList(
            [LiteWhisperEncoderLayer(config, low_rank_config[i]) for i in range(config.encoder_layers)]
        )


class LiteWhisperModel(WhisperModel):
    def __init__(self, config, low_rank_config):
        super().__init__(config)
        self.encoder = LiteWhisperEncoder(config, low_rank_config)


class LiteWhisperForConditionalGeneration(WhisperForConditionalGeneration):
    config_class = LiteWhisperConfig

    def __init__(self, config):
        super().__init__(config)
        self.model = LiteWhisperModel(config, config.low_rank_config)
