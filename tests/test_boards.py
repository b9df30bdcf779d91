"""Board targets, clock plans, board tops, build reports and the real iCE40 flow.

The ECP5 PLL arithmetic is checked exactly at the TN1263 limits; the ULX3S top is elaborated for its
platform (small seed-sum core: the clocking does not depend on the core) to check the EHXPLLL it
instantiates, the reset it drives, the UART divisor and the clock constraint that reaches nextpnr.
Report parsing is checked on nextpnr's own formats (a `--report` JSON and the log of a design that did not
fit, as nextpnr 0.4 writes them); the `synth` test runs the whole iCEBreaker flow (yosys `synth_ice40 -dsp`,
nextpnr-ice40, icepack) on the seed-sum core and takes a few minutes.
"""

import json
import shutil
from fractions import Fraction

import pytest
from amaranth.hdl import Fragment, Instance
from amaranth.lib.cdc import AsyncFFSynchronizer

from dpfm.boards.build import build_board, program_board
from dpfm.boards.clocks import BoardClock, Ecp5Pll, Ice40Pll, exact_bit_divisor, sync_clock
from dpfm.boards.report import parse_failed_nextpnr_log, parse_nextpnr_report
from dpfm.boards.targets import TARGETS, Target, get_target
from dpfm.boards.top import BoardTop
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import HwFormats
from dpfm.hw.config import CoreConfig
from dpfm.hw.link import Link

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


def test_report_json_gives_resources_and_slowest_run_clock(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(ICE40_REPORT))
    report = parse_nextpnr_report(path, "ice40", "icebreaker", 12_000_000)
    assert report.fits and report.timing_met and report.fmax_mhz == 31.25 and report.clock_mhz == 12.0
    assert {k: (u.used, u.available) for k, u in report.resources.items()} == {
        "luts": (3011, 5280), "dsps": (6, 8), "bram": (17, 30), "spram": (0, 4)}


# nextpnr-ecp5's report of the ULX3S build (digits, K=8) at 45 MHz from the PLL ("$glbnet$clk" is the LPF's
# `clocks.pll_clk` once promoted to a global), plus the 25 MHz input pin's figure: the input only feeds the
# PLL and must not be taken for the core's clock even though it is listed.
ECP5_PLL_REPORT = {
    "fmax": {"$glbnet$clk": {"achieved": 56.36025619506836, "constraint": 45.000450134277344},
             "$glbnet$clk25_0__io": {"achieved": 400.0, "constraint": 25.0}},
    "utilization": {"TRELLIS_COMB": {"available": 83640, "used": 6796},
                    "MULT18X18D": {"available": 156, "used": 6}, "DP16KD": {"available": 208, "used": 17},
                    "TRELLIS_FF": {"available": 83640, "used": 2875}, "EHXPLLL": {"available": 4, "used": 1}},
}


def _write_report(tmp_path, fmax: dict):
    path = tmp_path / "r.json"
    path.write_text(json.dumps(dict(ECP5_PLL_REPORT, fmax=fmax)))
    return path


def test_report_takes_the_clock_constrained_at_the_run_clock(tmp_path):
    report = parse_nextpnr_report(_write_report(tmp_path, ECP5_PLL_REPORT["fmax"]), "ecp5", "ulx3s-85f",
                                  45_000_000, "ECP5 PLL 45 MHz")
    assert (report.fmax_mhz, report.clock_mhz, report.clock_source) == (56.36025619506836, 45.0, "ECP5 PLL 45 MHz")
    assert report.timing_met and report.to_json()["timing_met"] is True
    assert {k: (u.used, u.available) for k, u in report.resources.items()} == {
        "luts": (6796, 83640), "dsps": (6, 156), "bram": (17, 208), "ffs": (2875, 83640)}


def test_report_says_when_the_run_clock_misses_timing(tmp_path):
    slow = {"$glbnet$clk": {"achieved": 44.9, "constraint": 45.000450134277344}}
    report = parse_nextpnr_report(_write_report(tmp_path, slow), "ecp5", "ulx3s-85f", 45_000_000)
    assert report.fits and not report.timing_met


