"""Verilator co-simulation of (Link + core): the simulated board behind a local TCP socket.

The Verilog of `CosimTop` (the gateware link wired to a training core, or to `MemorySlave` in link tests)
is compiled with Verilator together with sim/cosim/harness.cpp, which bridges 127.0.0.1:PORT to the UART
pins bit by bit. The host reaches it as `socket://127.0.0.1:PORT` through exactly the code that drives a
real serial port. With the bus transport (`build(slave, "bus")`) the top is `CosimBusTop`, the core alone, and
the harness drives its word bus from the socket's requests (golden/contract/bus_socket.py; the host end is
`host.bus_link.BusClient`): what a PCIe BAR gives (docs/PCIE.md). Builds are cached under `$DPFM_CACHE`
(default ~/.cache/dpfm) by a hash of the Verilog, the harness source, the Verilator version, VERILATOR_FLAGS
and the transport, so only a changed design or build is recompiled.
"""

import fcntl
import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

from amaranth.back import verilog
from amaranth.hdl import Cat, ClockDomain, ClockSignal, Module, ResetSignal, Signal
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from dpfm.golden.contract import regmap, wire
from dpfm.golden.contract.errors import DpfmError
from dpfm.hw.bus import CoreBusSignature
from dpfm.hw.link import Link

HARNESS = Path(__file__).parent / "cosim" / "harness.cpp"
TOP_NAME = "cosim_top"
#: The simulated clock and UART: 3 Mbaud at 4 clock cycles per bit (the PHY's minimum), so the protocol
#: runs as on a board while each byte costs only 40 simulated cycles.
SIM_CLK_FREQ = 12_000_000
SIM_BAUD = wire.BAUD
#: Cycles the power-on reset holds `sync` in reset; the harness runs longer than this (its POWER_ON_CYCLES)
#: before it accepts a client.
POR_CYCLES = 3
VERILATOR_FLAGS = ["-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert", "-Wno-fatal", "-Wno-lint",
                   "-Wno-style", "-MAKEFLAGS", "OPT_FAST=-O2 OPT_SLOW=-O1 OPT_GLOBAL=-O2"]


class MemorySlave(wiring.Component):
    """TEST FIXTURE standing in for the core in link tests: a word memory on the bus, answering one cycle
    after `valid`. Each region keeps its low `index_bits` index bits (higher ones alias), so weights,
    samples and registers are separate words; REG_STATUS reads whatever was last written to it (0 after
    reset, so the link never sees a busy core)."""

    bus: In(CoreBusSignature())

    def __init__(self, index_bits: int = 10):
        self.index_bits = index_bits
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        bits = self.index_bits
        m.submodules.mem = mem = Memory(shape=regmap.DATA_BITS, depth=4 << bits, init=[])
        rp, wp = mem.read_port(), mem.write_port()
        ack = Signal()
        bus = self.bus
        index = Cat(bus.addr[:bits], bus.addr[regmap.REGION_SHIFT:])
        m.d.comb += [rp.addr.eq(index), wp.addr.eq(index), wp.data.eq(bus.wdata), bus.rdata.eq(rp.data),
                     bus.ready.eq(ack), wp.en.eq(bus.valid & bus.we & ack)]
        m.d.sync += ack.eq(bus.valid & ~ack)
        return m


def clocked_by(clk) -> Module:
    """A module whose `sync` domain runs on `clk` and is held in reset for POR_CYCLES cycles after power-on
    (see `CosimTop` for why the reset is internal)."""
    m = Module()
    m.domains.sync = ClockDomain("sync")
    m.domains.por = ClockDomain("por", reset_less=True)
    m.d.comb += [ClockSignal("sync").eq(clk), ClockSignal("por").eq(clk)]
    por_left = Signal(range(POR_CYCLES + 1), init=POR_CYCLES)
    with m.If(por_left != 0):
        m.d.por += por_left.eq(por_left - 1)
    m.d.comb += ResetSignal("sync").eq(por_left != 0)
    return m


