"""`dpfm online`: predict each sample, then learn from it; streams from the task, a file or stdin."""

import io
import json

import numpy as np
import pytest

from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.mlp import GoldenTrainer
from dpfm.golden.tasks import get_task
from dpfm.host.cli import main


def _rows(X, Y):
    return "".join(",".join(repr(float(v)) for v in (*x, *y)) + "\n" for x, y in zip(X, Y))


def test_each_loss_is_the_loss_before_learning_from_that_sample(tmp_path):
    task = get_task("seed-sum")
    X, Y, _, _ = task.load()
    assert main(["online", "--task", "seed-sum", "--k", "4", "--samples", "40", "--json", str(tmp_path / "o.json"),
                 "--save", str(tmp_path / "o.npz")]) == 0
    got = json.loads((tmp_path / "o.json").read_text())
    ref = GoldenTrainer(task.spec, 4, lr=task.lr_for(4), seed=0, dither=True)
    want = []
    for x, y in zip(X[:40], Y[:40]):
        want.append(float(np.mean((ref.predict(x[None]) - y) ** 2)))
        ref.train_batch(x[None], y[None])
    assert got["samples"] == 40 and got["losses"] == pytest.approx(want, rel=1e-12)
    np.testing.assert_array_equal(GoldenTrainer.load(tmp_path / "o.npz")._flat, ref._flat)


def test_a_classifier_reports_its_prequential_accuracy(capsys):
    assert main(["online", "--task", "digits", "--k", "8", "--samples", "400"]) == 0
    out = capsys.readouterr().out
    acc = float(out.split("accuracy ")[1].split()[0])
    assert 0.2 < acc <= 1.0   # it learns while it goes (chance is 0.1)
    val = float(out.split("then on the validation split: loss ")[1].split(",")[0])   # and where it ended
    assert 0.0 < val < 0.09


def test_a_stream_from_stdin_and_a_bad_row_keeps_what_was_learned(tmp_path, monkeypatch, capsys):
    task = get_task("seed-sum")
    X, Y, _, _ = task.load()
    monkeypatch.setattr("sys.stdin", io.StringIO(_rows(X[:30], Y[:30]) + "1,2,nan,4,5\n"))
    assert main(["online", "--task", "seed-sum", "--k", "2", "--stream", "-", "--save", str(tmp_path / "c.npz")]) == 2
    captured = capsys.readouterr()
    assert "online seed-sum K=2 on golden: 30 samples" in captured.out
    assert "stdin line 31 is not 4 inputs and 1 targets" in captured.err
    ref = GoldenTrainer(task.spec, 2, lr=task.lr_for(2), seed=0, dither=True)
    for x, y in zip(X[:30], Y[:30]):
        ref.train_batch(x[None], y[None])
    np.testing.assert_array_equal(GoldenTrainer.load(tmp_path / "c.npz")._flat, ref._flat)


@pytest.mark.parametrize("argv, match", [
    (["--batch", "10"], "--batch does not apply"),
    (["--epochs", "3"], "--epochs does not apply"),
    (["--samples", "0"], "--samples must be at least 1"),
    (["--stream", "/nonexistent.csv"], "cannot read the stream"),
    (["--clock-mhz", "0"], "--clock-mhz must be positive"),
    (["--fixed", "default", "--tangent", "toper", "--lr", "9"], "lr / batch = 9 is not representable"),
])
def test_bad_online_options_are_one_line(argv, match, capsys):
    assert main(["online", "--task", "seed-sum", *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]


@pytest.mark.verilator
def test_the_co_simulated_core_learns_online_as_the_golden_model_does(tmp_path):
    for backend in ("golden", "sim"):
        extra = ["--fixed", "default", "--tangent", "toper"] if backend == "golden" else []
        assert main(["online", "--task", "seed-sum", "--k", "4", "--backend", backend, "--samples", "25",
                     "--json", str(tmp_path / f"{backend}.json"), *extra]) == 0
    golden, sim = (json.loads((tmp_path / f"{b}.json").read_text()) for b in ("golden", "sim"))
    assert sim["losses"] == golden["losses"]
    assert sim["update_cycles"]["median"] > 0 and "update_cycles" not in golden


def test_ctrl_c_ends_a_live_stream_and_keeps_what_was_learned(tmp_path, monkeypatch, capsys):
    task = get_task("seed-sum")
    X, Y, _, _ = task.load()

    class Interrupted(io.StringIO):
        def __iter__(self):
            yield from _rows(X[:12], Y[:12]).splitlines(keepends=True)
            raise KeyboardInterrupt

    monkeypatch.setattr("sys.stdin", Interrupted())
    assert main(["online", "--task", "seed-sum", "--k", "2", "--stream", "-", "--save", str(tmp_path / "c.npz")]) == 130
    assert "12 samples" in capsys.readouterr().out
    ref = GoldenTrainer(task.spec, 2, lr=task.lr_for(2), seed=0, dither=True)
    for x, y in zip(X[:12], Y[:12]):
        ref.train_batch(x[None], y[None])
    np.testing.assert_array_equal(GoldenTrainer.load(tmp_path / "c.npz")._flat, ref._flat)
