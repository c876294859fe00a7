"""Fast ONNX checks (default run): the decoder merge on small hand-made graphs run by onnxruntime, input
validation of `export-onnx`, an interrupted export leaving nothing behind, the card without onnx/, and the
onnxruntime encoder benchmark on a one-layer tiny shape. The real exports are in test_onnx_export.py (`make test-js`).
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from lite_folder_support import linked_copy, lite_tiny_en
from lite_whisper import cli
from lite_whisper.benchmarks.speed import config_ranks, shape_config
from lite_whisper.compression import budget
from lite_whisper.interop.onnx import export as onnx_export
from lite_whisper.interop.onnx.graph import merge_decoders, topological_order
from lite_whisper.publish.card import build_model_card

RNG = np.random.default_rng(0)
W = RNG.standard_normal((4, 3)).astype(np.float32)  # the weight both decoders share (under different names)


def _model(nodes, inputs, outputs, initializers) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])


def _decoders():
    """first step: logits = x @ W, present = x + c1;  next step: logits = x @ W + past_sum, present = [past; x] * c2.
    Both have an internal value `tmp` and an initializer `c` (different contents): names the merge must keep apart."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 4])
    past = helper.make_tensor_value_info("past", TensorProto.FLOAT, ["p", 4])
    logits = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 3])
    present = helper.make_tensor_value_info("present", TensorProto.FLOAT, ["m", 4])
    first = _model(
        [helper.make_node("Add", ["x", "c"], ["present"]), helper.make_node("MatMul", ["x", "w_first"], ["tmp"]),
         helper.make_node("Identity", ["tmp"], ["logits"])],
        [x], [logits, present],
        [numpy_helper.from_array(W, "w_first"), numpy_helper.from_array(np.full(4, 1.0, np.float32), "c")])
    nodes = [  # deliberately out of order: the Mul's input comes from the Concat after it
        helper.make_node("Mul", ["tmp", "c"], ["present"]),
        helper.make_node("Concat", ["past", "x"], ["tmp"], axis=0),
        helper.make_node("ReduceSum", ["past"], ["past_sum"], keepdims=1),
        helper.make_node("MatMul", ["x", "w_next"], ["xw"]),
        helper.make_node("Add", ["xw", "past_sum_col"], ["logits"]),
        helper.make_node("ReduceSum", ["past_sum", "axis"], ["past_sum_col"], keepdims=0),
    ]
    following = _model(nodes, [x, past], [logits, present],
                       [numpy_helper.from_array(W.copy(), "w_next"),
                        numpy_helper.from_array(np.full(4, 2.0, np.float32), "c"),
                        numpy_helper.from_array(np.array([1], np.int64), "axis")])
    return first, following


