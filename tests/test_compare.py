"""`dpfm compare`: a tiny grid of rules and storages on a LocalCluster, its target, and every refusal before
work starts."""

import json

import pytest

from dpfm.host import cli
from dpfm.host.study import compare, compare_report

TINY = ["--tasks", "digits", "--rules", "backprop,dpfm-8", "--bits", "4,12", "--quantizers", "asymm",
        "--scopes", "layer", "--seeds", "0,1", "--tune-seeds", "100", "--lrs", "16,32", "--epochs", "1",
        "--workers", "1", "--no-progress"]


def dpfm(*argv):
    return cli.main([str(a) for a in argv])


def test_tiny_grid_writes_report_figure_and_json(tmp_path, capsys):
    out = tmp_path / "cmp"
    assert dpfm("compare", *TINY, "--out", out) == 0
    result = json.loads((out / "compare.json").read_text())
    cells = {(c["rule"], c["storage"]): c for c in result["cells"]}
    assert set(cells) == {(r, s) for r in ("backprop", "dpfm-8") for s in ("float", "asymm4-layer", "asymm12-layer")}
    acc = cells[("dpfm-8", "asymm12-layer")]["accuracy"]
    assert acc["n"] == 2 and acc["min"] <= acc["median"] <= acc["max"]
    assert all(c["lr"] in (16, 32) for c in cells.values())
    # backprop at 4 bits is far below its float accuracy: the target applies to 12 bits only
    assert [t["storage"] for t in result["targets"]] == ["asymm12-layer"]
    report = (out / "report.md").read_text()
    assert "| dpfm-8 |" in report and "ASYMM weights, one range per layer" in report and "| 4 bits | 12 bits | float |" in report
    assert [p.name for p in out.glob("*.png")] == ["bits-digits.png"]
    # 2 rules, each 1 tune unit and 3 storages x 2 seeds of eval units
    assert len(list((out / "cache").glob("*.json"))) == 2 * (1 + 3 * 2)
    assert not list(out.glob(".tmp-*"))
    assert "of 1 met" in capsys.readouterr().out


def test_storage_names_round_trip():
    grid = compare.CompareGrid(tasks=("digits",), rules=("fa",), bits=(2, 16))
    assert grid.storages() == ["float", "symm2-global", "symm16-global", "symm2-layer", "symm16-layer",
                               "asymm2-global", "asymm16-global", "asymm2-layer", "asymm16-layer"]
    for name in grid.storages()[1:]:
        assert compare.storage_quant(name).label == name
    assert compare.storage_quant("float") is None


def test_target_skips_widths_where_backprop_itself_fails():
    grid = compare.CompareGrid(tasks=("digits",), rules=("backprop", "dpfm-8"), bits=(4, 8), quantizers=("symm",),
                               scopes=("global",))

    def cell(acc):
        return {"accuracy": {"median": acc}, "val_loss": None, "lr": 1}
    table = {("digits", "backprop", "float"): cell(0.96), ("digits", "backprop", "symm4-global"): cell(0.90),
             ("digits", "backprop", "symm8-global"): cell(0.95), ("digits", "dpfm-8", "symm4-global"): cell(0.10),
             ("digits", "dpfm-8", "symm8-global"): cell(0.93)}
    rows = compare_report.targets(grid, table)
    assert [(r["storage"], r["met"]) for r in rows] == [("symm8-global", True)]
    table[("digits", "dpfm-8", "symm8-global")] = cell(0.9299)
    assert not compare_report.targets(grid, table)[0]["met"]


@pytest.mark.parametrize("extra, message", [
    (["--rules", "backprop,sgd"], "unknown learning rule 'sgd'"),
    (["--rules", "dpfm-0"], "is not dpfm-K"),
    (["--rules", "dpfm-x"], "is not dpfm-K"),
    (["--bits", "1,8"], "1 bits cannot hold a weight grid"),
    (["--bits", "eight"], "--bits must be integers"),
    (["--quantizers", "log"], "unknown quantizer 'log'"),
    (["--scopes", "channel"], "unknown quantization scope 'channel'"),
    (["--seeds", ""], "the grid has no cells"),
    (["--rules", ","], "the grid has no cells"),
    (["--epochs", "0"], "the grid has no cells"),
    (["--tasks", "emnist"], "unknown task"),
    (["--lrs", ""], "the grid has no cells"),
    (["--lrs", "8,0"], "is not a positive number"),
    (["--lrs", "nan"], "is not a positive number"),
    (["--bits", ""], "the grid has no cells"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "cmp"
    assert dpfm("compare", *TINY, *extra, "--out", out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dpfm: error: ") and message in err[0] and err[0].endswith(")")
    assert not out.exists()