def test_report_without_the_run_clock_constraint_is_an_error(tmp_path):
    """A constraint lost on the way to nextpnr (only the 25 MHz pin constrained) must not pass as a Fmax."""
    only_pin = {"$glbnet$clk25_0__io": {"achieved": 60.0, "constraint": 25.0}}
    with pytest.raises(DpfmError, match=r"no clock constrained at 45 MHz \(clocks: \$glbnet\$clk25_0__io at 25 MHz\)"):
        parse_nextpnr_report(_write_report(tmp_path, only_pin), "ecp5", "ulx3s-85f", 45_000_000)
    with pytest.raises(DpfmError, match=r"\(clocks: none\)"):
        parse_nextpnr_report(_write_report(tmp_path, {}), "ecp5", "ulx3s-85f", 45_000_000)


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
        parse_nextpnr_report(tmp_path / "none.json", "ecp5", "ulx3s-85f", 45_000_000)


def test_targets_name_their_platforms():
    assert set(TARGETS) == {"icebreaker", "ulx3s-85f"}
    assert get_target("icebreaker").platform().device == "iCE40UP5K"
    assert get_target("ulx3s-85f").platform().device == "LFE5U-85F"
    with pytest.raises(DpfmError, match="unknown board"):
        get_target("de0")


def test_ulx3s_pll_makes_45_mhz_exactly():
    pll = sync_clock("ulx3s-85f")
    assert pll == Ecp5Pll(input_hz=25_000_000, clki_div=5, clkfb_div=9, clkop_div=12)
    assert (pll.pfd_hz, pll.output_hz, pll.vco_hz) == (5_000_000, 45_000_000, 540_000_000)
    assert pll.sync_hz(get_target("ulx3s-85f").platform()) == 45_000_000
    assert sync_clock("icebreaker") == BoardClock()


@pytest.mark.parametrize("dividers", [
    (8, 16, 12),     # PFD exactly 3.125 MHz (the minimum): 50 MHz, VCO 600
    (5, 10, 16),     # VCO exactly 800 MHz (the maximum)
    (5, 10, 8),      # VCO exactly 400 MHz (the minimum)
    (1, 16, 2),      # PFD 25 MHz, 400 MHz output (the maximum), VCO 800
])
def test_pll_limits_are_inclusive(dividers):
    Ecp5Pll(25_000_000, *dividers)


@pytest.mark.parametrize("input_hz, dividers, problem", [
    (25_000_000, (9, 18, 12), "PFD frequency 2.77778 MHz"),    # 25 / 9 < 3.125 MHz
    (25_000_000, (5, 9, 18), "VCO frequency 810 MHz"),
    (25_000_000, (5, 9, 8), "VCO frequency 360 MHz"),
    (25_000_000, (5, 1, 100), "output clock 5 MHz"),          # VCO 500 MHz is fine, CLKOP < 10 MHz is not
    (5_000_000, (1, 9, 12), "input clock 5 MHz"),
    (25_000_000, (0, 9, 12), "clki_div 0"),
    (25_000_000, (5, 129, 4), "clkfb_div 129"),
    (25_000_000, (5, 9, 12.0), "clkop_div 12.0"),
])
def test_impossible_pll_is_a_user_error(input_hz, dividers, problem):
    with pytest.raises(DpfmError, match=problem.replace(".", r"\.")):
        Ecp5Pll(input_hz, *dividers)


def test_pll_must_match_the_board_oscillator_and_give_whole_hz():
    platform = get_target("ulx3s-85f").platform()
    with pytest.raises(DpfmError, match="12 MHz input but the board clock is 25 MHz"):
        Ecp5Pll(12_000_000, 1, 4, 12).sync_hz(platform)
    thirds = Ecp5Pll(25_000_000, 3, 5, 12)      # 41.666... MHz: a valid PLL, but no exact bit time
    assert thirds.output_hz == Fraction(125_000_000, 3)
    with pytest.raises(DpfmError, match="not a whole number of Hz"):
        thirds.sync_hz(platform)


def test_bit_divisor_must_be_exact():
    assert exact_bit_divisor(45_000_000, 3_000_000) == 15
    assert exact_bit_divisor(12_000_000, 3_000_000) == 4
    assert exact_bit_divisor(Fraction(90_000_000, 2), 3_000_000) == 15
    with pytest.raises(DpfmError, match="25 MHz is not a whole multiple of 3000000 baud"):
        exact_bit_divisor(25_000_000, 3_000_000)     # divisor 8 would be 4% fast
    with pytest.raises(DpfmError, match="not a whole multiple"):
        exact_bit_divisor(Fraction(125_000_000, 3), 3_000_000)
    with pytest.raises(DpfmError, match="needs >= 4"):
        exact_bit_divisor(9_000_000, 3_000_000)      # exact, but 3 cycles per bit is too few for the receiver


