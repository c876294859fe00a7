"""Does the ONNX export compute what PyTorch computes? onnxruntime against PyTorch on real audio.

- Encoder: the same log-mel windows through PyTorch (the model as users run it: SDPA, the LiteWhisper fast path)
  and through `encoder_model*.onnx`; maximum absolute difference of `last_hidden_state`.
- Decoder: PyTorch's greedy tokens (`generate`, num_beams=1), then teacher forcing through
  `decoder_model_merged*.onnx` the way transformers.js drives it: the prompt in one call without past
  (`use_cache_branch` false, empty past tensors), then one token per call with the returned keys/values (the
  cross-attention ones kept from the first call). Both branches of the `If` run; every position's logits are
  compared with PyTorch's logits for the same tokens (maximum absolute difference), and so is their argmax.

Tolerances (the export fails beyond them), relative to the size of what is compared (the largest absolute value of
PyTorch's output): Whisper's activations grow with the model (max |encoder output| is 13 for tiny.en, 24 for base)
and float32 rounding with them. fp32: 1e-3 of that scale for the encoder output and the logits, and every greedy
token equal. Measured on tiny.en: lite (SVD) encoder 3.3e-4 absolute, dense 2.4e-3 (onnxruntime's plain softmax
attention; PyTorch's eager attention is as far from a float64 reference, 1.5e-3), logits ~5e-5; a 5% error in one
factor of one projection moves the encoder output by 0.6. fp16 and q8 change the arithmetic itself: their bound is
on what decoding sees, the share of positions whose argmax (the greedy token) equals PyTorch's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from transformers.utils import logging as hf_logging

from lite_whisper.interop.onnx.layout import DECODER, ENCODER, SUFFIXES
from lite_whisper.whisper import is_english_only

TOLERANCES = {  # *_relative: max abs difference / max abs value of PyTorch's output; None: not bounded
    "fp32": {"encoder_relative": 1e-3, "logits_relative": 1e-3, "argmax_agreement": 1.0},
    "fp16": {"encoder_relative": None, "logits_relative": None, "argmax_agreement": 0.95},
    "q8": {"encoder_relative": None, "logits_relative": None, "argmax_agreement": 0.9},
}
MAX_NEW_TOKENS = 48


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _prompt_length(tokens, eos: int) -> int:
    """Leading special tokens (ids >= end-of-text) of the first sequence: the decoder prompt, at least 1."""
    n = 0
    while n < tokens.shape[1] - 1 and int(tokens[0, n]) >= eos and int(tokens[0, n]) != eos:
        n += 1
    return max(n, 1)


def run_decoder(session, tokens: np.ndarray, hidden: np.ndarray, config, prompt: int) -> np.ndarray:
    """Teacher-forced logits [batch, length, vocab] of `tokens` through a merged decoder, as transformers.js runs it."""
    heads = config.decoder_attention_heads
    head_dim = config.d_model // heads
    names = [i.name for i in session.get_inputs() if i.name.startswith("past_key_values.")]
    batch = tokens.shape[0]
    past = {n: np.zeros((batch, heads, 0, head_dim), np.float32) for n in names}
    logits = []
    start, stop = 0, prompt
    while start < tokens.shape[1]:
        feeds = {"input_ids": tokens[:, start:stop].astype(np.int64), "encoder_hidden_states": hidden,
                 "use_cache_branch": np.array([start > 0]), **past}
        outputs = dict(zip([o.name for o in session.get_outputs()], session.run(None, feeds)))
        logits.append(outputs["logits"])
        for name in names:
            present = outputs[name.replace("past_key_values.", "present.")]
            if not (start > 0 and ".encoder." in name):  # transformers.js keeps the first step's cross keys/values
                past[name] = present
        start, stop = stop, stop + 1
    return np.concatenate(logits, axis=1)


def pytorch_reference(model, feature_extractor, audio: list, max_new_tokens: int = MAX_NEW_TOKENS) -> dict:
    """What PyTorch computes on `audio` (16 kHz arrays): log-mel features, encoder output, greedy tokens (with the
    decoder prompt) and the logits at every position of those tokens. Computed once, compared with every dtype."""
    features = feature_extractor(audio, sampling_rate=16_000, return_tensors="pt").input_features.float()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # generate()'s deprecation notes about Whisper's own generation config
    try:
        return _reference(model, features, len(audio), max_new_tokens)
    finally:
        hf_logging.set_verbosity(verbosity)


def _reference(model, features: torch.Tensor, clips: int, max_new_tokens: int) -> dict:
    with torch.inference_mode():
        hidden = model.get_encoder()(features).last_hidden_state
        kwargs = {"task": "transcribe", "language": "en"} if not is_english_only(model) else {}
        tokens = model.generate(features, num_beams=1, do_sample=False, max_new_tokens=max_new_tokens,
                                return_dict_in_generate=True, **kwargs).sequences  # with the decoder prompt
        if tokens[0, 0] != model.config.decoder_start_token_id:
            raise RuntimeError("generate() did not return the decoder prompt; cannot teacher-force")
        logits = model(encoder_outputs=(hidden,), decoder_input_ids=tokens).logits
    return {"features": features.numpy(), "hidden": hidden.numpy(), "tokens": tokens.numpy(),
            "logits": logits.numpy(), "prompt": _prompt_length(tokens, model.config.eos_token_id),
            "config": model.config, "clips": clips}


def check_export(folder: str | Path, reference: dict, dtype: str) -> dict:
    """Compare the `dtype` files in `folder` with PyTorch (`pytorch_reference`); a dict with the differences,
    the bounds and `passed`."""
    folder = Path(folder)
    suffix = SUFFIXES[dtype]
    hidden, tokens, logits = reference["hidden"], reference["tokens"], reference["logits"]
    onnx_hidden = _session(folder / f"{ENCODER}{suffix}.onnx").run(None, {"input_features": reference["features"]})[0]
    onnx_logits = run_decoder(_session(folder / f"{DECODER}{suffix}.onnx"), tokens, hidden, reference["config"],
                              reference["prompt"])
    agreement = float((onnx_logits.argmax(-1) == logits.argmax(-1)).mean())
    result = {
        "dtype": dtype,
        "clips": reference["clips"],
        "decoded_positions": int(tokens.size),
        "prompt_tokens": reference["prompt"],
        "encoder_max_abs_diff": float(np.abs(onnx_hidden - hidden).max()),
        "encoder_max_abs": float(np.abs(hidden).max()),
        "logits_max_abs_diff": float(np.abs(onnx_logits - logits).max()),
        "logits_max_abs": float(np.abs(logits).max()),
        "argmax_agreement": agreement,
        "tolerance": TOLERANCES[dtype],
    }
    problems = []
    for part in ("encoder", "logits"):
        relative = TOLERANCES[dtype][f"{part}_relative"]
        bound = None if relative is None else relative * result[f"{part}_max_abs"]
        result[f"{part}_bound"] = bound
        if bound is not None and result[f"{part}_max_abs_diff"] > bound:
            problems.append(f"{part} max abs diff {result[f'{part}_max_abs_diff']:.2e} > {bound:.2e} "
                            f"({relative:g} x max |PyTorch {part}| {result[f'{part}_max_abs']:.3g})")
    if agreement < TOLERANCES[dtype]["argmax_agreement"]:
        problems.append(f"greedy-token agreement {agreement:.1%} < {TOLERANCES[dtype]['argmax_agreement']:.0%}")
    result["passed"] = not problems

    def diff(part: str) -> str:
        bound = result[f"{part}_bound"]
        return f"{result[f'{part}_max_abs_diff']:.2e}" + (f" (bound {bound:.1e})" if bound is not None else "")

    result["summary"] = (f"{dtype}: encoder max abs diff {diff('encoder')}, logits max abs diff {diff('logits')}, "
                         f"greedy-token agreement {agreement:.1%} over "
                         f"{result['decoded_positions']} positions" + (f" -- FAILED: {'; '.join(problems)}"
                                                                         if problems else ""))
    return result


__all__ = ["MAX_NEW_TOKENS", "TOLERANCES", "check_export", "pytorch_reference", "run_decoder"]
