"""`dpfm train`, `dpfm sweep` and the `dpfm bench` dispatcher on the golden backend, run in-process."""

import json
import sys

import numpy as np
import pytest

from dpfm.host import cli

JSON_KEYS = {"task", "k", "backend", "lr", "dither", "epochs", "train_loss", "val_loss", "accuracy", "seconds",
             "loss_curve"}


def dpfm(*argv):
    return cli.main([str(a) for a in argv])


def test_train_writes_the_json_keys(tmp_path, capsys):
    out = tmp_path / "sub" / "r.json"
    assert dpfm("train", "--task", "seed-sum", "--k", "8", "--epochs", "2", "--json", out) == 0
    result = json.loads(out.read_text())
    assert set(result) == JSON_KEYS
    assert (result["task"], result["k"], result["backend"], result["epochs"]) == ("seed-sum", 8, "golden", 2)
    assert result["accuracy"] is None
    assert len(result["loss_curve"]["train"]) == 2 and len(result["loss_curve"]["val"]) == 2
    assert result["train_loss"] == result["loss_curve"]["train"][-1]
    assert result["val_loss"] == pytest.approx(result["loss_curve"]["val"][-1])
    stdout = capsys.readouterr().out
    assert "train loss" in stdout and "val loss" in stdout
    assert not list(out.parent.glob(".tmp-*"))


def test_train_full_k_and_classifier_accuracy(tmp_path, capsys):
    out = tmp_path / "r.json"
    assert dpfm("train", "--task", "bernoulli", "--k", "full", "--epochs", "2", "--json", out) == 0
    result = json.loads(out.read_text())
    assert result["k"] == "full" and 0.0 <= result["accuracy"] <= 1.0
    assert "accuracy" in capsys.readouterr().out


def test_train_on_user_data(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(40, 3))
    data = tmp_path / "d.npz"
    np.savez(data, X=X, Y=X.sum(axis=1, keepdims=True))
    out = tmp_path / "r.json"
    assert dpfm("train", "--data", data, "--sizes", "3,4,1", "--activations", "tanh,identity", "--k", "3",
                "--epochs", "2", "--json", out, "--lr", "0.05") == 0
    result = json.loads(out.read_text())
    assert result["task"] == f"data:{data}" and result["lr"] == 0.05 and result["dither"] is True


def test_own_data_without_lr_gets_the_rate_the_tuning_rule_chooses(tmp_path, capsys):
    """No --lr on --data: the study's rule (training split only) picks the rate, the same one tune_task
    gives, and says so; a named task uses its own table and tunes nothing."""
    from dpfm.golden.tasks import user_task
    from dpfm.host.study.tuning import USER_GRID, tune_task
    rng = np.random.default_rng(0)
    X = rng.uniform(size=(40, 3))
    data = tmp_path / "d.npz"
    np.savez(data, X=X, Y=X.sum(axis=1, keepdims=True))
    out = tmp_path / "r.json"
    assert dpfm("train", "--data", data, "--sizes", "3,4,1", "--k", "2", "--epochs", "3", "--json", out) == 0
    chosen = json.loads(out.read_text())["lr"]
    task = user_task(data, "3,4,1", epochs=3)
    assert chosen in USER_GRID and chosen == tune_task(task, [2], X, X.sum(axis=1, keepdims=True), True).lr_for(2)
    assert "choosing the learning rate" in capsys.readouterr().err
    assert dpfm("train", "--task", "seed-sum", "--k", "2", "--epochs", "1", "--json", out) == 0
    assert "choosing" not in capsys.readouterr().err


def test_save_resume_equals_uninterrupted(tmp_path):
    ck, a, b = tmp_path / "ck.npz", tmp_path / "a.json", tmp_path / "b.json"
    assert dpfm("train", "--k", "4", "--epochs", "2", "--momentum", "0.5", "--save", ck) == 0
    assert dpfm("train", "--resume", ck, "--epochs", "1", "--json", a) == 0
    assert dpfm("train", "--k", "4", "--epochs", "3", "--momentum", "0.5", "--json", b) == 0
    ra, rb = json.loads(a.read_text()), json.loads(b.read_text())
    assert ra["epochs"] == 3 and ra["loss_curve"] == rb["loss_curve"]


def test_save_stores_the_task_and_backend(tmp_path):
    from dpfm.golden.checkpoint import Checkpoint
    ck = tmp_path / "ck.npz"
    assert dpfm("train", "--k", "4", "--epochs", "1", "--save", ck) == 0
    assert Checkpoint.read(ck).extra == {"task": "seed-sum", "backend": "golden"}
    assert dpfm("train", "--resume", ck, "--save", ck, "--epochs", "1") == 0
    stored = Checkpoint.read(ck)
    assert stored.extra == {"task": "seed-sum", "backend": "golden"} and stored.epoch == 2


