"""Command processor: received frames -> word-bus transactions -> reply frames (golden/contract/wire.py).

A frame is received whole into a buffer while its CRC and header fields are taken on the fly; only when
its end arrives and every check passed does any bus write happen, so a corrupt or malformed frame changes
nothing. Replies are produced byte by byte (READ data straight from the bus) with the CRC appended.
The sequence-number rule of golden/contract/wire.py (a repeated WRITE is acknowledged, not executed) lives here.
While a frame is executed or answered the input is not taken (`i.ready` low); the link's FIFO absorbs it.
"""

from amaranth.hdl import Array, Const, Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from dpfm.golden.contract import wire as P
from dpfm.golden.contract import regmap
from dpfm.hw.bus import CoreBusSignature
from dpfm.hw.framing import RxToken, TxToken, crc16_step

_DATA_OFFSET = P.HEADER_BYTES + P.RW_HEADER_BYTES  # first data byte of a WRITE


class CommandProcessor(wiring.Component):
    i: In(stream.Signature(RxToken))
    o: Out(stream.Signature(TxToken))
    bus: Out(CoreBusSignature())

    def elaborate(self, platform):
        m = Module()
        m.submodules.buf = buf = Memory(shape=8, depth=P.MAX_FRAME_BYTES, init=[])
        wp = buf.write_port()
        rp = buf.read_port()

        length = Signal(range(P.MAX_FRAME_BYTES + 1))
        overflow = Signal()
        crc = Signal(16, init=P.CRC_INIT)
        seq = Signal(8)
        op = Signal(8)
        addr = Signal(16)
        count = Signal(8)
        bad = Signal()

        last_seq = Signal(8)
        last_valid = Signal()
        status = Signal(8)
        remaining = Signal(8)         # words left to move
        word = Signal(32)
        nbyte = Signal(2)             # byte index inside `word`
        ptr = Signal(range(P.MAX_FRAME_BYTES))

        ping_bytes = Array(Const(b, 8) for b in P.ping_reply_payload())
        nping = Signal(range(len(ping_bytes)))

        tok = self.i.payload
        m.d.comb += [rp.addr.eq(ptr), wp.addr.eq(length), wp.data.eq(tok.data)]

        # reply bytes: `emit(value)` offers one on `o` and folds it into the reply CRC when `sent`
        sent = Signal()
        m.d.comb += sent.eq(self.o.valid & self.o.ready)

        def emit(value, add_to_crc=True):
            m.d.comb += [self.o.valid.eq(1), self.o.payload.data.eq(value)]
            if add_to_crc:
                with m.If(sent):
                    m.d.sync += crc.eq(crc16_step(crc, value))

        # The header checks are registered when the frame ends (addr, count and length are final then), so
        # CHECK's decision starts from flags: `addr + count` and the length compare were the longest path of
        # the iCE40 build, in series with the sequence-number logic.
        w_expected = P.HEADER_BYTES + P.RW_HEADER_BYTES + count * P.WORD_BYTES + P.CRC_BYTES
        count_ok, read_len_ok, write_len_ok = Signal(), Signal(), Signal()

        with m.FSM(init="START"):
            # One cycle after reset so the state register changes once: Icarus evaluates a combinational
            # block only when one of its inputs changes, and every output here depends on the state alone.
            with m.State("START"):
                m.next = "RECV"
            with m.State("RECV"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid & ~tok.end):
                    with m.If(length == P.MAX_FRAME_BYTES):
                        m.d.sync += overflow.eq(1)
                    with m.Else():
                        m.d.comb += wp.en.eq(1)
                        m.d.sync += [length.eq(length + 1), crc.eq(crc16_step(crc, tok.data))]
                        with m.Switch(length):
                            with m.Case(0):
                                m.d.sync += seq.eq(tok.data)
                            with m.Case(1):
                                m.d.sync += op.eq(tok.data)
                            with m.Case(2):
                                m.d.sync += addr[8:].eq(tok.data)
                            with m.Case(3):
                                m.d.sync += addr[:8].eq(tok.data)
                            with m.Case(4):
                                m.d.sync += count.eq(tok.data)
                with m.If(self.i.valid & tok.end):
                    m.d.sync += [
                        bad.eq(tok.bad),
                        count_ok.eq((count >= 1) & (count <= P.MAX_WORDS)
                                    & (addr + count <= (1 << regmap.ADDR_BITS))),
                        read_len_ok.eq(length == P.MIN_FRAME_BYTES + P.RW_HEADER_BYTES),
                        write_len_ok.eq(length == w_expected),
                    ]
                    m.next = "CHECK"

            with m.State("CHECK"):
                m.d.sync += [crc.eq(P.CRC_INIT), remaining.eq(count), ptr.eq(_DATA_OFFSET), nbyte.eq(0),
                             nping.eq(0), status.eq(P.ST_OK)]
                m.next = "R_SEQ"
                with m.If(bad):
                    m.d.sync += status.eq(P.ERR_FRAMING)
                with m.Elif(overflow | (length < P.MIN_FRAME_BYTES)):
                    m.d.sync += status.eq(P.ERR_LENGTH)
                with m.Elif(crc != 0):  # the CRC over body + big-endian CRC leaves 0
                    m.d.sync += status.eq(P.ERR_CRC)
                with m.Elif(op == P.OP_PING):
                    with m.If(length != P.MIN_FRAME_BYTES):
                        m.d.sync += status.eq(P.ERR_LENGTH)
                    with m.Else():
                        m.d.sync += [last_seq.eq(seq), last_valid.eq(1)]
                with m.Elif(op == P.OP_READ):
                    with m.If(~read_len_ok | ~count_ok):
                        m.d.sync += status.eq(P.ERR_LENGTH)
                    with m.Else():
                        m.d.sync += [last_seq.eq(seq), last_valid.eq(1)]
                with m.Elif(op == P.OP_WRITE):
                    with m.If(~write_len_ok | ~count_ok):
                        m.d.sync += status.eq(P.ERR_LENGTH)
                    with m.Elif(last_valid & (last_seq == seq)):
                        m.d.sync += status.eq(P.ST_DUPLICATE)
                    with m.Else():
                        m.next = "W_BUSY"
                with m.Else():
                    m.d.sync += status.eq(P.ERR_OPCODE)

            # --- WRITE: refuse while the core is busy, then move the buffered words to the bus -----------
            with m.State("W_BUSY"):
                m.d.comb += [self.bus.valid.eq(1), self.bus.addr.eq(regmap.address(regmap.REGION_REGS,
                                                                                   regmap.REG_STATUS))]
                with m.If(self.bus.ready):
                    with m.If(self.bus.rdata & regmap.STATUS_BUSY):
                        m.d.sync += status.eq(P.ERR_BUSY)
                        m.next = "R_SEQ"
                    with m.Else():
                        m.d.sync += [last_seq.eq(seq), last_valid.eq(1)]
                        m.next = "W_FETCH"
            with m.State("W_FETCH"):      # rp.addr = ptr this cycle, rp.data next cycle
                m.next = "W_CAPTURE"
            with m.State("W_CAPTURE"):
                m.d.sync += [word.eq((word << 8) | rp.data), ptr.eq(ptr + 1), nbyte.eq(nbyte + 1)]
                m.next = "W_FETCH"
                with m.If(nbyte == 3):
                    m.next = "W_BUS"
            with m.State("W_BUS"):
                m.d.comb += [self.bus.valid.eq(1), self.bus.we.eq(1), self.bus.addr.eq(addr),
                             self.bus.wdata.eq(word)]
                with m.If(self.bus.ready):
                    m.d.sync += [addr.eq(addr + 1), remaining.eq(remaining - 1)]
                    m.next = "W_FETCH"
                    with m.If(remaining == 1):
                        m.next = "R_SEQ"

            # --- reply: seq, status, payload, CRC, END ----------------------------------------------------
            with m.State("R_SEQ"):
                emit(seq)
                with m.If(sent):
                    m.next = "R_STATUS"
            with m.State("R_STATUS"):
                emit(status)
                with m.If(sent):
                    m.next = "R_CRC_HI"
                    with m.If(status == P.ST_OK):
                        with m.If(op == P.OP_PING):
                            m.next = "R_PING"
                        with m.Elif(op == P.OP_READ):
                            m.next = "RD_BUS"
            with m.State("R_PING"):
                emit(ping_bytes[nping])
                with m.If(sent):
                    m.d.sync += nping.eq(nping + 1)
                    with m.If(nping == len(ping_bytes) - 1):
                        m.next = "R_CRC_HI"
            with m.State("RD_BUS"):
                m.d.comb += [self.bus.valid.eq(1), self.bus.addr.eq(addr)]
                with m.If(self.bus.ready):
                    m.d.sync += [word.eq(self.bus.rdata), addr.eq(addr + 1), remaining.eq(remaining - 1)]
                    m.next = "RD_EMIT"
            with m.State("RD_EMIT"):
                emit(word[24:])
                with m.If(sent):
                    m.d.sync += [word.eq(word << 8), nbyte.eq(nbyte + 1)]
                    with m.If(nbyte == 3):
                        m.next = "RD_BUS"
                        with m.If(remaining == 0):
                            m.next = "R_CRC_HI"
            with m.State("R_CRC_HI"):
                emit(crc[8:], add_to_crc=False)
                with m.If(sent):
                    m.next = "R_CRC_LO"
            with m.State("R_CRC_LO"):
                emit(crc[:8], add_to_crc=False)
                with m.If(sent):
                    m.next = "R_END"
            with m.State("R_END"):
                m.d.comb += [self.o.valid.eq(1), self.o.payload.end.eq(1)]
                with m.If(sent):
                    m.d.sync += [length.eq(0), overflow.eq(0), crc.eq(P.CRC_INIT), seq.eq(0), op.eq(0),
                                 count.eq(0), bad.eq(0)]
                    m.next = "RECV"
        return m
