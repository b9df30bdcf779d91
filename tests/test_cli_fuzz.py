"""Fuzzed bad command lines: every one ends in one `error:` line and exit 2, never a traceback, and never
starts the work (training, a build, a co-simulation, a Dask cluster) before the error.

The lines are valid base command lines with one or two of their options replaced by a bad value (out of
range, malformed, non-finite, a file of the wrong kind, a path that cannot be written, an unreachable port),
or with garbage added; a fixed generator makes at least 200 distinct lines. The work entry points are
replaced by a sentinel, so a line that is wrongly accepted fails its test instead of running for minutes.
"""

import random

import numpy as np
import pytest

from dpfm.host.cli import main


class Accepted(BaseException):
    """Raised where a command would start its work: the line was accepted."""


def _accepted(*args, **kwargs):
    raise Accepted()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    (d / "text.npz").write_text("not an archive\n")
    np.save(d / "single.npy", np.zeros(3))
    np.savez(d / "no_y.npz", X=np.zeros((4, 4)))
    np.savez(d / "nan.npz", X=np.full((4, 4), np.nan), Y=np.zeros((4, 1)))
    np.savez(d / "shapes.npz", X=np.zeros((4, 4)), Y=np.zeros((5, 1)))
    np.savez(d / "objects.npz", X=np.array([object()] * 4, dtype=object), Y=np.zeros((4, 1)))
    (d / "dir.json").mkdir()
    from dpfm.golden.mlp import GoldenTrainer
    from dpfm.golden.tasks import get_task
    trainer = GoldenTrainer(get_task("seed-sum").spec, 2)
    trainer.save(d / "ck.npz", extra={"task": "seed-sum"})
    (d / "s.csv").write_text("0.1,0.2,0.3,0.4,1.0\n" * 5)
    return d


def bad_values(f):
    """option -> bad values, shared by every command that has the option."""
    unwritable = ["/proc/dpfm/out.json", str(f / "dir.json"), "/dev/null/x.json"]
    return {
        "--k": ["0", "-1", "abc", "1.5", "99999999999999999999", "", "nan", "full,"],
        "--ks": ["0", "2,,4", "a", "", "-2", "2;4", "1e99"],
        "--epochs": ["-3", "x", "1e9", "", "nan"],
        "--lr": ["0", "-1", "nan", "inf", "x", "1e400", "-inf"],
        "--batch": ["0", "-1", "x", "1.5"],
        "--seed": ["-1", "x", "1.5", "99999999999999999999999"],
        "--momentum": ["-1", "x", "nan", "1", "2"],
        "--fixed": ["x=s99.1", "x=q16.12", "bogus", "x=s16.12,g=s32.20", "lut_bits=99", "lut_bits=x", "x=s16",
                    "x=s16.12,x"],
        "--formats": ["x=s99.1", "bogus", "lut_bits=2", "g=s8.2"],
        "--tangent": ["bogus", "toper-parallel-0", "toper-parallel-x", "exact-1"],
        "--task": ["nope", "", "seed_sum"],
        "--tasks": ["nope", "", "seed-sum,nope"],
        "--data": ["/nonexistent.npz", str(f / "text.npz"), str(f / "single.npy"), str(f / "no_y.npz"),
                   str(f / "nan.npz"), str(f / "shapes.npz"), str(f / "objects.npz")],
        "--json": unwritable, "--save": unwritable, "--out": ["/proc/dpfm/out", "/dev/null/out"],
        "--resume": ["/nonexistent.npz", str(f / "text.npz"), str(f / "single.npy")],
        "--backend": ["gpu", ""],
        "--dither": ["maybe", ""],
        "--lanes": ["0", "-1", "x", "999"],
        "--max-batch": ["0", "-1", "x", "100000"],
        "--toper": ["bogus", "parallel-1", "parallel-0", "parallel-99"],
        "--board": ["nope", ""],
        "--port": ["99999", "-1", "x"],
        "--baud": ["0", "-9600", "x"],
        "--pairs": ["nope/constant", "dither", "dither/nope", ""],
        "--lrs": ["0", "-1", "nan", "x", ""],
        "--workers": ["0", "x", "-2"],
        "--scheduler": ["not a url", "tcp://", "tcp://127.0.0.1:notaport"],
        "--samples": ["0", "-1", "x"],
        "--steps": ["-1", "x"],
        "--backends": ["", "golden", "golden,golden", "golden,nope", "golden,,sim"],
        "--split": ["test", ""],
        "--stream": ["/nonexistent.csv", str(f / "dir.json")],
        "--clock-mhz": ["0", "-1", "x", "nan"],
        "--onnx": unwritable,
        "--init": ["/nonexistent.onnx", str(f / "text.npz")],
        "--rules": ["nope", "", "dpfm-0", "dpfm-k", "fa,fa"],
        "--bits": ["1", "0", "x", "", "8,8"],
        "--quantizers": ["log", "", "symm,symm"],
        "--scopes": ["channel", ""],
        "--train-layers": ["0", "4", "x", "1,1", "", "-1", "1,,2"],
        "--resident": ["0", "65", "x", "-1", ""],
        "--resident-samples": ["-1", "x", "70000"],
    }