def test_merged_decoder_runs_each_branch_and_stores_shared_weights_once(tmp_path):
    first, following = _decoders()
    merged = merge_decoders(first, following, {"past": ["batch_size", "past_sequence_length"]}, {"logits": ["n", 3]})
    onnx.checker.check_model(merged, full_check=True)
    assert [n.op_type for n in merged.graph.node] == ["If"]
    shared = [i for i in merged.graph.initializer if tuple(i.dims) == (4, 3)]
    assert len(shared) == 1  # W stored once although the two graphs named it differently
    assert sorted(i.name for i in merged.graph.input) == ["past", "use_cache_branch", "x"]
    past_input = next(i for i in merged.graph.input if i.name == "past")
    past_dims = [d.dim_param for d in past_input.type.tensor_type.shape.dim]
    assert past_dims == ["batch_size", "past_sequence_length"]

    path = tmp_path / "merged.onnx"
    onnx.save(merged, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = RNG.standard_normal((2, 4)).astype(np.float32)
    empty = np.zeros((0, 4), np.float32)
    logits, present = session.run(None, {"x": x, "past": empty, "use_cache_branch": np.array([False])})
    np.testing.assert_allclose(logits, x @ W, rtol=1e-6)
    np.testing.assert_allclose(present, x + 1.0)  # the first graph's `c`
    past = RNG.standard_normal((3, 4)).astype(np.float32)
    logits, present = session.run(None, {"x": x, "past": past, "use_cache_branch": np.array([True])})
    np.testing.assert_allclose(logits, x @ W + past.sum(), rtol=1e-5)
    np.testing.assert_allclose(present, np.concatenate([past, x]) * 2.0)  # the second graph's `c`


def test_topological_order_and_its_errors():
    _, following = _decoders()
    nodes = topological_order(list(following.graph.node), {"x", "past", "w_next", "c", "axis"})
    seen = {"x", "past", "w_next", "c", "axis"}
    for node in nodes:
        assert all(v in seen for v in node.input)
        seen.update(node.output)
    with pytest.raises(ValueError, match="undefined inputs"):
        topological_order([helper.make_node("Relu", ["nowhere"], ["y"]), helper.make_node("Relu", ["y"], ["nowhere"])],
                          set())


def test_merge_refuses_decoders_with_different_outputs():
    first, following = _decoders()
    del following.graph.output[1]
    with pytest.raises(ValueError, match="same outputs"):
        merge_decoders(first, following, {}, {})


# --- export-onnx input validation (before any loading) ------------------------------------------------------------


def _error(capsys, *argv) -> str:
    assert cli.main(["export-onnx", *map(str, argv)]) == 2
    return capsys.readouterr().err


def test_export_onnx_validates_inputs_first(tiny_en_dir, tmp_path, capsys):
    assert "is not a folder" in _error(capsys, tmp_path / "missing")
    bert = tmp_path / "bert"
    bert.mkdir()
    (bert / "config.json").write_text(json.dumps({"model_type": "bert"}))
    assert "only Whisper and LiteWhisper" in _error(capsys, bert)
    assert "choose among fp32, fp16, q8" in _error(capsys, tiny_en_dir, "--dtype", "fp32", "int4")
    folder = linked_copy(tiny_en_dir, tmp_path / "tiny")
    (folder / "onnx").mkdir()
    (folder / "onnx" / "encoder_model.onnx").write_bytes(b"old")
    assert "--overwrite" in _error(capsys, folder)
    assert "--check-clips 0" in _error(capsys, folder, "--overwrite", "--check-clips", "0",
                                       "--check-audio", tmp_path)


def test_failed_export_leaves_nothing_behind(tiny_en_dir, speech_test_dir, tmp_path, monkeypatch):
    folder = linked_copy(tiny_en_dir, tmp_path / "tiny")

    def broken(*args, **kwargs):
        raise RuntimeError("exporter failed")

    monkeypatch.setattr(onnx_export, "export_encoder", broken)
    with pytest.raises(RuntimeError, match="exporter failed"):
        onnx_export.export_onnx(folder, check_audio=speech_test_dir, progress=False)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for p in tiny_en_dir.iterdir())


def test_card_without_onnx_has_no_transformers_js_section(tiny_en_dir):
    card = build_model_card(lite_tiny_en(tiny_en_dir), "lite-tester/no-onnx")
    assert "transformers.js" not in card.data.tags and "onnx" not in card.data.tags
    assert "@huggingface/transformers" not in card.text


# --- bench --onnx ---------------------------------------------------------------------------------------------------


