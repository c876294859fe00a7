"""Real exports (`make test-js`; skipped by the default run, they take minutes): tiny.en converted to a LiteWhisper
(every encoder projection truncated by SVD) and the dense tiny.en, through `lite-whisper export-onnx`; the graph
keeps the low-rank factors as two MatMuls; onnxruntime agrees with PyTorch within the stated tolerances (and the
check catches a wrong weight); the merged decoder is what transformers.js loads; `push` uploads onnx/ with a card
that says how to use it; and the real client, transformers.js from npm in Node, transcribes the local folders
exactly as PyTorch's greedy decoding does.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import onnx
import pytest
import yaml

from conftest import CACHE
from lite_folder_support import linked_copy, lite_tiny_en
from lite_whisper import cli
from lite_whisper.interop.onnx.check import TOLERANCES, check_export, pytorch_reference
from lite_whisper.interop.onnx.export import cache_names, load_model
from lite_whisper.interop.onnx.layout import ENCODER
from lite_whisper.interop.web_packages import TRANSFORMERS_JS  # @huggingface/transformers, pinned: the page's version
from lite_whisper.publish.card import build_model_card
from lite_whisper.publish.hub import push_to_hub

pytestmark = pytest.mark.onnx

JS_SCRIPT = Path(__file__).parent / "js" / "transcribe.cjs"
JS_CLIPS = 6
REPO_ID = "lite-tester/whisper-tiny.en-lite"


def _export(folder: Path, audio: Path, *dtypes: str) -> Path:
    assert cli.main(["export-onnx", str(folder), "--dtype", *dtypes, "--check-audio", str(audio)]) == 0
    return folder


@pytest.fixture(scope="module")
def lite_export(tiny_en_dir, speech_test_dir, tmp_path_factory) -> Path:
    """The cached SVD LiteWhisper of tiny.en, exported (fp32 and q8) into a linked copy's onnx/."""
    folder = linked_copy(lite_tiny_en(tiny_en_dir), tmp_path_factory.mktemp("onnx") / "whisper-tiny.en-lite")
    return _export(folder, speech_test_dir, "fp32", "q8")


@pytest.fixture(scope="module")
def dense_export(tiny_en_dir, speech_test_dir, tmp_path_factory) -> Path:
    folder = linked_copy(tiny_en_dir, tmp_path_factory.mktemp("onnx") / "whisper-tiny.en")
    return _export(folder, speech_test_dir, "fp32", "q8")


def _matmul_weights(path: Path) -> list[tuple[str, tuple, str | None]]:
    """(weight name, shape, name of the MatMul weight applied just before, if any) of every MatMul with a stored
    weight: a factorized projection is x @ weight1 (first) then @ weight2 (whose predecessor is weight1)."""
    graph = onnx.load(str(path)).graph
    shapes = {i.name: tuple(i.dims) for i in graph.initializer}
    weight_of_output = {n.output[0]: n.input[1] for n in graph.node if n.op_type == "MatMul" and n.input[1] in shapes}
    return [(n.input[1], shapes[n.input[1]], weight_of_output.get(n.input[0]))
            for n in graph.node if n.op_type == "MatMul" and n.input[1] in shapes]


def test_low_rank_projections_stay_two_matmuls(lite_export, dense_export):
    config = json.loads((lite_export / "config.json").read_text())
    d, ffn = config["d_model"], config["encoder_ffn_dim"]
    shapes = {"q_proj": (d, d), "k_proj": (d, d), "v_proj": (d, d), "out_proj": (d, d), "fc1": (d, ffn),
              "fc2": (ffn, d)}
    expected = sorted((shapes[p][0], r, shapes[p][1]) for layer in config["low_rank_config"] for p, r in layer.items())
    weights = _matmul_weights(lite_export / "onnx" / f"{ENCODER}.onnx")
    by_name = {name: shape for name, shape, _ in weights}
    chains = sorted((by_name[prev][0], shape[0], shape[1]) for _, shape, prev in weights if prev is not None)
    assert len(expected) == 24 and chains == expected  # each factor pair: [in, r] then [r, out]
    assert not [s for _, s, _ in weights if s in {(d, d), (d, ffn), (ffn, d)}]  # no dense projection left

    dense = _matmul_weights(dense_export / "onnx" / f"{ENCODER}.onnx")
    layers = config["encoder_layers"]
    assert sum(s == (d, d) for _, s, _ in dense) == 4 * layers and all(prev is None for *_, prev in dense)


