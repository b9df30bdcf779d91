"""Drivers and a monitor of Amaranth `lib.stream` ports at the Verilog boundary.

A `stream.Signature` port `name` becomes the Verilog signals `name__valid`, `name__ready` (absent when the
stream is always ready) and `name__payload` (the payload layout flattened into one vector, encoded and
decoded with `hw.streams.pack`/`unpack`).

They act on the rising clock edge: at each edge they first read the handshake as the flip-flops saw it (the
values just before the edge), then drive the next cycle's values. `StreamSource` inserts random idle cycles
and `StreamSink` random backpressure, both from the testbench's seeded generator, so a failure reproduces
with the same seed.
"""

import random
from collections import deque

import cocotb
from cocotb.triggers import RisingEdge

from dpfm.hw.streams import pack, unpack


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


class HandshakeMonitor:
    """Records in `cycles` the cycle (of `TB.cycle`) of every transfer on stream `name` (valid and ready
    high at a rising edge out of reset), or with `when` only of those whose raw payload word passes
    `when(word)`; it drives nothing, so it watches a port that other drivers own."""

    def __init__(self, tb, name: str, when=None):
        self.tb = tb
        self.valid = getattr(tb.dut, f"{name}__valid")
        self.ready = getattr(tb.dut, f"{name}__ready", None)
        self.payload = getattr(tb.dut, f"{name}__payload")
        self.when = when
        self.cycles = []
        cocotb.start_soon(self._run())

    async def _run(self):
        dut = self.tb.dut
        while True:
            await RisingEdge(dut.clk)
            if dut.rst.value == 1:
                continue
            if self.valid.value == 1 and (self.ready is None or self.ready.value == 1):
                if self.when is None or self.when(int(self.payload.value)):
                    self.cycles.append(self.tb.cycle)
