"""Greedy transcription with onnxruntime over an exported folder, decoded the way transformers.js decodes: what a
client of onnx/ (the browser page of `serve-web`, transformers.js in Node) must reproduce.

transformers.js (4.3.1) builds the decoder prompt from the generation config's flags and ignores
forced_decoder_ids: <|startoftranscript|>, for a multilingual model the language (English when none is given: it
does not detect one) and the task (transcribe unless the config says otherwise), then <|notimestamps|>. Every step
suppresses `suppress_tokens`, the first step `begin_suppress_tokens` too; decoding stops at <|endoftext|> or at
`max_length` tokens, prompt included. The merged decoder runs as transformers.js runs it (check.run_decoder): the
prompt in one call without past, then one token per call with the self-attention keys/values it returned and the
cross-attention ones of the first call.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .layout import DECODER, ENCODER, SUFFIXES


def decoder_prompt(generation: dict, language: str | None = None) -> list[int]:
    """transformers.js's decoder prompt for a generation_config.json's content (`language`: a code such as "fr")."""
    prompt = [generation["decoder_start_token_id"]]
    if generation.get("is_multilingual"):
        code = (language or generation.get("language") or "en").strip("<|>")
        prompt += [generation["lang_to_id"][f"<|{code}|>"], generation["task_to_id"][generation.get("task") or "transcribe"]]
    if not generation.get("return_timestamps") and generation.get("no_timestamps_token_id") is not None:
        prompt.append(generation["no_timestamps_token_id"])
    return prompt


def _session(path: Path):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class GreedyDecoder:
    """An exported folder's encoder and merged decoder in onnxruntime, with its feature extractor and tokenizer."""

    def __init__(self, model_dir: str | Path, dtype: str = "fp32"):
        from transformers import WhisperFeatureExtractor, WhisperTokenizerFast

        model_dir = Path(model_dir)
        onnx_dir = model_dir / "onnx"
        self.encoder = _session(onnx_dir / f"{ENCODER}{SUFFIXES[dtype]}.onnx")
        self.decoder = _session(onnx_dir / f"{DECODER}{SUFFIXES[dtype]}.onnx")
        self.features = WhisperFeatureExtractor.from_pretrained(model_dir)
        self.tokenizer = WhisperTokenizerFast.from_pretrained(model_dir)
        self.generation = json.loads((model_dir / "generation_config.json").read_text())
        config = json.loads((model_dir / "config.json").read_text())
        self.past_shape = (config["decoder_attention_heads"], config["d_model"] // config["decoder_attention_heads"])
        self.past_names = [i.name for i in self.decoder.get_inputs() if i.name.startswith("past_key_values.")]

    def tokens(self, audio: np.ndarray, language: str | None = None) -> list[int]:
        """The greedy token ids of one 16 kHz clip (up to 30 s), prompt included, end of text excluded."""
        features = self.features(audio, sampling_rate=16_000, return_tensors="np").input_features.astype(np.float32)
        hidden = self.encoder.run(None, {"input_features": features})[0]
        generation = self.generation
        tokens = decoder_prompt(generation, language)
        prompt_length = len(tokens)
        suppress = list(generation.get("suppress_tokens") or [])
        begin_suppress = list(generation.get("begin_suppress_tokens") or [])
        eos, max_length = generation["eos_token_id"], generation.get("max_length") or 448
        heads, head_dim = self.past_shape
        past = {n: np.zeros((1, heads, 0, head_dim), np.float32) for n in self.past_names}
        step_input = tokens
        while len(tokens) < max_length:
            feeds = {"input_ids": np.array([step_input], np.int64), "encoder_hidden_states": hidden,
                     "use_cache_branch": np.array([len(tokens) > prompt_length]), **past}
            outputs = dict(zip([o.name for o in self.decoder.get_outputs()], self.decoder.run(None, feeds)))
            logits = outputs["logits"][0, -1].astype(np.float64)
            logits[suppress] = -np.inf
            if len(tokens) == prompt_length:
                logits[begin_suppress] = -np.inf
            for name in self.past_names:  # cross-attention keys/values from the first call only
                if len(tokens) == prompt_length or ".encoder." not in name:
                    past[name] = outputs[name.replace("past_key_values.", "present.")]
            token = int(logits.argmax())
            if token == eos:
                break
            tokens.append(token)
            step_input = [token]
        return tokens

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> str:
        return self.tokenizer.decode(self.tokens(audio, language), skip_special_tokens=True).strip()


def transcribe_onnx(model_dir: str | Path, clips: list[np.ndarray], dtype: str = "fp32",
                    language: str | None = None) -> list[str]:
    """Greedy transcripts of 16 kHz clips through `model_dir/onnx/` (see the module doc)."""
    decoder = GreedyDecoder(model_dir, dtype)
    return [decoder.transcribe(clip, language) for clip in clips]


__all__ = ["GreedyDecoder", "decoder_prompt", "transcribe_onnx"]