def test_sweep_writes_png_and_json(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert dpfm("sweep", "--task", "seed-sum", "--ks", "2,8,full", "--epochs", "2", "--out", out) == 0
    png = (out / "loss.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000
    result = json.loads((out / "sweep.json").read_text())
    assert [r["k"] for r in result["results"]] == [2, 8, "full"] and result["joint"]
    assert all(len(r["loss_curve"]["train"]) == 2 for r in result["results"])
    table = capsys.readouterr().out
    assert "train loss" in table and "full" in table


def test_failed_figure_save_leaves_the_old_png(tmp_path, disk_full):
    from dpfm.host.plots import plot_loss_curves
    png = tmp_path / "loss.png"
    png.write_bytes(b"old png")
    with pytest.raises(OSError):
        plot_loss_curves({"K=2": ([1.0, 0.5], None)}, png, "a run")
    assert png.read_bytes() == b"old png"
    assert [p.name for p in tmp_path.iterdir()] == ["loss.png"]


def test_sweep_separate_gives_the_same_losses(tmp_path):
    joint, sep = tmp_path / "j.json", tmp_path / "s.json"
    common = ["sweep", "--ks", "2,full", "--epochs", "2"]
    assert dpfm(*common, "--out", tmp_path / "j", "--json", joint) == 0
    assert dpfm(*common, "--separate", "--out", tmp_path / "s", "--json", sep) == 0
    rj, rs = json.loads(joint.read_text()), json.loads(sep.read_text())
    assert not rs["joint"]
    for a, b in zip(rj["results"], rs["results"]):
        np.testing.assert_allclose(a["loss_curve"]["train"], b["loss_curve"]["train"], rtol=1e-12)


# -- bad input: exit 2, one line, nothing written ----------------------------------------------------------
def _nan_data(tmp_path):
    p = tmp_path / "nan.npz"
    np.savez(p, X=np.array([[0.0, np.nan]]), Y=np.zeros((1, 1)))
    return ["--data", p, "--sizes", "2,1"]


def _wide_data(tmp_path):
    p = tmp_path / "wide.npz"
    np.savez(p, X=np.zeros((3, 5)), Y=np.zeros((3, 1)))
    return ["--data", p, "--sizes", "4,1"]


BAD_TRAIN = {
    "unknown task": lambda t: ["--task", "emnist"],
    "K zero": lambda t: ["--k", "0"],
    "K text": lambda t: ["--k", "lots"],
    "bad formats": lambda t: ["--fixed", "x=s16"],
    "bad format name": lambda t: ["--fixed", "q=s16.12"],
    "negative epochs": lambda t: ["--epochs", "-1"],
    "non-numeric lr": lambda t: ["--lr", "fast"],
    "zero lr": lambda t: ["--lr", "0"],
    "zero batch": lambda t: ["--batch", "0"],
    "toper without fixed": lambda t: ["--tangent", "toper"],
    "NaN data": _nan_data,
    "shape mismatch": _wide_data,
    "missing data file": lambda t: ["--data", t / "none.npz", "--sizes", "2,1"],
    "sizes without data": lambda t: ["--sizes", "2,1"],
    "task and data": lambda t: ["--task", "seed-sum", "--data", t / "x.npz", "--sizes", "2,1"],
    "diverges": lambda t: ["--lr", "1e6", "--epochs", "30"],
    "missing checkpoint": lambda t: ["--resume", t / "none.npz"],
    "K beyond int64": lambda t: ["--k", "99999999999999999999"],
    "npy as data": lambda t: _file(t / "x.npy", np.save, np.zeros((3, 2))) + ["--sizes", "2,1"],
    "text as data": lambda t: _file(t / "x.npz", lambda p, a: p.write_text("1 2 3"), None) + ["--sizes", "2,1"],
    "text as checkpoint": lambda t: ["--resume", _file(t / "c0.npz", lambda p, a: p.write_text("x"), None)[1]],
    "loss with a named task": lambda t: ["--task", "seed-sum", "--loss", "bce"],
    "resident training in float": lambda t: ["--task", "seed-sum", "--resident"],
    "a data set memory without resident training": lambda t: ["--fixed", "default", "--resident-samples", "400"],
    "a data set memory for the golden model":
        lambda t: ["--fixed", "default", "--resident", "--resident-samples", "400"],
    "a resident run of no epochs": lambda t: ["--fixed", "default", "--resident", "0"],
    "a resident run longer than the loss memory": lambda t: ["--fixed", "default", "--resident", "65"],
    "classifier with a named task": lambda t: ["--task", "seed-sum", "--classifier"],
    "K full on a core": lambda t: ["--backend", "sim", "--k", "full"],
    "socket without port": lambda t: ["--backend", "board", "--port", "socket://127.0.0.1"],
    "socket port out of range": lambda t: ["--backend", "board", "--port", "socket://127.0.0.1:99999"],
    "data outside the x format": lambda t: _scaled_data(t, 1e6) + ["--fixed", "default"],
    "validation data outside the x format": lambda t: _scaled_data(t, 1.0, val_scale=1e3) + ["--fixed", "default"],
}


def _scaled_data(t, scale, val_scale=None) -> list:
    """`--data` of seed-sum-like data times `scale` (validation inputs times `val_scale`, if given)."""
    rng = np.random.default_rng(0)
    X = rng.random((40, 4)) * scale
    arrays = {"X": X, "Y": X.sum(axis=1, keepdims=True) / 4}
    if val_scale is not None:
        X_val = rng.random((10, 4)) * val_scale
        arrays.update(X_val=X_val, Y_val=X_val.sum(axis=1, keepdims=True) / 4)
    np.savez(t / "scaled.npz", **arrays)
    return ["--data", t / "scaled.npz", "--sizes", "4,5,1"]


def _file(path, write, arrays) -> list:
    """`--data PATH` after writing `arrays` to PATH with `write(path, arrays)`."""
    write(path, arrays)
    return ["--data", path]


@pytest.mark.parametrize("case", sorted(BAD_TRAIN))
def test_bad_train_input_exits_2_with_one_line(tmp_path, capsys, case):
    out, ck = tmp_path / "r.json", tmp_path / "c.npz"
    rc = dpfm("train", "--epochs", "1", *BAD_TRAIN[case](tmp_path), "--json", out, "--save", ck)
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert len(err) == 1 and err[0].startswith("dpfm: error: "), err
    assert not out.exists() and not ck.exists() and not list(tmp_path.glob(".tmp-*"))


def test_resume_refuses_contradicting_options(tmp_path, capsys):
    ck = tmp_path / "ck.npz"
    assert dpfm("train", "--k", "4", "--epochs", "1", "--save", ck) == 0
    capsys.readouterr()
    assert dpfm("train", "--resume", ck, "--k", "8", "--epochs", "1") == 2
    assert "contradicts checkpoint" in capsys.readouterr().err
    assert dpfm("train", "--resume", ck, "--task", "digits", "--epochs", "1") == 2
    assert "is for network" in capsys.readouterr().err


def test_unwritable_output_is_refused_before_training(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert dpfm("train", "--epochs", "1", "--json", tmp_path / "file" / "r.json") == 2
    assert dpfm("train", "--epochs", "1", "--json", tmp_path) == 2
    assert all(line.startswith("dpfm: error: ") for line in capsys.readouterr().err.splitlines())


def test_output_the_filesystem_refuses_is_caught_before_training(tmp_path, capsys):
    """Permissions say yes, the filesystem says no (/proc takes no new files): still refused up front."""
    assert dpfm("train", "--epochs", "1", "--save", "/proc/dpfm-probe.npz", "--json", tmp_path / "r.json") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "/proc does not take new files" in err[0]
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize("ks,epochs,match", [("2,2", 1, "repeats"), ("2,0", 1, "positive"), (",", 1, "no K values"),
                                             ("2", 0, "at least one epoch")])
def test_bad_sweep_input(tmp_path, capsys, ks, epochs, match):
    out = tmp_path / "sweep"
    assert dpfm("sweep", "--ks", ks, "--epochs", epochs, "--out", out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]
    assert not out.exists()


def test_device_backend_refuses_options_it_cannot_honour(capsys):
    assert dpfm("train", "--backend", "sim", "--k", "full", "--epochs", "1") == 2
    assert capsys.readouterr().err.startswith("dpfm: error: ")
    assert dpfm("train", "--backend", "sim", "--momentum", "0.5", "--epochs", "1") == 2
    assert "no momentum" in capsys.readouterr().err
    assert dpfm("train", "--backend", "sim", "--tangent", "exact", "--epochs", "1") == 2
    assert "toper tangent" in capsys.readouterr().err


def test_bench_golden_rejects_bad_options(tmp_path, capsys):
    assert dpfm("bench", "golden", "--epochs", "0", "--out", tmp_path / "b") == 2
    assert "--epochs must be at least 1" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_device_sweep_checks_every_k_before_opening_a_device(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert dpfm("sweep", "--backend", "sim", "--ks", "2,full", "--epochs", "1", "--out", out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dpfm: error: ")
    assert not out.exists()


def test_bench_without_torch_skips_the_pytorch_column(monkeypatch, seed_sum_data):
    from dpfm.host.bench import golden as bench
    from dpfm.golden.tasks import get_task
    monkeypatch.setitem(sys.modules, "torch", None)  # as if PyTorch were not installed
    X, Y, _, _ = seed_sum_data
    assert bench._torch_epoch_timer(get_task("seed-sum"), [], X, Y) == (None, None)


def test_saturate_clamps_data_the_format_cannot_hold(tmp_path, capsys):
    """Refused by default with the count, the format's range and the largest value; `--saturate` clamps it
    (the hardware's behaviour) and trains."""
    args = ["train", "--epochs", "1", "--no-progress", *_scaled_data(tmp_path, 1e6), "--fixed", "default"]
    assert dpfm(*args) == 2
    err = capsys.readouterr().err
    assert "160 values of the training inputs lie outside the x format s16.12" in err and "--saturate" in err
    out = tmp_path / "r.json"
    assert dpfm(*args, "--saturate", "--json", out) == 0
    result = json.loads(out.read_text())
    assert result["saturations"] > 0 and "evictions" in result, "the clamps are reported in the JSON"
    assert f"saturations {result['saturations']}" in capsys.readouterr().out
    assert dpfm("train", "--epochs", "1", "--no-progress", *_scaled_data(tmp_path, 1e6)) == 0  # float: no format


def test_sweep_on_own_data_refuses_bad_data_before_tuning(tmp_path, capsys):
    """No --lr on --data tunes first, but data the x format cannot hold is refused before that, in one line."""
    data = tmp_path / "big.npz"
    X = np.full((20, 3), 1e6)
    np.savez(data, X=X, Y=X[:, :1])
    assert dpfm("sweep", "--data", data, "--sizes", "3,2,1", "--ks", "2", "--epochs", "1", "--fixed", "default",
                "--out", tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "outside the x format" in err and "choosing" not in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("fixed, how", [([], "in float"), (["--fixed", "default"], "with the exact tangent")])
def test_a_checkpoint_the_core_cannot_continue_is_refused_before_the_device_opens(tmp_path, capsys, fixed, how):
    ckpt = tmp_path / "c.npz"
    assert dpfm("train", "--task", "seed-sum", "--epochs", "1", "--no-progress", *fixed, "--save", ckpt) == 0
    capsys.readouterr()
    assert dpfm("train", "--resume", ckpt, "--backend", "sim", "--epochs", "1") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"was trained {how}" in err[0] and "--backend golden" in err[0]


def test_train_layers_freezes_the_rest_and_is_kept_in_the_checkpoint(tmp_path):
    """`--train-layers last`: only the output layer moves, the checkpoint says so, and a resume with
    `--train-layers all` trains every layer from there on."""
    from dpfm.golden.contract.net import init_weights
    from dpfm.golden.mlp import GoldenTrainer
    from dpfm.golden.tasks import get_task
    task = get_task("seed-sum")
    assert dpfm("train", "--task", "seed-sum", "--k", "4", "--epochs", "2", "--train-layers", "last",
                "--save", tmp_path / "a.npz", "--no-progress") == 0
    tuned = GoldenTrainer.load(tmp_path / "a.npz")
    assert tuned.train_layers == (2,)
    start = init_weights(task.spec, np.random.default_rng(0), task.init)
    assert [np.array_equal(W, W0) for (W, _), (W0, _) in zip(tuned.weights, start)] == [True, True, False]
    assert dpfm("train", "--resume", tmp_path / "a.npz", "--epochs", "1", "--train-layers", "all",
                "--save", tmp_path / "b.npz", "--no-progress") == 0
    every = GoldenTrainer.load(tmp_path / "b.npz")
    assert every.train_layers is None
    assert not any(np.array_equal(W, W0) for (W, _), (W0, _) in zip(every.weights, tuned.weights))


@pytest.mark.parametrize("argv, message", [
    (["--attach"], "--port, --baud and --attach only apply to --backend board"),
    (["--attach", "--backend", "sim"], "--attach takes over a core that outlived its host"),
    (["--attach", "--init", "/nonexistent.onnx", "--backend", "board", "--port", "socket://127.0.0.1:1"],
     "--init and --attach both give the starting weights"),
])
def test_attach_is_for_a_core_that_outlived_its_host(argv, message, capsys):
    assert dpfm("train", "--task", "seed-sum", "--epochs", "1", *argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
