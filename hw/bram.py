"""Block RAM with one write port and synchronous read ports whose same-address collisions are don't-care, a
single-port RAM (the UP5K's SPRAMs), and a block ROM.

Why not a plain Amaranth `Memory`: its read ports promise read-first (a read in the cycle that writes the
same address returns the old word). The iCE40 EBR leaves that case undefined, so yosys (0.23 and 0.70
alike) emulates it with a registered copy of the write data, an address comparator and a bypass mux on every
read port: about 500 LUTs and 650 flip-flops in the seed-sum core at K=8, a fifth of the UP5K. The core's
memories never depend on that case (their users never read an address in the cycle it is written, or ignore
the word read), so on iCE40 this block instantiates `SB_RAM40_4K` directly. Elsewhere (simulation, ECP5) it
is an Amaranth `Memory`, whose read-first result is one of the allowed ones.

Contract: a read of the address being written in the same cycle returns an undefined word. Ports are the
`amaranth.lib.memory` port signatures (`addr`, `data`, `en`; the write port has a 1-bit `en`), so users
connect them exactly like `Memory` ports. The contents start at 0.
"""

from amaranth.hdl import Cat, ClockSignal, Const, Elaboratable, Instance, Module, Mux, Shape, Signal, Value
from amaranth.lib.memory import Memory, ReadPort, WritePort
from amaranth.utils import ceil_log2
from amaranth.vendor import SiliconBluePlatform

from dpfm.hw.config import BOARD_SPRAMS, spram_count

#: iCE40 SB_RAM40_4K modes: (depth, data bits, READ_MODE/WRITE_MODE value, RDATA/WDATA bit positions used).
#: The narrow modes use scattered data pins (as yosys' own `ice40/brams_map.v` maps them).
ICE40_MODES = (
    (256, 16, 0, tuple(range(16))),
    (512, 8, 1, tuple(range(0, 16, 2))),
    (1024, 4, 2, (1, 5, 9, 13)),
    (2048, 2, 3, (3, 11)),
)


def is_ice40(platform) -> bool:
    """Whether `platform` is an Amaranth iCE40 platform; None (simulation) is not."""
    return isinstance(platform, SiliconBluePlatform)


class BlockRam(Elaboratable):
    """`depth` words of `shape`, one write port (`write_port()`, called once) and any number of read ports
    (`read_port()`, each its own copy of the block RAM on iCE40, as yosys would build them)."""

    def __init__(self, shape, depth: int):
        self.shape = shape
        self.depth = depth
        self.addr_width = ceil_log2(depth)
        self._read_ports = []
        self._write_port = None

    def read_port(self) -> ReadPort:
        port = ReadPort.Signature(addr_width=self.addr_width, shape=self.shape).create()
        self._read_ports.append(port)
        return port

    def write_port(self) -> WritePort:
        assert self._write_port is None, "a BlockRam has exactly one write port"
        self._write_port = WritePort.Signature(addr_width=self.addr_width, shape=self.shape).create()
        return self._write_port

    def elaborate(self, platform):
        m = Module()
        assert self._write_port is not None, "a BlockRam needs its write port"
        mode = next((md for md in ICE40_MODES if self.depth <= md[0]), None)
        if is_ice40(platform) and mode is not None:
            self._elaborate_ice40(m, mode)
        else:
            self._elaborate_memory(m)
        return m

    def _elaborate_memory(self, m):
        m.submodules.mem = mem = Memory(shape=self.shape, depth=self.depth, init=[])
        wr, mem_wr = self._write_port, mem.write_port()
        m.d.comb += [mem_wr.addr.eq(wr.addr), mem_wr.data.eq(wr.data), mem_wr.en.eq(wr.en)]
        for port in self._read_ports:
            mem_rd = mem.read_port()
            m.d.comb += [mem_rd.addr.eq(port.addr), mem_rd.en.eq(port.en), port.data.eq(mem_rd.data)]

    def _elaborate_ice40(self, m, mode):
        _, bits, mode_value, pins = mode
        width = Shape.cast(self.shape).width
        wr = self._write_port
        wdata = Value.cast(wr.data)
        for r, port in enumerate(self._read_ports):
            rdata = Signal(width, name=f"rdata{r}")
            for c, lo in enumerate(range(0, width, bits)):
                chunk = min(bits, width - lo)
                wdata16, rdata16 = Signal(16, name=f"wdata{r}_{c}"), Signal(16, name=f"rdata{r}_{c}")
                m.d.comb += [wdata16[pin].eq(wdata[lo + b]) for b, pin in enumerate(pins[:chunk])]
                m.d.comb += [rdata[lo + b].eq(rdata16[pin]) for b, pin in enumerate(pins[:chunk])]
                m.submodules[f"ebr{r}_{c}"] = Instance(
                    "SB_RAM40_4K",
                    p_READ_MODE=mode_value, p_WRITE_MODE=mode_value,
                    i_RCLK=ClockSignal(), i_RCLKE=Const(1), i_RE=port.en,
                    i_RADDR=self._addr11(port.addr), o_RDATA=rdata16,
                    i_WCLK=ClockSignal(), i_WCLKE=Const(1), i_WE=wr.en,
                    i_WADDR=self._addr11(wr.addr), i_WDATA=wdata16,
                    i_MASK=Const(0, 16))
            m.d.comb += port.data.eq(rdata)

    def _addr11(self, addr):
        """An address zero-extended to the primitive's 11 address pins."""
        return Cat(addr, Const(0, 11 - self.addr_width))


