"""`dpfm program`: nothing when the board runs the build, no rebuild when the sources did not change, and the
identity read back after programming. The board is the co-simulated core (its UART rate is the target's here);
the build and the programmer are recorded instead of run, except where a test says otherwise."""

import dataclasses

import pytest

from dpfm.boards import build as board_build
from dpfm.boards import targets
from dpfm.boards.report import BuildReport
from dpfm.golden.contract.errors import DpfmError
from dpfm.host.cli import main
from dpfm.hw.config import CoreConfig
from dpfm.hw.identity import core_identity
from dpfm.sim.cosim import SIM_BAUD

K = 4


@pytest.fixture(scope="module")
def board():
    """A co-simulated seed-sum K=4 core, as a board that runs it."""
    from dpfm.sim.cosim import Cosim, build, core_slave
    with Cosim(build(core_slave(CoreConfig.from_task("seed-sum", K)))) as sim:
        yield sim


@pytest.fixture
def calls(monkeypatch):
    """The iCEBreaker target at the co-simulation's UART rate; build_board and the programmer recorded."""
    monkeypatch.setitem(targets.TARGETS, "icebreaker", dataclasses.replace(targets.TARGETS["icebreaker"],
                                                                           baud=SIM_BAUD))
    log = []

    def fake_build(board_name, cfg, build_dir, **kw):
        log.append(("build", cfg.k))
        return BuildReport(board=board_name, resources={}, fmax_mhz=30.0, clock_mhz=12.0)

    monkeypatch.setattr(board_build, "build_board", fake_build)
    monkeypatch.setattr(board_build, "program_built", lambda board_name, build_dir: log.append(("program",)))
    return log


def _identity_text(k):
    return core_identity(CoreConfig.from_task("seed-sum", k), SIM_BAUD).text()


@pytest.mark.verilator
def test_a_board_that_runs_the_build_is_left_alone(board, calls, tmp_path, capsys):
    assert main(["program", "--board", "icebreaker", "--task", "seed-sum", "--k", str(K), "--port", board.url,
                 "--build-dir", str(tmp_path)]) == 0
    assert "already runs build" in capsys.readouterr().out and calls == []


@pytest.mark.verilator
def test_another_build_is_programmed_from_the_matching_bitstream_and_read_back(board, calls, tmp_path, capsys):
    (tmp_path / board_build.IDENTITY_NAME).write_text(_identity_text(8))
    rc = main(["program", "--board", "icebreaker", "--task", "seed-sum", "--k", "8", "--port", board.url,
               "--build-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert "reusing the bitstream" in captured.out and calls == [("program",)]
    # the co-simulated "board" still runs K=4: the read-back catches it
    assert rc == 2 and "after programming" in captured.err and "does not run build" in captured.err


def test_without_a_matching_bitstream_it_builds_first(calls, tmp_path, capsys):
    (tmp_path / board_build.IDENTITY_NAME).write_text(_identity_text(8).replace("src=", "src=0"))
    assert main(["program", "--board", "icebreaker", "--task", "seed-sum", "--k", "8",
                 "--build-dir", str(tmp_path)]) == 0
    assert calls == [("build", 8), ("program",)] and "building build" in capsys.readouterr().out
    calls.clear()
    (tmp_path / board_build.IDENTITY_NAME).write_text(_identity_text(8))
    assert main(["program", "--board", "icebreaker", "--task", "seed-sum", "--k", "8",
                 "--build-dir", str(tmp_path)]) == 0
    assert calls == [("program",)]
    calls.clear()
    assert main(["program", "--board", "icebreaker", "--task", "seed-sum", "--k", "8", "--force",
                 "--build-dir", str(tmp_path)]) == 0
    assert calls == [("build", 8), ("program",)]


def test_a_missing_programmer_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("ICEPROG", str(tmp_path / "no-iceprog"))
    with pytest.raises(DpfmError, match="programmer 'iceprog' is not installed"):
        board_build.program_built("icebreaker", tmp_path)
