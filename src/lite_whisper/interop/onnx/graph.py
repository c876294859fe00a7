"""ONNX graph surgery for the transformers.js layout: one decoder file with an `If` on `use_cache_branch`.

transformers.js (and optimum's ORT models) load a single `decoder_model_merged.onnx`: its `If` runs the decoder
without past key/values on the first step (the prompt; it also computes the cross-attention keys/values from the
encoder output) and the decoder with past on every later step. The two graphs are exported separately
(`export`) and merged here: each becomes a branch of the `If`, their weights are stored once in the outer
graph (deduplicated by content, which also stores the tied embedding/output weights once), and every other value
name gets a per-branch prefix (a branch may not redefine a name of its outer scope).

Pure `onnx` protobuf manipulation: no torch, no onnxruntime. `onnx` is optional (the `onnx` extra): it is
imported where used, so that this module (and `export`, which imports it) loads without it and the export can
name the missing packages (`export.require_onnx_packages`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import onnx
    from onnx import TensorProto

USE_CACHE_BRANCH = "use_cache_branch"


def strip_metadata(model: onnx.ModelProto) -> onnx.ModelProto:
    """Drop the exporter's per-node metadata (stack traces with this machine's file paths) and doc strings: a
    published model must not carry them, and they are a sizeable part of small graphs."""
    for graph in _graphs(model.graph):
        for node in graph.node:
            del node.metadata_props[:]
            node.doc_string = ""
        graph.doc_string = ""
    return model


def _graphs(graph: onnx.GraphProto):
    """`graph` and every subgraph nested in its nodes' attributes."""
    import onnx

    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for g in attr.graphs:
                    yield from _graphs(g)


def topological_order(nodes, available: set[str]) -> list:
    """`nodes` ordered so that each comes after the producers of its inputs (onnxruntime requires it of
    subgraphs; the float16 converter appends its input casts at the end). `available`: names defined outside."""
    produced = {out for node in nodes for out in node.output}
    ready, done, pending = [], set(available), list(nodes)
    while pending:
        rest = []
        for node in pending:
            if all(not v or v in done or v not in produced for v in node.input):
                ready.append(node)
                done.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ValueError(f"the graph has a cycle or undefined inputs at node {rest[0].name} ({rest[0].op_type})")
        pending = rest
    return ready


def _content_key(tensor: TensorProto) -> tuple:
    from onnx import numpy_helper

    array = numpy_helper.to_array(tensor)
    return tensor.data_type, tuple(tensor.dims), hashlib.sha256(array.tobytes()).hexdigest()


def set_dims(value: onnx.ValueInfoProto, dims: list[int | str]) -> None:
    """Give a graph input/output these dimensions (ints fixed, strings symbolic)."""
    shape = value.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        dim = shape.dim.add()
        if isinstance(d, str):
            dim.dim_param = d
        else:
            dim.dim_value = d


def _forget_dims(value: onnx.ValueInfoProto) -> None:
    """Keep the rank, drop every dimension's size and name."""
    for dim in value.type.tensor_type.shape.dim:
        dim.Clear()


def _as_branch(model: onnx.ModelProto, prefix: str, outer_names: set[str], shared: dict[tuple, TensorProto]
               ) -> onnx.GraphProto:
    """`model`'s graph as an `If` branch: no inputs (they come from the outer scope), initializers moved to the
    outer graph (`shared`, keyed by content), every other value renamed `prefix` + name."""
    import onnx
    from onnx import TensorProto, helper

    graph = model.graph
    rename: dict[str, str] = {}
    for init in graph.initializer:
        key = _content_key(init)
        if key not in shared:
            tensor = TensorProto()
            tensor.CopyFrom(init)
            taken = outer_names | {t.name for t in shared.values()}
            tensor.name = init.name if init.name not in taken else f"{prefix}{init.name}"
            shared[key] = tensor
        rename[init.name] = shared[key].name

    def name(value: str) -> str:
        if not value or value in outer_names:  # "" is an omitted optional input
            return value
        return rename.setdefault(value, f"{prefix}{value}")

    branch = helper.make_graph([], f"{prefix.rstrip('/')}", [], [])
    for node in topological_order(list(graph.node), outer_names | {i.name for i in graph.initializer}):
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            raise ValueError(f"unexpected nested subgraph in exported node {node.name} ({node.op_type})")
        new = branch.node.add()
        new.CopyFrom(node)
        new.name = f"{prefix}{node.name}" if node.name else ""
        new.input[:] = [name(v) for v in node.input]
        new.output[:] = [name(v) for v in node.output]
    for out in graph.output:
        value = branch.output.add()
        value.CopyFrom(out)
        if out.name in outer_names:  # an input passed through unchanged: a branch output needs its own name
            identity = branch.node.add()
            identity.CopyFrom(helper.make_node("Identity", [out.name], [f"{prefix}{out.name}"],
                                               name=f"{prefix}passthrough_{out.name}"))
        value.name = name(out.name) if out.name not in outer_names else f"{prefix}{out.name}"
        _forget_dims(value)  # lengths differ between branches; the outer outputs name them
    return branch


