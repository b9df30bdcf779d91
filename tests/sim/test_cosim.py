"""The Verilator co-simulation driven by host.link over socket:// (the board's code path), with the
`MemorySlave` test fixture behind the gateware link: words, corrupt-frame recovery, a silent device; and
the simulated board's power-on reset, which replaces a reset port (for speed, see `CosimTop`)."""

import re
import socket
import time

import pytest
from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator

from dpfm.golden.contract import wire as P
from dpfm.golden.contract.errors import DpfmError
from dpfm.host.link import LinkClient, SerialPort
from dpfm.hw.bus import CoreBusSignature
from dpfm.sim.cosim import POR_CYCLES, TOP_NAME, Cosim, CosimTop, MemorySlave, build, cosim_verilog


@pytest.fixture(scope="module")
def cosim():
    with Cosim(build(MemorySlave())) as sim:
        yield sim


@pytest.mark.verilator
@pytest.mark.slow
def test_write_read_words_across_frames(cosim):
    words = [(i * 0x9E3779B9) & 0xFFFFFFFF for i in range(150)] + [P.END, P.ESC, 0xC0DBC0DB]
    with LinkClient(SerialPort(cosim.url)) as link:
        link.write(0x4000, words)
        link.write(0x8000, [7])
        assert link.read(0x4000, len(words)) == words
        assert link.read(0x8000, 1) == [7]
        assert link.stats.retries == 0


def _raw_exchange(url, wire: bytes, replies: int) -> list[bytes]:
    host, port = url.removeprefix("socket://").split(":")
    reader = P.FrameReader()
    frames = []
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(wire)
        while len(frames) < replies:
            frames += [f for f, ok in reader.feed(s.recv(4096))]
    return frames


@pytest.mark.verilator
@pytest.mark.slow
def test_corrupt_frame_refused_and_link_recovers(cosim):
    with LinkClient(SerialPort(cosim.url)) as link:
        link.write(0x4010, [1, 2])
    bad = bytearray(P.pack_frame(9, P.OP_WRITE, P.write_payload(0x4010, [0xBAD, 0xBAD])))
    bad[6] ^= 0x40
    garbage = bytes([0x55, P.ESC, 0x01, 0x99])   # an invalid escape, then END cuts it off
    replies = _raw_exchange(cosim.url, P.slip_encode(bytes(bad)) + garbage + P.encode_frame(10, P.OP_PING), 3)
    assert [P.unpack_frame(r)[1] for r in replies] == [P.ERR_CRC, P.ERR_FRAMING, P.ST_OK]
    with LinkClient(SerialPort(cosim.url)) as link:
        assert link.read(0x4010, 2) == [1, 2]


@pytest.mark.verilator
@pytest.mark.slow
def test_silent_device_times_out_then_recovers(cosim):
    with LinkClient(SerialPort(cosim.url), timeout=0.2, retries=1) as link:
        cosim.pause()
        try:
            start = time.monotonic()
            with pytest.raises(DpfmError, match="no valid reply"):
                link.read(0x4000, 1)
            assert time.monotonic() - start < 2
        finally:
            cosim.resume()
        link.write(0x4020, [5])
        assert link.read(0x4020, 1) == [5]


def test_missing_port_names_the_fix():
    with pytest.raises(DpfmError, match="dpfm sim serve"):
        SerialPort("socket://127.0.0.1:1")
    with pytest.raises(DpfmError, match="ttyUSB"):
        SerialPort("/dev/ttyDPFM-missing")


@pytest.mark.verilator
@pytest.mark.slow
def test_retried_write_runs_once(cosim):
    """A WRITE re-sent with the same sequence number (its reply was lost) is acknowledged, not repeated."""
    with LinkClient(SerialPort(cosim.url)) as link:
        link.write(0x4030, [1])
    first = P.encode_frame(40, P.OP_WRITE, P.write_payload(0x4030, [2]))
    again = P.encode_frame(40, P.OP_WRITE, P.write_payload(0x4030, [3]))
    replies = _raw_exchange(cosim.url, first + again, 2)
    assert [P.unpack_frame(r)[1] for r in replies] == [P.ST_OK, P.ST_DUPLICATE]
    with LinkClient(SerialPort(cosim.url)) as link:
        assert link.read(0x4030, 1) == [2]


class EdgeCounter(wiring.Component):
    """TEST FIXTURE: a slave that counts `sync` clock edges out of reset (its bus stays idle)."""

    bus: In(CoreBusSignature())
    count: Out(8)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.count.eq(self.count + 1)
        return m


def test_power_on_reset_holds_sync_for_por_cycles_then_releases():
    """The board's design is in reset for exactly the first POR_CYCLES edges, then runs: a counter that
    resets to 0 reads max(0, edges - POR_CYCLES)."""
    slave = EdgeCounter()
    top = CosimTop(slave)
    counts = []

    async def bench(ctx):
        for _ in range(POR_CYCLES + 3):
            ctx.set(top.clk, 1)
            await ctx.delay(1e-6)
            ctx.set(top.clk, 0)
            await ctx.delay(1e-6)
            counts.append(ctx.get(slave.count))

    sim = Simulator(top)
    sim.add_testbench(bench)
    sim.run()
    assert counts == [0] * POR_CYCLES + [1, 2, 3]


def test_top_ports_are_clock_and_uart_pins_and_busy_only():
    """No reset port: Verilator re-evaluates everything that depends on a top-level input at every eval,
    and every register's next-state logic reads the reset (the speed regression this guards). `busy` is an
    output (the harness keeps a busy core's clock running), so it adds nothing to the input region."""
    header = re.search(rf"^module {TOP_NAME}\((.*)\);", cosim_verilog(MemorySlave()), re.M)
    assert sorted(header.group(1).split(", ")) == ["busy", "clk", "rx", "tx"]
