"""Both ends of the word bus (hw/bus.py) as cocotb drivers: `BusMaster` stands in for the link's command
processor in front of the core, `BusSlave` for the core behind the link.

One transaction at a time: the master holds `valid`/`addr`/`wdata`/`we` until `ready`; for reads `rdata`
is valid in the cycle `ready` is high. Both insert random delays from the testbench's seeded generator.
"""

import random

import cocotb
from cocotb.triggers import ReadOnly, RisingEdge

from dpfm.golden.contract import regmap

MASK32 = (1 << 32) - 1


class BusMaster:
    """Initiator of hw/bus.py: before each transaction 0..`max_idle` idle cycles, then holds valid/addr/
    wdata/we until ready and returns rdata.

    `ready`/`rdata` are sampled in the ReadOnly phase (settled combinational values of the cycle), not right
    after the clock edge, where Icarus may not yet have re-evaluated the core's combinational read mux."""

    def __init__(self, dut, rng: random.Random, max_idle: int):
        self.dut, self.rng, self.max_idle = dut, rng, max_idle
        dut.bus__valid.value = 0
        dut.bus__we.value = 0
        dut.bus__addr.value = 0
        dut.bus__wdata.value = 0

    async def _transact(self, we: int, addr: int, wdata: int, timeout: int = 1000) -> int:
        dut = self.dut
        dut.bus__valid.value = 0
        for _ in range(self.rng.randint(0, self.max_idle)):
            await RisingEdge(dut.clk)
        dut.bus__valid.value = 1
        dut.bus__we.value = we
        dut.bus__addr.value = addr
        dut.bus__wdata.value = regmap.to_word(wdata)
        for _ in range(timeout):
            await ReadOnly()  # settled values of this cycle: ready high means the transfer ends at the next edge
            ready, rdata = dut.bus__ready.value == 1, dut.bus__rdata.value
            await RisingEdge(dut.clk)
            if ready:
                dut.bus__valid.value = 0
                return int(rdata) if not we else 0
        raise AssertionError(f"bus transaction at {addr:#06x} got no ready in {timeout} cycles")

    async def write(self, region: int, index: int, value: int):
        await self._transact(1, regmap.address(region, index), value)

    async def read(self, region: int, index: int) -> int:
        return await self._transact(0, regmap.address(region, index), 0)

    async def reg(self, index: int) -> int:
        return await self.read(regmap.REGION_REGS, index)


class BusSlave:
    """Word memory on the bus, answering each transaction after 0..`max_delay` cycles; reads of
    `status_addr` return `busy` (the core's STATUS_BUSY bit), which the test sets."""

    def __init__(self, dut, rng: random.Random, max_delay: int, status_addr: int):
        self.dut = dut
        self.rng = rng
        self.max_delay = max_delay
        self.status_addr = status_addr
        self.memory: dict[int, int] = {}
        self.busy = False
        self.transactions = 0
        dut.bus__ready.value = 0
        dut.bus__rdata.value = 0
        cocotb.start_soon(self._run())

    def read(self, addr):
        return int(self.busy) if addr == self.status_addr else self.memory.get(addr, 0)

    async def _run(self):
        dut = self.dut
        ready = False
        wait = None
        while True:
            await RisingEdge(dut.clk)
            valid = dut.bus__valid.value == 1
            if ready and valid:                      # handshake completed at this edge
                if dut.bus__we.value == 1:
                    self.memory[int(dut.bus__addr.value)] = int(dut.bus__wdata.value)
                self.transactions += 1
                ready, wait = False, None
            elif valid:
                if wait is None:
                    wait = self.rng.randint(0, self.max_delay)
                if wait == 0:
                    ready = True
                    dut.bus__rdata.value = self.read(int(dut.bus__addr.value))
                else:
                    wait -= 1
            dut.bus__ready.value = int(ready)
