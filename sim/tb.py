"""cocotb testbench building blocks for the Verilog of Amaranth components (in the style of cocotbext-axi).

An Amaranth `stream.Signature` port `name` becomes the Verilog signals `name__valid`, `name__ready` (absent
when the stream is always ready) and `name__payload` (the payload layout flattened into one vector, encoded
and decoded with `hw.streams.pack`/`unpack`). The clock is `clk`, the synchronous reset `rst`.

Drivers act on the rising clock edge: at each edge they first read the handshake as the flip-flops saw it
(the values just before the edge), then drive the next cycle's values. `StreamSource` inserts random idle
cycles and `StreamSink` random backpressure, both from the testbench's seeded generator, so a failure
reproduces with the same seed.
"""

import json
import os
import random
from collections import deque

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from dpfm.hw.streams import pack, unpack
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


class StreamSource:
    """Drives an input stream from a queue; in each cycle in which it could start a beat it stays idle with
    probability `idle`."""

    def __init__(self, dut, name: str, layout, rng: random.Random, idle: float = 0.0):
        self.clk = dut.clk
        self.valid = getattr(dut, f"{name}__valid")
        self.payload = getattr(dut, f"{name}__payload")
        self.ready = getattr(dut, f"{name}__ready", None)
        self.layout = layout
        self.rng = rng
        self.idle = idle
        self.queue = deque()
        self.valid.value = 0
        self.payload.value = 0
        cocotb.start_soon(self._run())

    def send(self, obj):
        """Queue one payload (a value for `hw.streams.pack`)."""
        self.queue.append(obj)

    async def _run(self):
        active = False  # a beat is on the port, waiting for `ready`
        while True:
            await RisingEdge(self.clk)
            if active and (self.ready is None or self.ready.value == 1):
                active = False
            if not active:
                if self.queue and self.rng.random() >= self.idle:
                    self.payload.value = pack(self.layout, self.queue.popleft())
                    self.valid.value = 1
                    active = True
                else:
                    self.valid.value = 0


class StreamSink:
    """Receives an output stream into `items` (decoded payloads) and `arrivals` (the cycle, counted from
    the sink's start, in which each was taken); `ready` is low with probability `backpressure` per cycle."""

    def __init__(self, dut, name: str, layout, rng: random.Random, backpressure: float = 0.0):
        self.clk = dut.clk
        self.valid = getattr(dut, f"{name}__valid")
        self.payload = getattr(dut, f"{name}__payload")
        self.ready = getattr(dut, f"{name}__ready")
        self.layout = layout
        self.rng = rng
        self.backpressure = backpressure
        self.items = []
        self.arrivals = []
        self.ready.value = 0
        cocotb.start_soon(self._run())

    async def _run(self):
        ready, cycle = False, 0
        while True:
            await RisingEdge(self.clk)
            cycle += 1
            if ready and self.valid.value == 1:
                self.items.append(unpack(self.layout, int(self.payload.value)))
                self.arrivals.append(cycle)
            ready = self.rng.random() >= self.backpressure
            self.ready.value = int(ready)

    async def wait_for(self, count: int, max_cycles: int):
        """Wait until `count` items arrived; fail after `max_cycles` cycles (a hung DUT)."""
        for _ in range(max_cycles):
            if len(self.items) >= count:
                return
            await RisingEdge(self.clk)
        raise AssertionError(f"timeout: {len(self.items)} of {count} items after {max_cycles} cycles")


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