@pytest.mark.parametrize("which", ["lite", "dense"])
def test_export_checks_within_tolerance(which, lite_export, dense_export):
    folder = lite_export if which == "lite" else dense_export
    report = json.loads((folder / "onnx" / "export_report.json").read_text())
    checks = {c["dtype"]: c for c in report["checks"]}
    assert set(checks) == {"fp32", "q8"}
    fp32 = checks["fp32"]
    assert fp32["passed"] and fp32["clips"] == 2 and fp32["decoded_positions"] > 20
    assert fp32["encoder_max_abs_diff"] <= fp32["encoder_bound"] == 1e-3 * fp32["encoder_max_abs"]
    assert fp32["logits_max_abs_diff"] <= fp32["logits_bound"] and fp32["argmax_agreement"] == 1.0
    if which == "lite":
        assert fp32["encoder_max_abs_diff"] <= 1e-3  # the target for the lite encoder, in absolute terms
    assert checks["q8"]["passed"] and checks["q8"]["argmax_agreement"] >= TOLERANCES["q8"]["argmax_agreement"]
    assert "/" not in json.dumps(report["checks"]).replace("n/a", "")  # no local paths in a published file


def _encoder_cosine(folder: Path, features) -> float:
    """Cosine of the q8 encoder's output to the fp32 encoder's (flattened per clip, averaged)."""
    import numpy as np

    from lite_whisper.interop.onnx.greedy import session

    outputs = [session(folder / "onnx" / f"{ENCODER}{suffix}.onnx").run(None, {"input_features": features})[0]
               for suffix in ("", "_quantized")]
    a, b = (o.reshape(len(o), -1).astype(np.float64) for o in outputs)
    return float(np.mean((a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)))


def test_lite_q8_encoder_is_as_faithful_as_the_dense_q8(lite_export, dense_export, speech_test_dir):
    """The issue's bar: a lite q8 encoder no further from its fp32 than the original's q8 encoder is from its own
    (held-out synthesized clips, not the export's check clips that the rebalancing measured)."""
    from transformers import WhisperFeatureExtractor

    from lite_whisper.data.audio import load_audio_dataset

    arrays = [s.array for s in load_audio_dataset(str(speech_test_dir), max_samples=6)][2:]
    features = WhisperFeatureExtractor.from_pretrained(lite_export)(arrays, sampling_rate=16_000,
                                                                    return_tensors="np").input_features
    lite, dense = _encoder_cosine(lite_export, features), _encoder_cosine(dense_export, features)
    print(f"\nq8 encoder cosine to fp32: lite {lite:.4f}, dense {dense:.4f}")
    assert lite >= dense - 0.001 and dense > 0.99


@pytest.mark.parametrize("which", ["lite", "dense"])
def test_quantized_files_decode_like_fp32_in_onnxruntime(which, lite_export, dense_export, clips):
    """The greedy onnxruntime loop (onnx.greedy, as transformers.js drives the files) on a clean clip: fp32 gives
    PyTorch's transcript; q8, and the per-module mix fp32 encoder + q8 decoder, give the same words."""
    from lite_whisper.interop.onnx.greedy import OnnxWhisper

    folder = lite_export if which == "lite" else dense_export
    _, arrays, _ = clips
    clip = arrays[:2]
    fp32 = OnnxWhisper(folder).transcribe(clip)
    assert [t.strip() for t in fp32] == [t.strip() for t in _pytorch_greedy(folder, clip)]
    for encoder, decoder in (("q8", "q8"), ("fp32", "q8")):
        assert OnnxWhisper(folder, encoder, decoder).transcribe(clip) == fp32, (encoder, decoder)