class CosimTop(wiring.Component):
    """The simulated board: `Link` at SIM_BAUD wired to `slave` (a `DpfmCore` or a `MemorySlave`).

    `busy` is a resident core's: while it is high the harness keeps the clock running even when no client is
    connected, as a board's core keeps working after its host has gone.

    The `sync` domain is clocked by the `clk` port and reset by an internal power-on reset of POR_CYCLES
    cycles (as the board platforms' default domain is), not by a reset port. Why: Verilator re-evaluates
    all logic that reads a top-level input on every `eval()` (two per cycle), and every register's
    next-state logic reads the reset, so a reset port put that logic in Verilator's input region, run on
    both evals of every cycle besides the clock edge (callgrind, seed-sum K=8: 7,690 -> 4,810 instructions
    per simulated cycle).
    """

    clk: In(1)
    rx: In(1, init=1)
    tx: Out(1, init=1)
    busy: Out(1)

    def __init__(self, slave: wiring.Component):
        self.slave = slave
        super().__init__()

    def elaborate(self, platform):
        m = clocked_by(self.clk)
        m.submodules.link = link = Link(SIM_CLK_FREQ, SIM_BAUD)
        m.submodules.slave = self.slave
        m.d.comb += [link.rx.eq(self.rx), self.tx.eq(link.tx)]
        wiring.connect(m, link.bus, self.slave.bus)
        _connect_busy(m, self.slave, self.busy)
        return m


class CosimBusTop(wiring.Component):
    """The core alone, its word bus on the top's ports (the bus transport, golden/contract/bus_socket.py):
    what a PCIe BAR reaches on a board (docs/PCIE.md). Clock and power-on reset as in `CosimTop`. The bus
    signals are separate ports with single underscores, the names the harness uses (Verilator mangles
    the double underscore of a flattened interface)."""

    clk: In(1)
    bus_valid: In(1)
    bus_we: In(1)
    bus_addr: In(regmap.ADDR_BITS)
    bus_wdata: In(regmap.DATA_BITS)
    bus_ready: Out(1)
    bus_rdata: Out(regmap.DATA_BITS)
    busy: Out(1)

    def __init__(self, slave: wiring.Component):
        self.slave = slave
        super().__init__()

    def elaborate(self, platform):
        m = clocked_by(self.clk)
        m.submodules.slave = self.slave
        bus = self.slave.bus
        m.d.comb += [bus.valid.eq(self.bus_valid), bus.we.eq(self.bus_we), bus.addr.eq(self.bus_addr),
                     bus.wdata.eq(self.bus_wdata), self.bus_ready.eq(bus.ready), self.bus_rdata.eq(bus.rdata)]
        _connect_busy(m, self.slave, self.busy)
        return m


def _connect_busy(m, slave, busy) -> None:
    """The top's `busy` pin, which keeps the harness clocking while the core works with no host (a resident
    run whose host left): a resident core's own, else low (a streamed core's operations end while its host
    waits for them; the link tests' memory has none)."""
    if "busy" in slave.signature.members:
        m.d.comb += busy.eq(slave.busy)


#: The co-simulation's transports: the UART pins behind the gateware link, or the core's word bus.
TRANSPORTS = {"uart": CosimTop, "bus": CosimBusTop}


def cosim_verilog(slave: wiring.Component, transport: str = "uart") -> str:
    return verilog.convert(TRANSPORTS[transport](slave), name=TOP_NAME)


def cache_dir() -> Path:
    return Path(os.environ.get("DPFM_CACHE", Path.home() / ".cache" / "dpfm")) / "cosim"


def _verilator() -> str:
    exe = shutil.which("verilator")
    if exe is None:
        raise DpfmError("Verilator is not installed", "run ./setup.sh or apt-get install verilator g++ make")
    return exe


