"""Checks that every transaction-level testbench shares: event totals, and transaction lists compared
exactly with the first mismatch reported."""

import cocotb
from cocotb.triggers import RisingEdge


class EventCounter:
    """Adds up a per-cycle event output (a count or a 1-bit pulse, or with `flags` a vector of one-bit
    events, counting its set bits) from the end of the first reset on (before it the outputs may be
    undefined); an undefined value after that fails the test."""

    def __init__(self, dut, name: str, flags: bool = False):
        self.clk = dut.clk
        self.rst = dut.rst
        self.signal = getattr(dut, name)
        self.flags = flags
        self.total = 0
        cocotb.start_soon(self._run())

    async def _run(self):
        while str(self.rst.value) != "1":
            await RisingEdge(self.clk)
        while True:
            await RisingEdge(self.clk)
            if self.rst.value == 0:
                value = int(self.signal.value)
                self.total += value.bit_count() if self.flags else value


def assert_transactions(got: list, expected: list, what: str, describe=None):
    """Exact equality of two transaction lists, reporting the first mismatch with its index and, through
    `describe(index)`, the stimulus that produced it."""
    for i, (g, e) in enumerate(zip(got, expected)):
        if g != e:
            context = f"; input {describe(i)}" if describe is not None else ""
            raise AssertionError(f"{what} #{i}: got {g}, expected {e}{context}")
    if len(got) != len(expected):
        raise AssertionError(f"{what}: got {len(got)} transactions, expected {len(expected)}")
