"""`dpfm study`: a tiny grid on a LocalCluster and on a given scheduler, and every refusal before work starts."""

import json

import pytest

from dpfm.host import cli
from dpfm.host.study.grid import Grid
from dpfm.host.study.tuning import choose_lrs, tuning_split

TINY = ["--tasks", "seed-sum", "--ks", "2,full", "--pairs", "topk/constant,dither/ef", "--seeds", "0,1",
        "--tune-seeds", "100", "--lrs", "0.1,0.3", "--epochs", "2", "--workers", "1", "--no-progress"]


def dpfm(*argv):
    return cli.main([str(a) for a in argv])


def test_tiny_grid_writes_report_figures_and_json(tmp_path, capsys):
    out = tmp_path / "study"
    assert dpfm("study", *TINY, "--out", out) == 0
    result = json.loads((out / "study.json").read_text())
    cells = {(c["selection"], c["lr_rule"], c["k"]): c for c in result["cells"]}
    assert set(cells) == {(s, r, k) for s, r in (("topk", "constant"), ("dither", "ef")) for k in ("2", "full")}
    stats = cells[("dither", "ef", "2")]["val_loss"]
    assert stats["n"] == 2 and stats["min"] <= stats["median"] <= stats["max"]
    assert all(lr in (0.1, 0.3) for c in cells.values() for lr in c["lrs"])
    assert [t["k"] for t in result["targets"]] == [2, 2]  # only seed-sum's K=2 target is in this grid
    report = (out / "report.md").read_text()
    assert "| dither | ef |" in report and "Tuning rule:" in report
    assert sorted(p.name for p in out.glob("*.png")) == ["curves-seed-sum-dither-ef.png",
                                                         "curves-seed-sum-topk-constant.png", "vs-k-seed-sum.png"]
    # 4 groups (K=2 per pair, K=full per lr rule), each 1 tune and 2 eval units
    assert len(list((out / "cache").glob("*.json"))) == 4 * (1 + 2)
    assert not list(out.glob(".tmp-*"))
    assert "winner:" in capsys.readouterr().out


def test_existing_scheduler_reuses_the_cache(tmp_path, capsys):
    from distributed import LocalCluster
    out = tmp_path / "study"
    assert dpfm("study", *TINY, "--out", out) == 0
    first = json.loads((out / "study.json").read_text())["cells"]
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        assert dpfm("study", *TINY, "--out", out, "--scheduler", cluster.scheduler_address) == 0
    assert json.loads((out / "study.json").read_text())["cells"] == first


@pytest.mark.parametrize("extra, message", [
    (["--pairs", "best/constant"], "unknown selection rule 'best'"),
    (["--pairs", "topk/adam"], "unknown learning-rate rule 'adam'"),
    (["--lrs", "0.1,0"], "non-finite or non-positive step"),
    (["--lrs", "inf"], "non-finite or non-positive step"),
    (["--seeds", ""], "the grid has no cells"),
    (["--ks", ","], "the grid has no cells"),
    (["--epochs", "0"], "the grid has no cells"),
    (["--tasks", "emnist"], "unknown task"),
    (["--pairs", "dither"], "is not SELECTION/LR_RULE"),
])
def test_bad_input_is_one_line_and_writes_nothing(tmp_path, capsys, extra, message):
    out = tmp_path / "study"
    assert dpfm("study", *TINY, *extra, "--out", out) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dpfm: error: ") and message in err[0] and err[0].endswith(")")
    assert not out.exists()


def test_unreachable_scheduler(tmp_path, capsys):
    out = tmp_path / "study"
    assert dpfm("study", *TINY, "--out", out, "--scheduler", "tcp://127.0.0.1:9") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("dpfm: error: cannot reach the Dask scheduler at tcp://127.0.0.1:9") and "\n" not in err
    assert not (out / "study.json").exists() and not (out / "report.md").exists()


def test_unwritable_output_is_refused_before_the_grid(tmp_path, capsys):
    (tmp_path / "study").write_text("a file, not a directory")
    assert dpfm("study", *TINY, "--out", tmp_path / "study") == 2
    assert "cannot write" in capsys.readouterr().err


def test_tuning_rule_takes_the_lowest_median_and_the_smaller_rate_on_ties():
    results = [{"final": [[0.3, 0.1, 0.2], [1.0, 1.0, float("inf")]]},
               {"final": [[0.3, 0.2, 0.1], [1.0, 1.0, 0.5]]},
               {"final": [[0.3, 0.15, 0.9], [1.0, 1.0, float("inf")]]}]
    assert choose_lrs(results, 2, [0.01, 0.1, 1.0]) == [0.1, 0.01]


def test_tuning_split_is_carved_from_the_training_split():
    import numpy as np
    X = np.arange(100.0)[:, None]
    X_fit, _, X_hold, _ = tuning_split(X, X)
    assert len(X_hold) == 20 and sorted(np.concatenate([X_fit, X_hold])[:, 0]) == list(range(100))


def test_full_is_one_group_per_lr_rule():
    grid = Grid(tasks=("seed-sum",), ks=(2, None), pairs=(("topk", "constant"), ("dither", "constant"),
                                                           ("dither", "ef")))
    groups = grid.groups()
    assert [(s, r, ks) for _, s, r, ks in groups if ks == (None,)] == [("topk", "constant", (None,)),
                                                                      ("topk", "ef", (None,))]
    assert len(groups) == 5