@pytest.mark.parametrize("resident", [0, 64], ids=["streamed", "resident"])
@pytest.mark.parametrize("board", sorted(TARGETS))
def test_every_target_has_an_exact_uart_divisor_at_its_run_clock(board, resident):
    target = get_target(board)
    hz = sync_clock(board, CoreConfig.from_task("seed-sum", 1, resident=resident)).sync_hz(target.platform())
    assert target.baud >= 3_000_000 and exact_bit_divisor(hz, target.baud) * target.baud == hz


def test_a_resident_icebreaker_core_runs_from_the_ice40_pll_at_18_mhz():
    """docs/ARITHMETIC.md 7: a resident core bounds its own throughput, so it runs at 6 x 3 Mbaud; a streamed
    one stays on the oscillator (the UART bounds it)."""
    cfg = CoreConfig.from_task("seed-sum", 4, resident=320)
    pll = sync_clock("icebreaker", cfg)
    assert pll == Ice40Pll(input_hz=12_000_000, divr=0, divf=47, divq=5, filter_range=1)
    assert (pll.pfd_hz, pll.vco_hz, pll.output_hz) == (12_000_000, 576_000_000, 18_000_000)
    assert sync_clock("icebreaker", CoreConfig.from_task("seed-sum", 4)) == BoardClock()
    assert sync_clock("ulx3s-85f", cfg) == sync_clock("ulx3s-85f")
    target = get_target("icebreaker")
    fragments = dict(_walk(Fragment.get(BoardTop(cfg, target.baud, pll), target.platform())))
    plls = [f for f in fragments.values() if isinstance(f, Instance) and f.type == "SB_PLL40_PAD"]
    assert len(plls) == 1
    assert {k: plls[0].parameters[k] for k in ("DIVR", "DIVF", "DIVQ", "FILTER_RANGE", "FEEDBACK_PATH")} == {
        "DIVR": 0, "DIVF": 47, "DIVQ": 5, "FILTER_RANGE": 1, "FEEDBACK_PATH": "SIMPLE"}
    assert [link.divisor for link in _links(fragments)] == [6]    # 18 MHz / 3 Mbaud
    pcf = target.platform().prepare(BoardTop(cfg, target.baud, pll), name="dpfm_top").files["dpfm_top.pcf"]
    assert "set_frequency clocks.pll_clk 18.0" in pcf.splitlines()


@pytest.mark.parametrize("dividers, match", [
    ((0, 55, 0, 1), "divq 0 is outside"),             # DIVQ 0 is not a setting of the SB_PLL40
    ((0, 40, 5, 1), "VCO frequency 492 MHz"),         # below 533 MHz
    ((1, 55, 5, 1), "PFD frequency 6 MHz"),           # below 10 MHz
    ((0, 87, 1, 1), "output clock 528 MHz"),          # above 275 MHz
    ((0, 44, 6, 1), "output clock 8.4375 MHz"),       # below 16 MHz
    ((0, 55, 5, 8), "filter_range 8 is outside")])
def test_ice40_pll_dividers_outside_the_device_limits_are_refused(dividers, match):
    with pytest.raises(DpfmError, match=match):
        Ice40Pll(12_000_000, *dividers)


def _walk(fragment, path=()):
    yield path, fragment
    for sub, name, _ in fragment.subfragments:
        yield from _walk(sub, path + (name,))


def _elaborate(board):
    """The board top (seed-sum core, K=1) elaborated for the board's platform: {path: fragment}."""
    target = get_target(board)
    top = BoardTop(CoreConfig.from_task("seed-sum", 1), target.baud, sync_clock(board))
    platform = target.platform()
    return dict(_walk(Fragment.get(top, platform))), platform


def _links(fragments):
    return [o for f in fragments.values() for o in (f.origins or ()) if isinstance(o, Link)]


