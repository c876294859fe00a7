"""Greedy transcription with onnxruntime from an exported folder, as a user of the ONNX files runs it.

`OnnxWhisper(folder, encoder="fp32", decoder="q8")` loads `onnx/encoder_model{suffix}.onnx` and
`onnx/decoder_model_merged{suffix}.onnx` of any dtype each (transformers.js's dtype per module), and decodes
greedily the way transformers.js drives the merged decoder (`check.run_decoder`): the prompt in one call
without past, then one token per call with the returned keys/values. The prompt and the suppressed tokens are
the generation config's (<|startoftranscript|>, language and task for multilingual models, <|notimestamps|>;
`suppress_tokens`, and `begin_suppress_tokens` at the first step), as Whisper's generate() uses them without
timestamps. Short-form only (clips up to 30 s).

`time_onnx(models, arrays)` times them end to end (features + encoder + decoding loop) with `timing.time_batches`:
warm, alternating batch by batch, median of runs, with the encoder's seconds and the tokens per clip.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from transformers import WhisperFeatureExtractor, WhisperTokenizerFast

from lite_whisper.interop.onnx.layout import DECODER, ENCODER, SUFFIXES
from lite_whisper.timing import BatchTiming, time_batches
from lite_whisper.whisper import is_english_only

MAX_SECONDS = 30


def session(path: Path, threads: int | None = None):
    """An onnxruntime CPU session (errors only in the log); `threads`: intra-op threads (None: onnxruntime's)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxWhisper:
    """The exported encoder and merged decoder of `folder`, each in its own dtype (fp32, fp16, q8), or given as
    a path to another .onnx file of the same interface (e.g. another quantization of it)."""

    def __init__(self, folder: str | Path, encoder: str | Path = "fp32", decoder: str | Path = "fp32",
                 threads: int | None = None, language: str = "en") -> None:
        folder = Path(folder)
        paths = [_file(folder, ENCODER, encoder), _file(folder, DECODER, decoder)]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise FileNotFoundError(f"{', '.join(missing)} not found: export them with `lite-whisper export-onnx "
                                    f"{folder} --dtype ...`")
        self.dtypes = {"encoder": str(encoder), "decoder": str(decoder)}
        self.encoder, self.decoder = session(paths[0], threads), session(paths[1], threads)
        self.features = WhisperFeatureExtractor.from_pretrained(folder)
        self.tokenizer = WhisperTokenizerFast.from_pretrained(folder)
        config = json.loads((folder / "config.json").read_text())
        generation = json.loads((folder / "generation_config.json").read_text())
        self.heads, self.head_dim = config["decoder_attention_heads"], config["d_model"] // config["decoder_attention_heads"]
        self.eos = generation.get("eos_token_id", config["eos_token_id"])
        self.max_length = generation.get("max_length", config.get("max_target_positions", 448))
        self.prompt = [generation.get("decoder_start_token_id", config["decoder_start_token_id"])]
        if not is_english_only(config):
            self.prompt += [generation["lang_to_id"][f"<|{language}|>"], generation["task_to_id"]["transcribe"]]
        self.prompt.append(generation["no_timestamps_token_id"])
        self.suppress = np.array(generation.get("suppress_tokens") or [], dtype=np.int64)
        self.begin_suppress = np.array(generation.get("begin_suppress_tokens") or [], dtype=np.int64)
        self.past_names = [i.name for i in self.decoder.get_inputs() if i.name.startswith("past_key_values.")]
        self.output_names = [o.name for o in self.decoder.get_outputs()]

    def input_features(self, arrays: list) -> np.ndarray:
        if max(len(a) for a in arrays) > MAX_SECONDS * 16_000:
            raise ValueError("OnnxWhisper decodes clips of up to 30 s (short-form); split longer audio first")
        return self.features(arrays, sampling_rate=16_000, return_tensors="np").input_features.astype(np.float32)

    def encode(self, features: np.ndarray) -> np.ndarray:
        return self.encoder.run(None, {"input_features": features})[0]

    def decode(self, hidden: np.ndarray, max_new_tokens: int | None = None) -> tuple[np.ndarray, int]:
        """(generated tokens [batch, steps] after the prompt, padded with end-of-text; decoder calls)."""
        batch = hidden.shape[0]
        limit = self.max_length - len(self.prompt) if max_new_tokens is None else max_new_tokens
        past = {n: np.zeros((batch, self.heads, 0, self.head_dim), np.float32) for n in self.past_names}
        ids = np.tile(np.array(self.prompt, dtype=np.int64), (batch, 1))
        done = np.zeros(batch, dtype=bool)
        generated, calls = [], 0
        while len(generated) < limit and not done.all():
            feeds = {"input_ids": ids, "encoder_hidden_states": hidden, "use_cache_branch": np.array([calls > 0]),
                     **past}
            outputs = dict(zip(self.output_names, self.decoder.run(None, feeds)))
            calls += 1
            logits = outputs["logits"][:, -1, :].astype(np.float32)
            logits[:, self.suppress] = -np.inf
            if not generated:
                logits[:, self.begin_suppress] = -np.inf
            token = np.where(done, self.eos, logits.argmax(-1))
            generated.append(token)
            done |= token == self.eos
            for name in self.past_names:
                if not (calls > 1 and ".encoder." in name):  # the first call's cross-attention keys/values stay
                    past[name] = outputs[name.replace("past_key_values.", "present.")]
            ids = token[:, None].astype(np.int64)
        tokens = np.stack(generated, axis=1) if generated else np.zeros((batch, 0), np.int64)
        return tokens, calls

    def transcribe(self, arrays: list) -> list[str]:
        tokens, _ = self.decode(self.encode(self.input_features(arrays)))
        return self.tokenizer.batch_decode(tokens, skip_special_tokens=True)

    def timed_batch(self, arrays: list) -> BatchTiming:
        tic = time.perf_counter()
        features = self.input_features(arrays)
        encoder_tic = time.perf_counter()
        hidden = self.encode(features)
        encoder_seconds = time.perf_counter() - encoder_tic
        tokens, calls = self.decode(hidden)
        seconds = time.perf_counter() - tic
        special = set(self.tokenizer.all_special_ids)
        counts = [sum(int(t) not in special for t in row) for row in tokens]
        return BatchTiming(seconds, encoder_seconds, calls, counts)


def _file(folder: Path, name: str, dtype: str | Path) -> Path:
    if isinstance(dtype, Path) or str(dtype).endswith(".onnx"):
        return Path(dtype)
    if dtype not in SUFFIXES:
        raise ValueError(f"dtype {dtype!r}: choose among {', '.join(SUFFIXES)} (or give an .onnx path)")
    return folder / "onnx" / f"{name}{SUFFIXES[dtype]}.onnx"


def transcribe_all(model: OnnxWhisper, arrays: list, batch_size: int = 8) -> list[str]:
    return [text for i in range(0, len(arrays), batch_size) for text in model.transcribe(arrays[i:i + batch_size])]


def transcribe_onnx(folder: str | Path, clips: list, dtype: str = "fp32", language: str | None = None) -> list[str]:
    """Greedy transcripts of 16 kHz clips through `folder/onnx/`, one clip per call as the browser page runs them
    (what `make test-web` compares the page with)."""
    model = OnnxWhisper(folder, dtype, dtype, language=language or "en")
    return [text.strip() for text in transcribe_all(model, clips, batch_size=1)]


def time_onnx(models: dict[str, OnnxWhisper], arrays: list, *, batch_size: int = 8, repeats: int = 3,
              warmup: int = 1, threads: int | None = None) -> dict:
    """`timing.time_batches` over onnxruntime greedy transcription (the first model is the baseline)."""
    import onnxruntime as ort

    return time_batches(list(models), arrays, lambda label, batch: models[label].timed_batch(batch),
                        batch_size=batch_size, repeats=repeats, warmup=warmup,
                        what=f"onnxruntime {ort.__version__} greedy loop", device="cpu", threads=threads)


__all__ = ["OnnxWhisper", "session", "time_onnx", "transcribe_all", "transcribe_onnx"]
