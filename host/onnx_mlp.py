"""An MLP in ONNX, out and in: a trained network for the tools people already use, or a start from theirs.

Export writes one `Gemm` (transB = 1) and one activation node per layer (`Sigmoid`, `Tanh`, `Relu`, or
nothing for identity), float32, opset 21, input `x` `(N, n_in)`, output `y` `(N, n_out)`. The quantized
variant stores each weight matrix and bias as int16 (or int32 when the w format is wider) with its exact
scale 2^-frac and a `DequantizeLinear`, which is exact for weights of a fixed-point run: the ONNX model
carries the very weights the core holds. Activations stay float (the core's interpolated activation table is
not an ONNX operator).

Import accepts what export writes and the usual spellings of the same MLP (`MatMul` + `Add`, `Gemm` with
transB = 0, an `Identity` node, initializers that are dequantized): every node must belong to a layer of
affine map then optional activation, in order, from the one input to the one output. Anything else is
refused with the node that does not fit and the network it would need.
"""

import os

import numpy as np

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.net import NetSpec

OPSET = 21
#: The IR version opset 21 needs, which runtimes a year old still load.
IR_VERSION = 10
ACTIVATION_OPS = {"sigmoid": "Sigmoid", "tanh": "Tanh", "relu": "Relu"}
FIX = "export it from a Linear + activation MLP, e.g. torch.nn.Sequential(Linear, Sigmoid, ...)"


def to_onnx(spec: NetSpec, layers, quantized=None):
    """The `onnx.ModelProto` of `spec` with weights `layers` (`[(W, b), ...]`); `quantized` is the w format
    (`Fmt`) to store the weights in, or None for float32."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []
    current = "x"
    for l, ((W, b), act) in enumerate(zip(layers, spec.activations)):
        names = []
        for what, arr in (("W", W), ("b", b)):
            name = f"{what}{l}"
            if quantized is None:
                inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name))
            else:
                raw = np.rint(np.asarray(arr) * 2.0 ** quantized.frac)
                dtype = np.int16 if quantized.bits <= 16 else np.int32
                inits += [numpy_helper.from_array(raw.astype(dtype), f"{name}_q"),
                          numpy_helper.from_array(np.array(2.0 ** -quantized.frac, dtype=np.float32), f"{name}_scale")]
                nodes.append(helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_scale"], [name]))
            names.append(name)
        z = f"z{l}"
        nodes.append(helper.make_node("Gemm", [current, *names], [z], transB=1))
        current = z
        if act in ACTIVATION_OPS:
            a = f"a{l}"
            nodes.append(helper.make_node(ACTIVATION_OPS[act], [z], [a]))
            current = a
    nodes.append(helper.make_node("Identity", [current], ["y"]))
    graph = helper.make_graph(
        nodes, "dpfm_mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", spec.n_inputs])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", spec.n_outputs])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="dpfm",
                              ir_version=IR_VERSION)
    onnx.checker.check_model(model)
    return model


def read_mlp(path, spec: NetSpec) -> list:
    """`[(W, b), ...]` of the ONNX MLP at `path`, which must be `spec`'s network; else one DpfmError."""
    import onnx
    from onnx import numpy_helper

    path = os.fspath(path)
    try:
        model = onnx.load(path)
    except Exception as exc:   # protobuf's errors have no common base: any failure means "not an ONNX file"
        raise DpfmError(f"cannot read {path} as an ONNX model ({type(exc).__name__})", FIX) from None
    graph = model.graph
    consts = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in graph.initializer}
    inputs = [i.name for i in graph.input if i.name not in consts]
    if len(inputs) != 1 or len(graph.output) != 1:
        raise DpfmError(f"{path} has {len(inputs)} inputs and {len(graph.output)} outputs, not one of each", FIX)
    current, layers, acts = inputs[0], [], []
    pending = None   # the affine map of the layer under way: (W (n_out, n_in), b)
    for index, node in enumerate(graph.node):
        ins = list(node.input)
        where = f"{path}: node {index} ({node.op_type} '{node.name or node.output[0]}')"
        if node.op_type in ("DequantizeLinear", "Constant"):
            consts[node.output[0]] = _constant(node, consts, where)
            continue
        if node.op_type == "Identity" and ins == [current]:
            current = node.output[0]
            continue
        if not ins or ins[0] != current:
            raise DpfmError(f"{where} does not continue the chain of layers", FIX)
        if node.op_type == "Gemm":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
                raise DpfmError(f"{where} has transA, alpha or beta, which an MLP layer does not use", FIX)
            W = _weight(ins[1], consts, where)
            W = W if attrs.get("transB", 0) else W.T
            b = _weight(ins[2], consts, where) if len(ins) > 2 else np.zeros(W.shape[0])
            _close(pending, layers, acts, "identity")
            pending = (W, b.reshape(-1))
        elif node.op_type == "MatMul":
            _close(pending, layers, acts, "identity")
            pending = (_weight(ins[1], consts, where).T, None)
        elif node.op_type == "Add" and pending is not None and pending[1] is None:
            pending = (pending[0], _weight(ins[1], consts, where).reshape(-1))
        elif node.op_type in ACTIVATION_OPS.values() and pending is not None:
            act = next(name for name, op in ACTIVATION_OPS.items() if op == node.op_type)
            _close(pending, layers, acts, act)
            pending = None
        else:
            raise DpfmError(f"{where} is not part of an MLP layer (Gemm or MatMul + Add, then "
                            f"{', '.join(ACTIVATION_OPS.values())} or none)", FIX)
        current = node.output[0]
    _close(pending, layers, acts, "identity")
    if current != graph.output[0].name:
        raise DpfmError(f"{path}: the chain of layers does not end at the output '{graph.output[0].name}'", FIX)
    return _check_against(path, layers, acts, spec)


def _constant(node, consts, where):
    from onnx import numpy_helper
    if node.op_type == "Constant":
        return numpy_helper.to_array(node.attribute[0].t).astype(np.float64)
    try:
        q, scale = consts[node.input[0]], consts[node.input[1]]
    except (KeyError, IndexError):
        raise DpfmError(f"{where} dequantizes something that is not a stored weight", FIX) from None
    zero = consts.get(node.input[2], 0.0) if len(node.input) > 2 else 0.0
    return (q - zero) * scale


def _weight(name, consts, where) -> np.ndarray:
    if name not in consts:
        raise DpfmError(f"{where} takes '{name}', which is not a stored weight", FIX)
    return consts[name]


def _close(pending, layers, acts, act) -> None:
    if pending is not None:
        W, b = pending
        layers.append((W, np.zeros(W.shape[0]) if b is None else b))
        acts.append(act)


def _check_against(path, layers, acts, spec: NetSpec) -> list:
    sizes = [layers[0][0].shape[1]] + [W.shape[0] for W, _ in layers] if layers else []
    for W, b in layers:
        if b.shape != (W.shape[0],):
            raise DpfmError(f"{path}: a bias of shape {b.shape} does not fit its {W.shape[0]}-unit layer", FIX)
    chained = all(layers[i + 1][0].shape[1] == layers[i][0].shape[0] for i in range(len(layers) - 1))
    if not chained or tuple(sizes) != tuple(spec.sizes) or tuple(acts) != tuple(spec.activations):
        raise DpfmError(f"{path} is the MLP {','.join(map(str, sizes)) or 'without layers'} "
                        f"({','.join(acts)}), not the network {','.join(map(str, spec.sizes))} "
                        f"({','.join(spec.activations)})", "start from an ONNX model of the task's network")
    return layers