def test_bench_onnx_shape(capsys):
    code = cli.main(["bench", "--shape", "tiny", "--layers", "1", "--fraction", "0.5", "--onnx", "--warmup", "0",
                     "--repeats", "1", "--threads", "1", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    enc = result["encoder"]
    config = shape_config("tiny", 0.5, layers=1)
    assert enc["runtime"].startswith("onnxruntime") and enc["threads"] == 1
    assert enc["baseline"]["median_ms"] > 0 and enc["lite"]["median_ms"] > 0
    assert enc["flop_ratio"] == pytest.approx(
        budget.encoder_flops(config) / budget.encoder_flops(config, config_ranks(config)))
    assert enc["speedup"] == pytest.approx(enc["baseline"]["median_ms"] / enc["lite"]["median_ms"])


def test_bench_onnx_refuses_gpu_options(capsys):
    assert cli.main(["bench", "--shape", "tiny", "--onnx", "--device", "cuda"]) == 2
    assert "onnxruntime on CPU" in capsys.readouterr().err


# --- q8: per-channel 7-bit weights, rebalanced factor pairs ------------------------------------------------------------


def _matmul_file(path, weight: np.ndarray):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, weight.shape[0]])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, weight.shape[1]])
    model = _model([helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")], [x], [y],
                   [numpy_helper.from_array(weight, "w")])
    model.ir_version = 9
    onnx.save(model, str(path))
    return path


def _run(path, x: np.ndarray) -> np.ndarray:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


def test_q8_is_per_channel_and_keeps_what_it_is_told(tmp_path):
    """One scale per output column (columns of very different sizes keep their precision), and a MatMul named in
    keep_fp32 stays a float MatMul."""
    weight = RNG.standard_normal((64, 32)).astype(np.float32) * np.geomspace(1e-3, 1, 32, dtype=np.float32)
    x = RNG.standard_normal((16, 64)).astype(np.float32)
    source = _matmul_file(tmp_path / "f.onnx", weight)
    q8 = onnx_export.quantize_q8(source, tmp_path / "q.onnx")
    scales = [numpy_helper.to_array(i) for i in onnx.load(str(q8)).graph.initializer if i.name.endswith("_scale")]
    assert [s.shape for s in scales] == [(32,)]
    per_tensor = onnx_export.quantize_q8(source, tmp_path / "t.onnx", per_channel=False, reduce_range=False)
    exact = x @ weight
    column_error = lambda out: np.abs(out - exact).max(0) / np.abs(exact).max(0)  # noqa: E731
    assert column_error(_run(q8, x))[:8].max() < 0.05 < column_error(_run(per_tensor, x))[:8].max()
    kept = onnx_export.quantize_q8(source, tmp_path / "k.onnx", keep_fp32=["mm"])
    assert [n.op_type for n in onnx.load(str(kept)).graph.node] == ["MatMul"]
    np.testing.assert_allclose(_run(kept, x), exact, rtol=1e-5, atol=1e-5)


def test_balanced_encoder_computes_the_same_with_an_even_intermediate(tiny_en_dir):
    """The rebalanced copy (what the q8 encoder is exported from) gives the same encoder output in float32, while
    the spread of each factorized projection's intermediate channels shrinks to its square root."""
    import torch

    from lite_whisper.compression.lite_model import build_lite_whisper, set_fast_path, svd_factors
    from lite_whisper.modeling import LowRankLinear
    from transformers import WhisperForConditionalGeneration

    whisper = WhisperForConditionalGeneration.from_pretrained(tiny_en_dir).eval()
    ranks = [{"q_proj": 96, "fc1": 160, "fc2": 160}] * whisper.config.encoder_layers
    encoder = build_lite_whisper(whisper, svd_factors(whisper, ranks)).eval().get_encoder()
    features = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(0))
    untouched = encoder.layers[0].fc1.weight1.detach().clone()
    balanced = onnx_export.balanced_encoder(encoder, features)
    assert torch.equal(encoder.layers[0].fc1.weight1, untouched) and encoder.layers[0].fast_path  # a copy
    set_fast_path(encoder, False)

    def intermediate_rms(model) -> dict:
        found = {}
        hooks = [m.register_forward_hook(lambda mod, args, out, name=name: found.__setitem__(
            name, (args[0] @ mod.weight1).pow(2).flatten(0, -2).mean(0).sqrt()))
            for name, m in model.named_modules() if isinstance(m, LowRankLinear)]
        with torch.no_grad():
            out = model(features).last_hidden_state
        for hook in hooks:
            hook.remove()
        return out, found

    expected, before = intermediate_rms(encoder)
    got, after = intermediate_rms(balanced)
    assert (got - expected).abs().max() <= 1e-4 * expected.abs().max()
    assert set(before) == set(after) and len(before) == 3 * whisper.config.encoder_layers
    for name in before:  # on the audio it was balanced on: each channel's RMS becomes its square root
        spread_before = (before[name].max() / before[name].min()).item()
        spread_after = (after[name].max() / after[name].min()).item()
        assert spread_before > 2 and spread_after == pytest.approx(spread_before ** 0.5, rel=1e-3), name
