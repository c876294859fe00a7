"""A checkpoint in the format of the efficient-speech/lite-whisper-* (LiteASR) Hub repos, built from real tiny.en.

As those repos hold it: config.json with model_type "lite-whisper", `low_rank_config`, `auto_map` for AutoConfig
and AutoModel only, torch_dtype float16; model.safetensors in float16 with `weight1` [in, rank], `weight2`
[rank, out] and `bias` for each factorized projection and no `proj_out.weight` (tied); their own configuration and
modeling files (tests/liteasr_format/, written from the format); a minimal generation_config.json; no processor,
tokenizer or feature-extractor files. The factors are exact truncated SVDs of tiny.en's projections.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

import modeling_support as support

CODE = Path(__file__).parent / "liteasr_format"
# In the style of the efficient-speech checkpoints (multiples of 16, some projections left dense), mild enough
# for tiny.en to keep transcribing without calibration.
LITEASR_RANKS = [
    {"q_proj": 192, "k_proj": 192, "v_proj": 256, "out_proj": 256, "fc1": 320, "fc2": 320},
    {"k_proj": 192, "v_proj": 256, "fc1": 320},
    {"q_proj": 192, "out_proj": 256, "fc2": 320},
    {"fc1": 336, "fc2": 336},
]
MINIMAL_GENERATION_CONFIG = {"bos_token_id": 50257, "decoder_start_token_id": 50257, "eos_token_id": 50256,
                             "pad_token_id": 50256, "transformers_version": "4.46.3"}


def liteasr_folder(tiny_en_dir: Path, folder: Path, ranks: list[dict[str, int]] = LITEASR_RANKS) -> Path:
    support.write_efficient_speech_checkpoint(tiny_en_dir, folder, ranks, torch.float16)
    (folder / "generation_config.json").write_text(json.dumps(MINIMAL_GENERATION_CONFIG, indent=2))
    for name in ("configuration_lite_whisper.py", "modeling_lite_whisper.py"):
        shutil.copyfile(CODE / name, folder / name)
    return folder
