"""ONNX out and in (`host.onnx_mlp`, `dpfm export`, `dpfm train --init`): onnxruntime runs what dpfm trained,
and dpfm starts from an MLP written elsewhere."""

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from dpfm.golden.checkpoint import Checkpoint
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.net import unflatten
from dpfm.golden.mlp import GoldenTrainer
from dpfm.golden.tasks import get_task
from dpfm.host.cli import main
from dpfm.host.onnx_mlp import read_mlp

ort = pytest.importorskip("onnxruntime")


def _run(path, X):
    return ort.InferenceSession(str(path)).run(None, {"x": X.astype(np.float32)})[0]


@pytest.fixture(scope="module")
def digits_ck(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "d.npz"
    assert main(["train", "--task", "digits", "--k", "8", "--epochs", "2", "--save", str(path), "--no-progress"]) == 0
    return path


@pytest.fixture
def fixed_ck(toper_checkpoint):
    return toper_checkpoint


def test_onnxruntime_outputs_equal_the_golden_predictions(digits_ck, tmp_path):
    assert main(["export", str(digits_ck), "--onnx", str(tmp_path / "d.onnx")]) == 0
    X = get_task("digits").load()[2]
    np.testing.assert_allclose(_run(tmp_path / "d.onnx", X), GoldenTrainer.load(digits_ck).predict(X), rtol=0, atol=1e-6)


def test_the_quantized_model_carries_the_fixed_point_weights_exactly(fixed_ck, tmp_path):
    assert main(["export", str(fixed_ck), "--onnx", str(tmp_path / "q.onnx"), "--quantized"]) == 0
    assert main(["export", str(fixed_ck), "--onnx", str(tmp_path / "f.onnx")]) == 0
    model = onnx.load(tmp_path / "q.onnx")
    assert {t.data_type for t in model.graph.initializer if t.name.endswith("_q")} == {TensorProto.INT16}
    spec = get_task("seed-sum").spec
    stored = unflatten(spec, Checkpoint.read(fixed_ck).arrays["weights"][0])
    for (W, b), (W2, b2) in zip(read_mlp(tmp_path / "q.onnx", spec), stored):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
    X = get_task("seed-sum").load()[2]
    np.testing.assert_allclose(_run(tmp_path / "q.onnx", X), _run(tmp_path / "f.onnx", X), rtol=0, atol=1e-6)


def test_training_starts_from_an_exported_model(digits_ck, tmp_path):
    assert main(["export", str(digits_ck), "--onnx", str(tmp_path / "d.onnx")]) == 0
    assert main(["train", "--task", "digits", "--k", "8", "--epochs", "0", "--init", str(tmp_path / "d.onnx"),
                 "--save", str(tmp_path / "e.npz"), "--no-progress"]) == 0
    want = GoldenTrainer.load(digits_ck)._flat.astype(np.float32).astype(np.float64)
    np.testing.assert_array_equal(GoldenTrainer.load(tmp_path / "e.npz")._flat, want)


def _model(nodes, inits, n_in=4, n_out=1):
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("in", TensorProto.FLOAT, ["N", n_in])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", n_out])],
                              [numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)


def _seed_sum_layers(rng):
    return [(rng.random((5, 4)), rng.random(5)), (rng.random((5, 5)), rng.random(5)), (rng.random((1, 5)), rng.random(1))]


def test_matmul_add_and_gemm_spellings_of_the_same_mlp_are_read(tmp_path):
    rng = np.random.default_rng(0)
    layers = [(W.astype(np.float32), b.astype(np.float32)) for W, b in _seed_sum_layers(rng)]
    (W0, b0), (W1, b1), (W2, b2) = layers
    nodes = [helper.make_node("MatMul", ["in", "W0t"], ["m0"]), helper.make_node("Add", ["m0", "b0"], ["z0"]),
             helper.make_node("Sigmoid", ["z0"], ["a0"]),
             helper.make_node("Gemm", ["a0", "W1t", "b1"], ["z1"]), helper.make_node("Sigmoid", ["z1"], ["a1"]),
             helper.make_node("Gemm", ["a1", "W2", "b2"], ["out"], transB=1)]
    onnx.save(_model(nodes, {"W0t": W0.T, "b0": b0, "W1t": W1.T, "b1": b1, "W2": W2, "b2": b2}), tmp_path / "m.onnx")
    got = read_mlp(tmp_path / "m.onnx", get_task("seed-sum").spec)
    for (W, b), (Wg, bg) in zip(layers, got):
        np.testing.assert_array_equal(Wg, W)
        np.testing.assert_array_equal(bg, b)


@pytest.mark.parametrize("case, match", [
    ("conv", r"node 0 \(Conv 'c'\) is not part of an MLP layer"),
    ("sizes", r"is the MLP 4,3,1 \(sigmoid,identity\), not the network 4,5,5,1"),
    ("acts", r"is the MLP 4,5,5,1 \(tanh,sigmoid,identity\), not the network 4,5,5,1 \(sigmoid,sigmoid,identity\)"),
    ("junk", "cannot read .* as an ONNX model"),
])
def test_models_that_are_not_the_task_network_are_refused(tmp_path, case, match):
    rng = np.random.default_rng(1)
    spec = get_task("seed-sum").spec
    path = tmp_path / "m.onnx"
    if case == "junk":
        path.write_bytes(b"\x00\x01 not a protobuf")
    elif case == "conv":
        onnx.save(_model([helper.make_node("Conv", ["in", "w"], ["out"], name="c")], {"w": np.ones((1, 4, 1))}), path)
    else:
        layers = _seed_sum_layers(rng) if case == "acts" else [(rng.random((3, 4)), rng.random(3)),
                                                              (rng.random((1, 3)), rng.random(1))]
        acts = ["Tanh", "Sigmoid", None] if case == "acts" else ["Sigmoid", None]
        nodes, inits, current = [], {}, "in"
        for l, ((W, b), act) in enumerate(zip(layers, acts)):
            inits[f"W{l}"], inits[f"b{l}"] = W, b
            out = "out" if l == len(layers) - 1 and act is None else f"z{l}"
            nodes.append(helper.make_node("Gemm", [current, f"W{l}", f"b{l}"], [out], transB=1))
            current = out
            if act:
                nodes.append(helper.make_node(act, [out], [f"a{l}"]))
                current = f"a{l}"
        onnx.save(_model(nodes, inits), path)
    with pytest.raises(DpfmError, match=match):
        read_mlp(path, spec)


def test_bad_export_and_init_options_are_one_line(digits_ck, fixed_ck, tmp_path, capsys):
    assert main(["export", str(digits_ck), "--onnx", str(tmp_path / "q.onnx"), "--quantized"]) == 2
    assert "is a float run" in capsys.readouterr().err and not (tmp_path / "q.onnx").exists()
    assert main(["export", str(fixed_ck), "--onnx", str(tmp_path / "f.onnx")]) == 0
    assert main(["train", "--task", "digits", "--init", str(tmp_path / "f.onnx"), "--epochs", "1"]) == 2
    assert "not the network 64,16,10" in capsys.readouterr().err
    assert main(["train", "--resume", str(fixed_ck), "--init", str(tmp_path / "f.onnx")]) == 2
    assert "--init and --resume both" in capsys.readouterr().err