def test_ulx3s_top_runs_sync_from_an_ehxplll_at_45_mhz():
    fragments, platform = _elaborate("ulx3s-85f")
    plls = {path: f for path, f in fragments.items() if isinstance(f, Instance) and f.type == "EHXPLLL"}
    assert list(plls) == [("clocks", "pll")]
    pll = plls["clocks", "pll"]
    assert {k: pll.parameters[k] for k in ("CLKI_DIV", "CLKFB_DIV", "CLKOP_DIV", "CLKOP_CPHASE", "FEEDBK_PATH",
                                          "CLKOP_ENABLE")} == {
        "CLKI_DIV": 5, "CLKFB_DIV": 9, "CLKOP_DIV": 12, "CLKOP_CPHASE": 11, "FEEDBK_PATH": "CLKOP",
        "CLKOP_ENABLE": "ENABLED"}
    assert (pll.attrs["FREQUENCY_PIN_CLKI"], pll.attrs["FREQUENCY_PIN_CLKOP"]) == ("25", "45")
    clkop, lock = pll.ports["CLKOP"][0], pll.ports["LOCK"][0]
    assert pll.ports["CLKFB"][0] is clkop                       # feedback from CLKOP, as FEEDBK_PATH says
    # sync (defined in the top, with a reset) is clocked by CLKOP, its reset released by a synchronizer on LOCK
    assert fragments[()].domains["sync"].rst is not None
    assert "(eq (clk sync) (sig pll_clk))" in [repr(s) for s in fragments["clocks",].statements["comb"]]
    syncs = [o for f in fragments.values() for o in (f.origins or ()) if isinstance(o, AsyncFFSynchronizer)]
    assert [(repr(o.i), repr(o.o)) for o in syncs] == [(repr(~lock), "(rst sync)")]
    assert [link.divisor for link in _links(fragments)] == [15]   # 45 MHz / 3 Mbaud
    assert platform.default_clk_frequency == 25e6


def test_ulx3s_clock_constraint_reaches_nextpnr():
    """The LPF constrains the PLL output net at 45 MHz (besides the 25 MHz pin), so nextpnr times sync."""
    target = get_target("ulx3s-85f")
    top = BoardTop(CoreConfig.from_task("seed-sum", 1), target.baud, sync_clock("ulx3s-85f"))
    lpf = target.platform().prepare(top, name="dpfm_top").files["dpfm_top.lpf"]
    assert 'FREQUENCY NET "clocks.pll_clk" 45000000.0 HZ;' in lpf.splitlines()
    assert 'FREQUENCY PORT "clk25_0__io" 25000000.0 HZ;' in lpf.splitlines()


def test_icebreaker_top_runs_on_its_oscillator():
    fragments, _ = _elaborate("icebreaker")
    assert not any(isinstance(f, Instance) and "PLL" in f.type for f in fragments.values())
    assert [link.divisor for link in _links(fragments)] == [4]    # 12 MHz / 3 Mbaud


def test_board_top_refuses_an_inexact_bit_time():
    """The ULX3S oscillator without its PLL cannot make 3 Mbaud: refused at elaboration, before any build."""
    top = BoardTop(CoreConfig.from_task("seed-sum", 1), 3_000_000, BoardClock())
    with pytest.raises(DpfmError, match="25 MHz is not a whole multiple of 3000000 baud"):
        Fragment.get(top, get_target("ulx3s-85f").platform())


def test_config_too_large_for_board_is_rejected_before_building():
    with pytest.raises(DpfmError, match="RAM bits"):
        CoreConfig.from_task("digits", 8).check_fits("icebreaker")
    CoreConfig.from_task("digits", 8).check_fits("ulx3s-85f")


def test_a_resident_data_set_goes_to_the_up5k_sprams_and_is_refused_beyond_them():
    """On the UP5K the data set and the order memory are SPRAM (four of 16K x 16 bits), not EBR; on the ECP5
    they are block RAM."""
    CoreConfig.from_task("seed-sum", 4, resident=9830).check_fits("icebreaker")    # 49150 words: 3 + 1 SPRAMs
    with pytest.raises(DpfmError, match="9831 samples needs 5 SPRAMs, icebreaker has 4"):
        CoreConfig.from_task("seed-sum", 4, resident=9831).check_fits("icebreaker")
    CoreConfig.from_task("digits", 8, resident=1437).check_fits("ulx3s-85f")
    with pytest.raises(DpfmError, match="RAM bits"):
        CoreConfig.from_task("digits", 8, resident=4000).check_fits("ulx3s-85f")


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
    assert report.clock_source == "board clock clk12 12 MHz"
    assert report.clock_mhz == 12.0 and report.timing_met         # meets the board clock
    assert (tmp_path / "dpfm_top.bin").stat().st_size > 0


