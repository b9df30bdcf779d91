"""The testbench's parameters, and its clock (`clk`), synchronous reset (`rst`), seeded random generator and
cycle count: what every testbench of `sim/tb_*.py` starts from."""

import json
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from dpfm.sim.runner import PARAMS_ENV


def load_params() -> dict:
    """The parameters `sim.runner.run_cocotb` wrote for this simulation."""
    with open(os.environ[PARAMS_ENV]) as f:
        return json.load(f)


class TB:
    """Clock, reset, a seeded random generator and a cycle counter for one DUT."""

    CLOCK_PERIOD_NS = 10

    def __init__(self, dut, seed: int):
        self.dut = dut
        self.rng = random.Random(seed)
        self.cycle = 0
        Clock(dut.clk, self.CLOCK_PERIOD_NS, unit="ns").start()
        cocotb.start_soon(self._count_cycles())

    async def _count_cycles(self):
        while True:
            await RisingEdge(self.dut.clk)
            self.cycle += 1

    async def reset(self, cycles: int = 2):
        """Hold `rst` for `cycles` (>= 2: Icarus needs it) rising edges."""
        self.dut.rst.value = 1
        for _ in range(max(cycles, 2)):
            await RisingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    async def cycles(self, n: int):
        for _ in range(n):
            await RisingEdge(self.dut.clk)