def test_check_catches_a_wrong_weight(lite_export, tiny_en_dir, speech_test_dir, tmp_path):
    """A 5% error in one factor of one projection (what a broken export could do) fails the fp32 check."""
    from transformers import WhisperFeatureExtractor

    from lite_whisper.data.audio import load_audio_dataset

    onnx_dir = tmp_path / "onnx"
    shutil.copytree(lite_export / "onnx", onnx_dir)
    model = onnx.load(str(onnx_dir / f"{ENCODER}.onnx"))
    (weight,) = [i for i in model.graph.initializer if i.name.endswith("layers.1.fc2.weight2")]
    scaled = onnx.numpy_helper.to_array(weight) * 1.05
    weight.CopyFrom(onnx.numpy_helper.from_array(scaled, weight.name))
    onnx.save(model, str(onnx_dir / f"{ENCODER}.onnx"))
    audio = [s.array for s in load_audio_dataset(str(speech_test_dir), max_samples=1)]
    lite = load_model(lite_export)
    reference = pytorch_reference(lite, WhisperFeatureExtractor.from_pretrained(lite_export), audio)
    result = check_export(onnx_dir, reference, "fp32")
    assert not result["passed"] and "FAILED" in result["summary"]
    assert result["encoder_max_abs_diff"] > 10 * result["encoder_bound"]


def test_merged_decoder_is_what_transformers_js_loads(lite_export):
    model = onnx.load(str(lite_export / "onnx" / "decoder_model_merged.onnx"))
    config = json.loads((lite_export / "config.json").read_text())
    inputs = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in model.graph.input}
    names = cache_names(config["decoder_layers"])
    assert set(inputs) == {"input_ids", "encoder_hidden_states", "use_cache_branch",
                           *(f"past_key_values.{n}" for n in names)}
    heads, head_dim = config["decoder_attention_heads"], config["d_model"] // config["decoder_attention_heads"]
    for n in names:  # transformers.js fills `batch_size` and sets every other symbol to 0 for the first step
        batch, h, length, dim = inputs[f"past_key_values.{n}"]
        assert batch == "batch_size" and (h, dim) == (heads, head_dim) and isinstance(length, str)
    assert [o.name for o in model.graph.output] == ["logits", *(f"present.{n}" for n in names)]
    assert [n.op_type for n in model.graph.node] == ["If"]

    whisper = load_model(lite_export)  # the tied embedding / output weights are stored once
    decoder = {id(p): p for p in [*whisper.model.decoder.parameters(), *whisper.proj_out.parameters()]}
    param_bytes = 4 * sum(p.numel() for p in decoder.values())
    stored = sum(onnx.numpy_helper.to_array(i).nbytes for i in model.graph.initializer)
    assert param_bytes * 0.99 < stored < param_bytes * 1.02


def test_push_uploads_onnx_with_a_transformers_js_card(lite_export):
    out = push_to_hub(lite_export, REPO_ID, dry_run=True)
    files = {path for path, _ in out.files}
    assert {"onnx/encoder_model.onnx", "onnx/decoder_model_merged.onnx", "onnx/encoder_model_quantized.onnx",
            "onnx/decoder_model_merged_quantized.onnx", "onnx/export_report.json"} <= files
    text = out.card.read_text()
    meta = yaml.safe_load(text.split("---\n")[1])
    assert {"onnx", "transformers.js"} <= set(meta["tags"])
    assert f'pipeline("automatic-speech-recognition", "{REPO_ID}", {{ dtype: "q8" }})' in text
    assert "`fp32`, `q8`" in text and "encoder output max abs difference" in text
    assert build_model_card(lite_export, REPO_ID).data.tags == meta["tags"]