def test_build_summary_names_run_clock_timing_and_toper():
    """`dpfm build`'s summary, from the numbers of a real ULX3S build (digits, K=8, 45 MHz PLL)."""
    from dpfm.boards.report import BuildReport, Usage
    from dpfm.host.commands.build import format_summary, summarize
    from dpfm.hw.config import CoreConfig
    report = BuildReport(board="ulx3s-85f", resources={"luts": Usage(6796, 83640)}, fmax_mhz=56.36,
                         clock_mhz=45.0, clock_source="ECP5 PLL 45 MHz from clk25 25 MHz")
    cfg = CoreConfig.from_task("digits", 8, toper="parallel")
    s = summarize(report, cfg, {"train_cycles_per_sample": 2591.0, "ideal_cycles_per_sample": 1210.0})
    assert s["samples_per_s_at_run_clock"] == pytest.approx(45e6 / 2591)
    assert s["toper"] == "parallel" and s["baud"] == 3_000_000
    text = format_summary(s)
    assert "run clock 45.0 MHz: timing met (ECP5 PLL 45 MHz" in text and "toper=parallel" in text
    slow = summarize(BuildReport(board="ulx3s-85f", resources={}, fmax_mhz=40.0, clock_mhz=45.0,
                                 clock_source="PLL"), cfg, {"train_cycles_per_sample": 1.0,
                                                            "ideal_cycles_per_sample": 1.0})
    assert "timing NOT MET" in format_summary(slow)


def _never_build(*args, **kwargs):
    pytest.fail("dpfm build started the build before checking its --json path")


def test_build_refuses_an_unwritable_json_path_before_building(tmp_path, capsys, monkeypatch):
    """The build takes minutes: a report path it cannot write fails first, in one line."""
    import dpfm.boards.build
    from dpfm.host.cli import main
    monkeypatch.setattr(dpfm.boards.build, "build_board", _never_build)
    (tmp_path / "file").write_text("x")
    for path in (tmp_path / "file" / "report.json", tmp_path):
        assert main(["build", "--board", "icebreaker", "--k", "1", "--json", str(path),
                     "--build-dir", str(tmp_path / "build")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("dpfm: error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "build").exists()


def _fake_build(monkeypatch):
    """`dpfm build` with the toolchain and the cycle simulation replaced by a real build's numbers."""
    import dpfm.boards.build
    import dpfm.sim.core_cycles
    from dpfm.boards.report import parse_nextpnr_report

    def build_board(board, cfg, build_dir, program=False):
        path = build_dir / "r.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(ICE40_REPORT))
        return parse_nextpnr_report(path, "ice40", board, 12_000_000, "board clock clk12 12 MHz")

    monkeypatch.setattr(dpfm.boards.build, "build_board", build_board)
    monkeypatch.setattr(dpfm.sim.core_cycles, "measure_cycles", lambda cfg, task, build_dir: {
        "train_cycles_per_sample": 400.0, "ideal_cycles_per_sample": 100.0})


def test_build_json_report_goes_to_a_new_directory(tmp_path, capsys, monkeypatch):
    from dpfm.host.cli import main
    _fake_build(monkeypatch)
    out = tmp_path / "reports" / "up5k.json"
    assert main(["build", "--board", "icebreaker", "--k", "1", "--json", str(out),
                 "--build-dir", str(tmp_path / "build")]) == 0
    assert json.loads(out.read_text())["cycles_per_train_sample"] == 400.0
    assert [p.name for p in out.parent.iterdir()] == ["up5k.json"]


def test_build_json_report_failing_to_write_leaves_the_old_one(tmp_path, monkeypatch, disk_full):
    from dpfm.host.cli import main
    _fake_build(monkeypatch)
    out = tmp_path / "up5k.json"
    out.write_text('{"old": true}')
    with pytest.raises(OSError):
        main(["build", "--board", "icebreaker", "--k", "1", "--json", str(out), "--build-dir", str(tmp_path / "b")])
    assert json.loads(out.read_text()) == {"old": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "up5k.json"]