def bases(f):
    """Valid command lines (the work they would start is replaced by `Accepted`)."""
    return {
        "train": ["train", "--task", "seed-sum", "--epochs", "1", "--k", "2", "--lr", "0.1", "--batch", "10",
                  "--momentum", "0", "--seed", "0", "--fixed", "default", "--tangent", "toper", "--dither", "on",
                  "--backend", "golden", "--train-layers", "2,3", "--no-progress"],
        "train-data": ["train", "--data", "/nonexistent.npz", "--sizes", "4,5,1", "--activations",
                       "sigmoid,identity", "--loss", "mse", "--epochs", "1"],
        "train-board": ["train", "--task", "seed-sum", "--backend", "board", "--port", "socket://127.0.0.1:1",
                        "--baud", "3000000", "--epochs", "1"],
        "sweep": ["sweep", "--task", "seed-sum", "--ks", "2,4", "--epochs", "1", "--out", str(f / "sweep"),
                  "--train-layers", "last", "--no-progress"],
        "study": ["study", "--tasks", "seed-sum", "--ks", "2", "--pairs", "dither/constant", "--lrs", "0.1",
                  "--seeds", "0", "--epochs", "1", "--workers", "1", "--out", str(f / "study"), "--no-progress"],
        "compare": ["compare", "--tasks", "digits", "--rules", "backprop,dpfm-8", "--bits", "4,8", "--quantizers",
                    "symm", "--scopes", "layer", "--lrs", "8", "--seeds", "0", "--epochs", "1", "--workers", "1",
                    "--out", str(f / "compare"), "--no-progress"],
        "verilog": ["verilog", "--task", "seed-sum", "--k", "2", "--lanes", "1", "--max-batch", "16",
                    "--toper", "serial", "--formats", "x=s16.12", "-o", str(f / "core.v")],
        "build": ["build", "--board", "icebreaker", "--task", "seed-sum", "--k", "8", "--toper", "serial",
                  "--formats", "x=s16.12", "--max-batch", "16", "--lanes", "1", "--json", str(f / "build.json")],
        "serve": ["sim", "serve", "--task", "seed-sum", "--k", "2", "--lanes", "1", "--toper", "serial"],
        "info": ["info", "--port", "socket://127.0.0.1:1", "--baud", "3000000", "--json", str(f / "info.json")],
        "predict": ["predict", str(f / "ck.npz"), "--split", "val", "--backend", "golden", "--out", str(f / "p.npy"),
                    "--json", str(f / "p.json")],
        "verify": ["verify", str(f / "ck.npz"), "--backends", "golden,sim", "--samples", "10", "--steps", "1",
                   "--json", str(f / "v.json")],
        "online": ["online", "--task", "seed-sum", "--k", "2", "--samples", "5", "--clock-mhz", "12",
                   "--stream", str(f / "s.csv"), "--no-progress"],
        "export": ["export", str(f / "ck.npz"), "--onnx", str(f / "m.onnx")],
        "program": ["program", "--board", "icebreaker", "--task", "seed-sum", "--k", "8", "--toper", "serial"],
    }


def _replace(line, option, value):
    """`line` with `option`'s value replaced (or the option appended with `value`)."""
    line = list(line)
    if option in line:
        line[line.index(option) + 1] = value
    else:
        line += [option, value]
    return line


