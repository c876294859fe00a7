"""Does the ONNX export compute what PyTorch computes? onnxruntime against PyTorch on real audio.

- Encoder: the same log-mel windows through PyTorch (the model as users run it: SDPA, the LiteWhisper fast path)
  and through `encoder_model*.onnx`; maximum absolute difference of `last_hidden_state`.
- Decoder: PyTorch's greedy tokens (`generate`, num_beams=1), then teacher forcing through
  `decoder_model_merged*.onnx` the way transformers.js drives it: the prompt in one call without past
  (`use_cache_branch` false, empty past tensors), then one token per call with the returned keys/values (the
  cross-attention ones kept from the first call). Both branches of the `If` run; every position's logits are
  compared with PyTorch's logits for the same tokens (maximum absolute difference), and so is their argmax.

Tolerances (the export fails beyond them). fp32: encoder outputs are O(1-10), logits O(10); the paths differ only
in the order of float operations (measured ~1e-4 on tiny.en), while a wrong weight or mask moves them by >1e-1.
fp16 and q8 change the arithmetic itself: their bound is on what decoding sees, the share of positions whose
argmax (the greedy token) equals PyTorch's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

TOLERANCES = {
    "fp32": {"encoder_max_abs": 1e-3, "logits_max_abs": 5e-3, "argmax_agreement": 1.0},
    "fp16": {"encoder_max_abs": None, "logits_max_abs": None, "argmax_agreement": 0.95},
    "q8": {"encoder_max_abs": None, "logits_max_abs": None, "argmax_agreement": 0.9},
}
MAX_NEW_TOKENS = 48


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _prompt_length(tokens: torch.Tensor, eos: int) -> int:
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


def check_export(folder: str | Path, model, feature_extractor, audio: list, dtype: str,
                 max_new_tokens: int = MAX_NEW_TOKENS) -> dict:
    """Compare the `dtype` files in `folder` with `model` (PyTorch) on `audio` (16 kHz arrays, log-mel features
    from `feature_extractor`); a dict with the differences, the tolerances and `passed`."""
    from .onnx_export import DECODER, ENCODER, SUFFIXES

    folder = Path(folder)
    suffix = SUFFIXES[dtype]
    features = feature_extractor(audio, sampling_rate=16_000, return_tensors="pt").input_features.float()
    with torch.inference_mode():
        hidden = model.get_encoder()(features).last_hidden_state
        kwargs = {"task": "transcribe", "language": "en"} if model.generation_config.is_multilingual else {}
        tokens = model.generate(features, num_beams=1, do_sample=False, max_new_tokens=max_new_tokens,
                                return_dict_in_generate=True, **kwargs).sequences  # with the decoder prompt
        if tokens[0, 0] != model.config.decoder_start_token_id:
            raise RuntimeError("generate() did not return the decoder prompt; cannot teacher-force")
        logits = model(encoder_outputs=(hidden,), decoder_input_ids=tokens).logits.numpy()
    hidden = hidden.numpy()

    onnx_hidden = _session(folder / f"{ENCODER}{suffix}.onnx").run(None, {"input_features": features.numpy()})[0]
    prompt = _prompt_length(tokens, model.config.eos_token_id)
    onnx_logits = run_decoder(_session(folder / f"{DECODER}{suffix}.onnx"), tokens.numpy(), hidden, model.config,
                              prompt)
    agreement = float((onnx_logits.argmax(-1) == logits.argmax(-1)).mean())
    result = {
        "dtype": dtype,
        "clips": len(audio),
        "decoded_positions": int(tokens.numel()),
        "prompt_tokens": prompt,
        "encoder_max_abs_diff": float(np.abs(onnx_hidden - hidden).max()),
        "encoder_max_abs": float(np.abs(hidden).max()),
        "logits_max_abs_diff": float(np.abs(onnx_logits - logits).max()),
        "logits_max_abs": float(np.abs(logits).max()),
        "argmax_agreement": agreement,
        "tolerance": TOLERANCES[dtype],
    }
    problems = []
    for key, measured in (("encoder_max_abs", "encoder_max_abs_diff"), ("logits_max_abs", "logits_max_abs_diff")):
        bound = TOLERANCES[dtype][key]
        if bound is not None and result[measured] > bound:
            problems.append(f"{measured} {result[measured]:.2e} > {bound:.0e}")
    if agreement < TOLERANCES[dtype]["argmax_agreement"]:
        problems.append(f"greedy-token agreement {agreement:.1%} < {TOLERANCES[dtype]['argmax_agreement']:.0%}")
    result["passed"] = not problems
    result["summary"] = (f"{dtype}: encoder max abs diff {result['encoder_max_abs_diff']:.2e}, logits max abs diff "
                         f"{result['logits_max_abs_diff']:.2e}, greedy-token agreement {agreement:.1%} over "
                         f"{result['decoded_positions']} positions" + (f" -- FAILED: {'; '.join(problems)}"
                                                                         if problems else ""))
    return result


__all__ = ["MAX_NEW_TOKENS", "TOLERANCES", "check_export", "run_decoder"]