def merge_decoders(no_past: onnx.ModelProto, with_past: onnx.ModelProto,
                   input_dims: dict[str, list[int | str]], output_dims: dict[str, list[int | str]]) -> onnx.ModelProto:
    """One model with inputs = with_past's inputs + `use_cache_branch` (bool [1]) and the shared outputs:
    `If(use_cache_branch)` runs `with_past` (then) or `no_past` (else).

    Both models must have the same outputs (names and order); no_past's inputs must be a subset of with_past's.
    input_dims/output_dims: the dimensions the merged graph declares (symbolic past lengths, so that the first
    step's empty past tensors are accepted)."""
    import onnx
    from onnx import TensorProto, helper

    past_outputs = [o.name for o in with_past.graph.output]
    if past_outputs != [o.name for o in no_past.graph.output]:
        raise ValueError("the two decoders must have the same outputs in the same order")
    inputs = list(with_past.graph.input)
    outer_names = {i.name for i in inputs}
    missing = {i.name for i in no_past.graph.input} - outer_names
    if missing:
        raise ValueError(f"inputs of the first-step decoder missing from the decoder with past: {sorted(missing)}")

    shared: dict[tuple, TensorProto] = {}
    else_branch = _as_branch(no_past, "no_past/", outer_names, shared)
    then_branch = _as_branch(with_past, "with_past/", outer_names, shared)
    if_node = helper.make_node("If", [USE_CACHE_BRANCH], past_outputs, name="optimum::if",
                               then_branch=then_branch, else_branch=else_branch)

    graph_inputs = []
    for value in inputs:
        copy = onnx.ValueInfoProto()
        copy.CopyFrom(value)
        if value.name in input_dims:
            set_dims(copy, input_dims[value.name])
        graph_inputs.append(copy)
    graph_inputs.append(helper.make_tensor_value_info(USE_CACHE_BRANCH, TensorProto.BOOL, [1]))
    graph_outputs = []
    for value in with_past.graph.output:
        copy = onnx.ValueInfoProto()
        copy.CopyFrom(value)
        if value.name in output_dims:
            set_dims(copy, output_dims[value.name])
        else:
            _forget_dims(copy)
        graph_outputs.append(copy)

    graph = helper.make_graph([if_node], "decoder_model_merged", graph_inputs, graph_outputs,
                              initializer=list(shared.values()))
    opsets = {}
    for model in (no_past, with_past):
        for op in model.opset_import:
            opsets[op.domain] = max(opsets.get(op.domain, 0), op.version)
    merged = helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
                               producer_name="lite-whisper")
    merged.ir_version = max(no_past.ir_version, with_past.ir_version)
    functions = {(f.domain, f.name): f for m in (no_past, with_past) for f in m.functions}
    merged.functions.extend(functions.values())
    return merged


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of all initializers (the weights a file stores)."""
    from onnx import numpy_helper

    return sum(numpy_helper.to_array(t).nbytes for g in _graphs(model.graph) for t in g.initializer)


def save_model(model: onnx.ModelProto, path: Path) -> Path:
    """Save an onnx.ModelProto; weights go to `<name>_data` beside it past protobuf's 2 GB limit."""
    import onnx

    external = weight_bytes(model) > 1_800_000_000
    onnx.save_model(model, str(path), save_as_external_data=external, all_tensors_to_one_file=True,
                    location=f"{path.name}_data" if external else None)
    return path


__all__ = ["USE_CACHE_BRANCH", "merge_decoders", "save_model", "set_dims", "strip_metadata", "weight_bytes"]