#: Options a base line does not have but that are bad on it anyway (they get appended).
EXTRA = {"train": ["--resume", "--save", "--json", "--init", "--resident"], "train-board": ["--resume"],
         "sweep": ["--json"], "online": ["--epochs", "--batch", "--json", "--save"],
         "program": ["--port", "--max-batch"], "study": ["--json", "--scheduler"], "compare": ["--json", "--scheduler"],
         "serve": ["--formats", "--max-batch", "--port", "--resident-samples"], "build": ["--max-batch"],
         "verilog": ["--resident-samples"]}
#: Structural damage: a missing value, an unknown option, a stray word.
GARBAGE = [["--k"], ["--no-such-option"], ["stray"], ["--epochs", "1", "--epochs"], ["--k", "2", "--k", "x"]]


def bad_lines(f, n_pairs=60, seed=1):
    values, lines = bad_values(f), []
    for name, base in bases(f).items():
        options = [o for o in base if o in values and o != "--data"] + EXTRA.get(name, [])
        if name == "train-data":
            options = ["--data"]
        for option in options:
            lines += [_replace(base, option, v) for v in values[option]]
        lines += [base + g for g in GARBAGE]
    rng = random.Random(seed)
    options_of = {name: [o for o in base if o in values] + EXTRA.get(name, []) for name, base in bases(f).items()}
    names = [n for n in bases(f) if n != "train-data" and len(options_of[n]) >= 2]
    for _ in range(n_pairs):   # two bad options at once: the first found must be reported, cleanly
        name = rng.choice(names)
        base = bases(f)[name]
        o1, o2 = rng.sample(options_of[name], 2)
        lines.append(_replace(_replace(base, o1, rng.choice(values[o1])), o2, rng.choice(values[o2])))
    unique = []
    for line in lines:
        if line not in unique:
            unique.append(line)
    return unique


@pytest.fixture
def guarded(monkeypatch):
    """Replace every entry point of real work by `Accepted`."""
    import dpfm.boards.build
    import dpfm.golden.trainer
    import dpfm.host.study.cluster
    import dpfm.sim.cosim
    monkeypatch.setattr(dpfm.golden.trainer.Trainer, "train", _accepted)
    monkeypatch.setattr(dpfm.boards.build, "build_board", _accepted)
    monkeypatch.setattr(dpfm.sim.cosim, "build", _accepted)
    monkeypatch.setattr(dpfm.sim.cosim, "core_slave", _accepted)   # before a core exists that is never built
    monkeypatch.setattr(dpfm.host.study.cluster, "open_client", _accepted)
    monkeypatch.setattr("dpfm.host.commands.verilog.write_text", _accepted)
    monkeypatch.setattr(dpfm.golden.trainer.Trainer, "train_batch", _accepted)   # online
    monkeypatch.setattr(dpfm.boards.build, "program_built", _accepted)
    monkeypatch.setattr("dpfm.host.commands.predict.checkpoint_trainer", _accepted)
    monkeypatch.setattr("dpfm.host.commands.verify.checkpoint_trainer", _accepted)
    monkeypatch.setattr("dpfm.host.onnx_mlp.to_onnx", _accepted)


def test_there_are_at_least_200_distinct_bad_lines(files):
    assert len(bad_lines(files)) >= 200


def test_every_bad_line_gets_one_error_line_and_exit_2(files, guarded, capsys):
    failures = []
    for argv in bad_lines(files):
        try:
            code = main(list(argv))
        except SystemExit as exc:   # argparse's own errors
            code = exc.code
        except Accepted:
            code = "accepted: the work started"
        except Exception as exc:   # noqa: BLE001 - what the test is looking for
            code = f"traceback ({type(exc).__name__}: {exc})"
        err = capsys.readouterr().err
        last = err.strip().splitlines()[-1] if err.strip() else ""
        if code != 2 or "Traceback" in err or not (last.startswith("dpfm") and ": error: " in last):
            failures.append(f"{argv}: exit {code}, stderr {err.strip()[-300:]!r}")
    assert not failures, f"{len(failures)} bad lines were not refused cleanly:\n" + "\n".join(failures[:40])


def test_every_base_line_reaches_its_work(files, guarded, capsys):
    """The mutated lines test something only if the line they come from is accepted (the base lines that
    name a missing data file or an unreachable port do so on purpose)."""
    for name, line in bases(files).items():
        if name in ("train-data", "train-board", "info"):
            continue
        with pytest.raises(Accepted):
            main(list(line))