class SinglePortRam(BlockRam):
    """A `BlockRam` with one read port whose user never reads in a cycle that writes (such a read returns
    nothing, and the read data after it is undefined), so that on the iCE40 UP5K it can be built from the
    single-port SPRAMs (SB_SPRAM256KA, 16K x 16 bits each, four on the device), which hold what its thirty
    4-kbit EBRs cannot: a resident data set. Elsewhere it is a `BlockRam`."""

    SPRAM_DEPTH, SPRAM_WIDTH, SPRAMS = BOARD_SPRAMS["icebreaker"]

    def elaborate(self, platform):
        if not (is_ice40(platform) and platform.device == "iCE40UP5K"):
            return super().elaborate(platform)
        assert len(self._read_ports) == 1 and self._write_port is not None, "one read and one write port"
        width = Shape.cast(self.shape).width
        assert spram_count("icebreaker", width, self.depth) <= self.SPRAMS, "the SPRAMs cannot hold this memory"
        m = Module()
        rd, wr = self._read_ports[0], self._write_port
        abits, dbits = ceil_log2(self.SPRAM_DEPTH), self.SPRAM_WIDTH   # the primitive's ADDRESS and DATAIN
        addr = Signal(max(self.addr_width, abits))
        m.d.comb += addr.eq(Mux(wr.en, wr.addr, rd.addr))
        row, row_r = addr[abits:], Signal(max(len(addr) - abits, 1))
        with m.If(rd.en & ~wr.en):
            m.d.sync += row_r.eq(row)
        wdata, rows = Value.cast(wr.data), []
        for r in range(-(-self.depth // self.SPRAM_DEPTH)):
            words = []
            for c, lo in enumerate(range(0, width, dbits)):
                out, data_in = Signal(dbits, name=f"spram{r}_{c}"), Signal(dbits, name=f"spram{r}_{c}_in")
                m.d.comb += data_in.eq(wdata[lo:lo + dbits])
                m.submodules[f"spram{r}_{c}"] = Instance(
                    "SB_SPRAM256KA",
                    i_ADDRESS=addr[:abits], i_DATAIN=data_in, i_MASKWREN=Const(0xF, 4), i_WREN=wr.en,
                    i_CHIPSELECT=(row == r) & (wr.en | rd.en), i_CLOCK=ClockSignal(), i_STANDBY=Const(0),
                    i_SLEEP=Const(0), i_POWEROFF=Const(1), o_DATAOUT=out)
                words.append(out[:min(dbits, width - lo)])
            rows.append(Cat(*words))
        data = rows[0]
        for r in range(1, len(rows)):
            data = Mux(row_r == r, rows[r], data)
        m.d.comb += rd.data.eq(data)
        return m


class BlockRom(Elaboratable):
    """256 read-only `words` of `width` <= 16 bits, read synchronously (`data` holds the word at the `addr` of
    the previous cycle). On iCE40 it is one initialised SB_RAM40_4K in its 256 x 16 mode (a ROM in logic would
    cost about a hundred logic cells, which the UP5K does not have to spare); elsewhere an Amaranth `Memory`."""

    DEPTH = ICE40_MODES[0][0]

    def __init__(self, words: list[int], width: int):
        assert len(words) == self.DEPTH and width <= ICE40_MODES[0][1] and all(0 <= w < 1 << width for w in words)
        self.words = list(words)
        self.addr = Signal(ceil_log2(self.DEPTH))
        self.data = Signal(width)

    def elaborate(self, platform):
        m = Module()
        if is_ice40(platform):
            # INIT_n holds words 16n .. 16n + 15, word 16n + i at bits 16i .. 16i + 15.
            rdata = Signal(16)
            m.d.comb += self.data.eq(rdata)
            inits = {f"p_INIT_{n:X}": Const(sum(w << 16 * i for i, w in enumerate(self.words[16 * n:16 * n + 16])),
                                            256) for n in range(16)}
            m.submodules.ebr = Instance(
                "SB_RAM40_4K", p_READ_MODE=0, p_WRITE_MODE=0, **inits,
                i_RCLK=ClockSignal(), i_RCLKE=Const(1), i_RE=Const(1), i_RADDR=Cat(self.addr, Const(0, 3)),
                o_RDATA=rdata,
                i_WCLK=ClockSignal(), i_WCLKE=Const(0), i_WE=Const(0), i_WADDR=Const(0, 11),
                i_WDATA=Const(0, 16), i_MASK=Const(0, 16))
        else:
            m.submodules.mem = mem = Memory(shape=len(self.data), depth=self.DEPTH, init=self.words)
            port = mem.read_port()
            m.d.comb += [port.addr.eq(self.addr), self.data.eq(port.data)]
        return m