# --- the real client: transformers.js in Node ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def transformers_js() -> Path:
    """@huggingface/transformers installed from npm into the test cache (once per machine). onnxruntime-node's
    install script would download CUDA libraries (and fail offline): ONNXRUNTIME_NODE_INSTALL=skip, the CPU
    binaries ship in the package."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            pytest.fail(f"`{tool}` is not installed: the transformers.js test needs Node.js >= 18 and npm "
                        "(apt-get install nodejs npm)")
    target = CACHE / "js" / f"transformers-js-{TRANSFORMERS_JS}"
    if not (target / "node_modules" / "@huggingface" / "transformers" / "package.json").is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.tmp-"))
        try:
            (tmp / "package.json").write_text(json.dumps(
                {"private": True, "dependencies": {"@huggingface/transformers": TRANSFORMERS_JS}}) + "\n")
            (tmp / ".npmrc").write_text("onnxruntime-node-install=skip\n")
            env = {**os.environ, "ONNXRUNTIME_NODE_INSTALL": "skip"}
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--omit=dev"], cwd=tmp, env=env,
                           check=True, capture_output=True, text=True, timeout=900)
            shutil.rmtree(target, ignore_errors=True)
            tmp.rename(target)
        except subprocess.CalledProcessError as error:
            shutil.rmtree(tmp, ignore_errors=True)
            pytest.fail(f"npm install @huggingface/transformers@{TRANSFORMERS_JS} failed:\n{error.stderr[-3000:]}")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return target


@pytest.fixture(scope="module")
def clips(speech_test_dir, tmp_path_factory):
    """(raw float32 files for Node, 16 kHz arrays, reference texts) of the first synthesized test clips."""
    from lite_whisper.data.audio import load_audio_dataset

    samples = load_audio_dataset(str(speech_test_dir), max_samples=JS_CLIPS)
    folder = tmp_path_factory.mktemp("clips")
    paths = []
    for i, sample in enumerate(samples):
        paths.append(folder / f"clip{i}.f32")
        sample.array.astype("<f4").tofile(paths[-1])
    return paths, [s.array for s in samples], [s.text for s in samples]


def _node_transcripts(install: Path, folder: Path, dtype: str, clip_paths: list[Path]) -> dict:
    proc = subprocess.run(["node", str(JS_SCRIPT), str(install), str(folder.parent), folder.name, dtype,
                           *map(str, clip_paths)], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _pytorch_greedy(folder: Path, arrays: list) -> list[str]:
    from transformers import AutoModelForSpeechSeq2Seq, AutoProcessor

    from lite_whisper.evaluation.evaluate import transcribe

    model = AutoModelForSpeechSeq2Seq.from_pretrained(folder, trust_remote_code=True).eval()
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    texts, _ = transcribe(model, processor, arrays, {"num_beams": 1}, progress=False)
    return texts


@pytest.mark.js
@pytest.mark.parametrize("which", ["lite", "dense"])
def test_transformers_js_transcribes_like_pytorch(which, lite_export, dense_export, transformers_js, clips):
    from lite_whisper.wer import word_error_rate

    folder = lite_export if which == "lite" else dense_export
    paths, arrays, references = clips
    expected = _pytorch_greedy(folder, arrays)
    js = _node_transcripts(transformers_js, folder, "fp32", paths)
    assert js["version"] == TRANSFORMERS_JS
    print(f"\n{which} fp32, transformers.js {js['version']} vs PyTorch greedy:")
    for ours, theirs in zip(js["texts"], expected):
        print(f"  JS: {ours.strip()}\n  PT: {theirs.strip()}")
    assert [t.strip() for t in js["texts"]] == [t.strip() for t in expected]
    wer = word_error_rate(js["texts"], references)
    print(f"  WER {wer:.2f} % on {len(references)} synthesized clips")
    assert wer <= 10.0

    # q8 (its own arithmetic: a WER bound over the clips, and the same words on a clean clip), and the mix users
    # pick for accuracy, fp32 encoder + q8 decoder (a dtype per module)
    q8 = _node_transcripts(transformers_js, folder, "q8", paths)
    q8_wer = word_error_rate(q8["texts"], references)
    print(f"  q8 WER {q8_wer:.2f} %: " + " | ".join(t.strip() for t in q8["texts"]))
    assert q8_wer <= wer + 5.0 and q8["texts"][0] == js["texts"][0]
    mixed = _node_transcripts(transformers_js, folder, '{"encoder_model": "fp32", "decoder_model_merged": "q8"}',
                              paths[:2])
    assert mixed["dtype"] == {"encoder_model": "fp32", "decoder_model_merged": "q8"}
    assert mixed["texts"] == js["texts"][:2]
