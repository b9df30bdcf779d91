"""`dpfm bench approx`: every hardware toper mode is trained and compared, JSON + table + PNG are written."""

import json

import pytest

from dpfm.host.bench.approx import BASELINES, MODES
from dpfm.host.cli import main


@pytest.mark.slow   # trains every mode at two K, plus the baselines
def test_approx_study_covers_every_mode(tmp_path, capsys):
    out = tmp_path / "approx"
    assert main(["bench", "approx", "--tasks", "seed-sum", "--epochs", "1", "--ks", "1,3", "--out", str(out)]) == 0
    res = json.loads((out / "approx.json").read_text())["tasks"]["seed-sum"]
    assert {(r["mode"], r["k"]) for r in res["runs"]} == (
        {(m, k) for m in MODES for k in (1, 3)} | {(b, None) for b in BASELINES})
    for f in res["fidelity"]:
        for mode in ("hw_toper", "hw_parallel", "hw_parallel_3"):
            assert 0.0 < f[f"cos_{mode}"] <= 1.0 + 1e-12 and 0.0 <= f[f"differ_{mode}"] <= 1.0
    assert (out / "approx.png").stat().st_size > 0
    assert "hw-parallel-3" in capsys.readouterr().out


def test_unwritable_output_is_refused_before_the_study(tmp_path, capsys, monkeypatch):
    from dpfm.host.bench import approx
    monkeypatch.setattr(approx, "study_task", lambda *a, **k: pytest.fail("the study ran before the check"))
    (tmp_path / "file").write_text("x")
    assert main(["bench", "approx", "--tasks", "seed-sum", "--out", str(tmp_path / "file" / "approx")]) == 2
    assert main(["bench", "approx", "--tasks", "seed-sum", "--json", str(tmp_path)]) == 2
    assert all(line.startswith("dpfm: error: ") for line in capsys.readouterr().err.splitlines())


def test_failed_write_leaves_the_old_outputs(tmp_path, disk_full):
    out = tmp_path / "approx"
    out.mkdir()
    (out / "approx.json").write_text('{"old": true}')
    (out / "approx.png").write_bytes(b"old png")
    with pytest.raises(OSError):
        main(["bench", "approx", "--tasks", "seed-sum", "--epochs", "1", "--ks", "1", "--out", str(out)])
    assert json.loads((out / "approx.json").read_text()) == {"old": True}
    assert (out / "approx.png").read_bytes() == b"old png"
    assert sorted(p.name for p in out.iterdir()) == ["approx.json", "approx.png"]