def build(slave: wiring.Component, transport: str = "uart") -> Path:
    """The co-simulation binary for `slave` behind `transport` (the link's UART, or the bare word bus),
    compiled unless cached; returns its path."""
    exe = _verilator()
    source = cosim_verilog(slave, transport)
    version = subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()
    key = hashlib.sha256("\0".join([source, HARNESS.read_text(), version, " ".join(VERILATOR_FLAGS),
                                    transport]).encode())
    target = cache_dir() / key.hexdigest()[:20]
    binary = target / "cosim"
    if binary.is_file():
        return binary
    target.parent.mkdir(parents=True, exist_ok=True)
    # One build per design at a time: parallel test workers wait for the first instead of compiling too.
    with open(target.parent / f"{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not binary.is_file():
            _compile(exe, source, target, ["-CFLAGS", "-DDPFM_BUS"] if transport == "bus" else [])
    return binary


def _compile(exe: str, source: str, target: Path, extra: list) -> None:
    """Verilate and compile into a fresh directory, then move it to `target` in one step."""
    work = Path(tempfile.mkdtemp(prefix="build-", dir=target.parent))
    try:
        (work / f"{TOP_NAME}.v").write_text(source)
        cmd = [exe, "--cc", "--exe", "--build", "-j", "2", *VERILATOR_FLAGS, *extra, "--top-module", TOP_NAME,
               "-Mdir", str(work / "obj"), "-o", str(work / "cosim"), f"{TOP_NAME}.v", str(HARNESS)]
        result = subprocess.run(cmd, cwd=work, capture_output=True, text=True)
        if result.returncode != 0:
            raise DpfmError(f"Verilator failed to build the co-simulation (exit {result.returncode}):\n"
                            f"{result.stderr[-3000:]}", "check the generated Verilog and the g++/make install")
        os.rename(work, target)
    finally:
        shutil.rmtree(work, ignore_errors=True)


class Cosim:
    """A running co-simulation process. Use as a context manager; `url` is what `host.link` opens.

    `pause()`/`resume()` stop and continue the process (a silent device, for timeout tests); stderr lines
    ("STATS cycles=... seconds=... cpu=..." after each client: simulated cycles, wall and CPU time) are collected in `stats`.
    """

    def __init__(self, binary: Path, *, port: int = 0, idle_cycles: int | None = None):
        args = [str(binary), "--divisor", str(round(SIM_CLK_FREQ / SIM_BAUD)), "--port", str(port)]
        if idle_cycles is not None:
            args += ["--idle-cycles", str(idle_cycles)]
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("LISTENING "):
            self.close()
            raise DpfmError(f"the co-simulation did not start: {line.strip() or self.proc.stderr.read()[-500:]}",
                            f"pick a free --port (or 0 for any) and check {binary} runs")
        self.address = line.split()[1]
        self.stats: list[dict] = []
        self._stats_ready = threading.Condition()
        self._reader = threading.Thread(target=self._read_stderr, daemon=True)
        self._reader.start()

    @property
    def url(self) -> str:
        return f"socket://{self.address}"

    def _read_stderr(self):
        for line in self.proc.stderr:
            if line.startswith("STATS "):
                fields = dict(item.split("=") for item in line.split()[1:])
                with self._stats_ready:
                    self.stats.append({"cycles": int(fields["cycles"]), "seconds": float(fields["seconds"]),
                                       "cpu_seconds": float(fields["cpu"])})
                    self._stats_ready.notify_all()

    def wait_stats(self, count: int, timeout: float = 10.0) -> dict:
        """The `count`-th client's statistics (the harness reports them when that client disconnects)."""
        with self._stats_ready:
            if not self._stats_ready.wait_for(lambda: len(self.stats) >= count, timeout):
                raise DpfmError("the co-simulation reported no statistics", "close the link before asking")
            return self.stats[count - 1]

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def core_slave(config):
    """The training core for `config` (a `hw.config.CoreConfig`), as the simulated board holds it."""
    from dpfm.hw.core import DpfmCore
    return DpfmCore(config, baud=SIM_BAUD)
