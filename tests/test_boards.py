"""Board targets, build reports and the real iCE40 flow.

Report parsing is checked on nextpnr's own formats (a `--report` JSON and the log of a design that did not
fit, as nextpnr 0.4 writes them); the `synth` test runs the whole iCEBreaker flow (yosys `synth_ice40 -dsp`,
nextpnr-ice40, icepack) on the seed-sum core and takes a few minutes.
"""

import json
import shutil

import pytest

from boards.build import build_board, program_board
from boards.report import parse_failed_nextpnr_log, parse_nextpnr_report
from boards.targets import TARGETS, Target, get_target
from golden.errors import DpfmError
from golden.fixedpoint import HwFormats
from hw.config import CoreConfig

ICE40_REPORT = {
    "fmax": {"cd_sync_clk12_0__io": {"achieved": 31.25, "constraint": 12.0},
             "cd_other": {"achieved": 80.0, "constraint": 12.0}},
    "utilization": {"ICESTORM_LC": {"available": 5280, "used": 3011}, "ICESTORM_RAM": {"available": 30, "used": 17},
                    "ICESTORM_DSP": {"available": 8, "used": 6}, "ICESTORM_SPRAM": {"available": 4, "used": 0},
                    "SB_IO": {"available": 96, "used": 3}},
}

FAILED_LOG = """Info: Device utilisation:
Info: \t         ICESTORM_LC:  7880/ 5280   149%
Info: \t        ICESTORM_RAM:    29/   30    96%
Info: \t               SB_IO:     3/   96     3%
Info: \t        ICESTORM_DSP:    20/    8   250%
Info: \t      ICESTORM_SPRAM:     0/    4     0%

Info: Placed 4 cells based on constraints.
ERROR: Unable to place cell 'core.x_SB_MAC16_O_DSP', no BELs remaining to implement cell type 'ICESTORM_DSP'
0 warnings, 1 error
"""


def test_report_json_gives_resources_and_slowest_clock(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(ICE40_REPORT))
    report = parse_nextpnr_report(path, "ice40", "icebreaker")
    assert report.fits and report.fmax_mhz == 31.25 and report.clock_mhz == 12.0
    assert {k: (u.used, u.available) for k, u in report.resources.items()} == {
        "luts": (3011, 5280), "dsps": (6, 8), "bram": (17, 30), "spram": (0, 4)}


def test_failed_log_gives_utilisation_and_error(tmp_path):
    path = tmp_path / "top.tim"
    path.write_text(FAILED_LOG)
    report = parse_failed_nextpnr_log(path, "ice40", "icebreaker")
    assert not report.fits and report.fmax_mhz is None
    assert "ICESTORM_DSP" in report.error
    assert (report.resources["luts"].used, report.resources["dsps"].used) == (7880, 20)
    assert report.to_json()["fits"] is False


def test_log_without_error_is_not_a_report(tmp_path):
    path = tmp_path / "top.tim"
    path.write_text(FAILED_LOG.replace("ERROR:", "Info:"))
    assert parse_failed_nextpnr_log(path, "ice40", "icebreaker") is None
    assert parse_failed_nextpnr_log(tmp_path / "missing.tim", "ice40", "icebreaker") is None


def test_missing_report_is_a_user_error(tmp_path):
    with pytest.raises(DpfmError, match="no report"):
        parse_nextpnr_report(tmp_path / "none.json", "ecp5", "ulx3s-85f")


def test_targets_name_their_platforms():
    assert set(TARGETS) == {"icebreaker", "ulx3s-85f"}
    assert get_target("icebreaker").platform().device == "iCE40UP5K"
    assert get_target("ulx3s-85f").platform().device == "LFE5U-85F"
    with pytest.raises(DpfmError, match="unknown board"):
        get_target("de0")


def test_config_too_large_for_board_is_rejected_before_building():
    with pytest.raises(DpfmError, match="RAM bits"):
        CoreConfig.from_task("digits", 8).check_fits("icebreaker")
    CoreConfig.from_task("digits", 8).check_fits("ulx3s-85f")


def test_missing_programmer_is_a_clear_error():
    target = Target(name="x", platform_module="", platform_class="", family="ice40", default_task="seed-sum",
                    programmer="no-such-programmer-dpfm")
    with pytest.raises(DpfmError, match="not installed"):
        program_board(target, None, "bitstream")


@pytest.mark.synth
@pytest.mark.slow
@pytest.mark.skipif(any(shutil.which(t) is None for t in ("yosys", "nextpnr-ice40", "icepack")),
                    reason="needs the iCE40 toolchain")
def test_icebreaker_build_of_seed_sum_core(tmp_path):
    """Real synthesis, place and route of link + seed-sum core (K=1: see the report on K=8) for the UP5K."""
    fmts = HwFormats()
    report = build_board("icebreaker", CoreConfig.from_task("seed-sum", 1, fmts), tmp_path)
    assert report.fits, report.error
    for name in ("luts", "dsps", "bram"):
        assert 0 < report.resources[name].used <= report.resources[name].available
    assert report.clock_mhz == pytest.approx(12.0, rel=1e-3) and report.fmax_mhz >= report.clock_mhz  # meets the board clock
    assert (tmp_path / "dpfm_top.bin").stat().st_size > 0
