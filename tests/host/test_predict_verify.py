"""`dpfm predict` and `dpfm verify`: outputs on any backend, and where two backends part, bit for bit."""

import json
import re

import numpy as np
import pytest

from dpfm.golden.contract.net import NetSpec
from dpfm.golden.mlp import GoldenTrainer
from dpfm.golden.tasks import get_task
from dpfm.host.cli import main
from dpfm.host.commands import train as train_cmd
from dpfm.host.commands.verify import weight_name


@pytest.fixture
def checkpoint(toper_checkpoint):
    return toper_checkpoint


def test_predict_writes_the_golden_outputs_as_npy_and_csv(checkpoint, tmp_path, capsys):
    want = GoldenTrainer.load(checkpoint).predict(get_task("seed-sum").load()[2])
    assert main(["predict", str(checkpoint), "--out", str(tmp_path / "p.npy"), "--json", str(tmp_path / "p.json")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), want)
    assert main(["predict", str(checkpoint), "--out", str(tmp_path / "p.csv")]) == 0
    np.testing.assert_array_equal(np.loadtxt(tmp_path / "p.csv", delimiter=",", ndmin=2), want)
    summary = json.loads((tmp_path / "p.json").read_text())
    assert summary["samples"] == 80 and summary["data"] == "seed-sum (val)" and summary["accuracy"] is None
    assert "80 samples of seed-sum (val) on golden" in capsys.readouterr().out


def test_predict_on_own_inputs(checkpoint, tmp_path):
    X = np.random.default_rng(0).random((7, 4))
    np.savez(tmp_path / "x.npz", X=X)
    assert main(["predict", str(checkpoint), "--data", str(tmp_path / "x.npz"), "--out", str(tmp_path / "o.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "o.npy"), GoldenTrainer.load(checkpoint).predict(X))


def test_bad_predict_input_is_one_line_and_writes_nothing(checkpoint, tmp_path, capsys):
    np.savez(tmp_path / "wide.npz", X=np.zeros((3, 5)))
    np.savez(tmp_path / "nan.npz", X=np.full((3, 4), np.nan))
    float_ck = tmp_path / "float.npz"
    assert main(["train", "--task", "seed-sum", "--k", "2", "--epochs", "1", "--save", str(float_ck),
                 "--no-progress"]) == 0
    sweep_ck = tmp_path / "sweep.npz"
    spec = get_task("seed-sum").spec
    t = GoldenTrainer(spec, [2, 4])
    t.save(sweep_ck)
    capsys.readouterr()
    out, txt = str(tmp_path / "o.npy"), str(tmp_path / "o.txt")
    cases = [
        (checkpoint, ["--out", txt], "neither .npy nor .csv"),
        (checkpoint, ["--data", str(tmp_path / "wide.npz"), "--out", out], r"inputs have shape \(3, 5\)"),
        (checkpoint, ["--data", str(tmp_path / "nan.npz"), "--out", out], "contains NaN"),
        (checkpoint, ["--task", "digits", "--out", out], "task digits is network"),
        (float_ck, ["--backend", "sim", "--out", out], "was trained in float"),
        (sweep_ck, ["--out", out], "holds 2 K replicas"),
    ]
    for ck, argv, match in cases:
        assert main(["predict", str(ck), *argv]) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and re.search(match, err[0]), (argv, err)
    assert not (tmp_path / "o.npy").exists() and not (tmp_path / "o.txt").exists()


class _Shifted(GoldenTrainer):
    """A golden model that parts from the reference: output 0 of sample 3 one LSB up, and from step 2 on
    weight 9 one LSB up."""

    kind = "shifted"

    def _forward(self, X, X_raw):
        out = super()._forward(X, X_raw)
        out[:, 3, 0] += self.fixed.x.resolution
        return out

    def _step(self, X, Y, X_raw, Y_raw):
        loss = super()._step(X, Y, X_raw, Y_raw)
        self._steps = getattr(self, "_steps", 0) + 1
        if self._steps == 2:
            self._raw[:, 9] += 1
        return loss


def test_verify_names_the_first_output_and_weight_that_part(checkpoint, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(train_cmd.BACKENDS, "shifted",
                        lambda spec, k, *, port=None, baud=None, **kw: _Shifted(spec, k, **kw))
    rc = main(["verify", str(checkpoint), "--backends", "golden,shifted", "--steps", "4", "--samples", "20",
               "--json", str(tmp_path / "v.json")])
    out = capsys.readouterr().out
    assert rc == 1
    assert "shifted: inference parts at sample 3, output 0" in out and "(raw " in out
    assert f"shifted: training parts at step 2, weight 9 ({weight_name(get_task('seed-sum').spec, 9)})" in out
    report = json.loads((tmp_path / "v.json").read_text())["backends"]["shifted"]
    assert report["inference"]["sample"] == 3 and report["training"]["weight"] == 9


def test_verify_of_a_backend_with_itself_agrees_and_bad_lists_are_refused(checkpoint, monkeypatch, capsys):
    monkeypatch.setitem(train_cmd.BACKENDS, "copy", train_cmd.BACKENDS["golden"])
    assert main(["verify", str(checkpoint), "--backends", "golden,copy", "--steps", "3"]) == 0
    assert "copy: training equal bit for bit over 3 steps" in capsys.readouterr().out
    for backends, match in (("golden", "fewer than two"), ("golden,golden", "fewer than two"),
                            ("golden,fpga", "unknown backend 'fpga'"), ("golden,,sim", "empty item")):
        assert main(["verify", str(checkpoint), "--backends", backends]) == 2
        assert match in capsys.readouterr().err


def test_weight_names_follow_the_id_layout():
    spec = NetSpec((4, 5, 5, 1), ("sigmoid", "sigmoid", "identity"), "mse")
    assert weight_name(spec, 0) == "layer 0, neuron 0, input 0"
    assert weight_name(spec, 4) == "layer 0, neuron 0, bias"
    assert weight_name(spec, 25) == "layer 1, neuron 0, input 0"
    assert weight_name(spec, 60) == "layer 2, neuron 0, bias"


@pytest.mark.verilator
def test_golden_and_the_co_simulated_core_agree_bit_for_bit(checkpoint, capsys):
    assert main(["verify", str(checkpoint), "--backends", "golden,sim", "--samples", "30", "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert "sim: inference equal bit for bit" in out and "sim: training equal bit for bit over 3 steps" in out
