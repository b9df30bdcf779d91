"""The host <-> device wire protocol: one source of truth for framing, CRC, opcodes and status codes.

The gateware (hw/framing.py, hw/cmdproc.py) imports these constants, so the two ends cannot drift apart.
Pure Python, no Amaranth import.

Framing (SLIP, RFC 1055, chosen over COBS because its gateware encoder needs no look-ahead buffer):
a frame is its bytes with END (0xC0) and ESC (0xDB) escaped as ESC ESC_END / ESC ESC_ESC, followed by END.
The host also sends END before each frame, so line noise before it is cut off as a separate (bad) frame.
Empty frames are ignored. The receiver resynchronizes at every END: garbage costs at most one frame.

Frame contents (before escaping), all integers big-endian:

    request:  seq:u8  op:u8      payload...  crc:u16
    reply:    seq:u8  status:u8  payload...  crc:u16

`crc` is CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no final xor) over every byte before
it. Payloads:

    OP_PING   ()                          -> LINK_MAGIC:u32 PROTOCOL_VERSION:u8 MAX_WORDS:u8
    OP_WRITE  addr:u16 count:u8 count*u32  -> ()
    OP_READ   addr:u16 count:u8            -> count*u32

A WRITE or READ of `count` words touches addresses addr, addr+1, ... (1 <= count <= MAX_WORDS).

Sequence rule (exactly-once writes over a lossy link). The host keeps one command in flight, gives each new
command the next sequence number (mod 256) and re-sends a command with the SAME number when its reply is lost
or reports a transport error. The device remembers the sequence number of the last command it executed; a
WRITE whose number equals it is acknowledged with ST_DUPLICATE and NOT executed again, so a retried CTRL_TRAIN
write cannot start a second training step. Reads and pings have no side effects and are simply executed again.
Only executed commands update the remembered number: a frame refused with an error (bad CRC, bad length,
unknown opcode, core busy) changes nothing, so its retry is executed. After reset the device remembers no
number; the host opens every session with a PING so a stale number from a previous session cannot match.
"""

import struct

#: The link's line rate, on every board and in the co-simulation: 3 Mbaud, 8N1. Each board's clock is
#: chosen so that it divides exactly (boards/clocks.py); the host opens its serial port at this rate.
BAUD = 3_000_000

# --- SLIP -----------------------------------------------------------------------------------------------
END = 0xC0
ESC = 0xDB
ESC_END = 0xDC
ESC_ESC = 0xDD

# --- frame layout ---------------------------------------------------------------------------------------
HEADER_BYTES = 2          # seq, op/status
CRC_BYTES = 2
MAX_WORDS = 64            # words per READ/WRITE frame
WORD_BYTES = 4
RW_HEADER_BYTES = 3       # addr:u16 count:u8
#: Longest valid frame (a full WRITE request); the gateware's receive buffer holds this many bytes.
MAX_FRAME_BYTES = HEADER_BYTES + RW_HEADER_BYTES + MAX_WORDS * WORD_BYTES + CRC_BYTES
MIN_FRAME_BYTES = HEADER_BYTES + CRC_BYTES

LINK_MAGIC = 0x4450464D   # "DPFM"
PROTOCOL_VERSION = 1

# --- opcodes --------------------------------------------------------------------------------------------
OP_PING = 0x01
OP_WRITE = 0x02
OP_READ = 0x03
OPCODES = {OP_PING: "PING", OP_WRITE: "WRITE", OP_READ: "READ"}

# --- reply status ---------------------------------------------------------------------------------------
ST_OK = 0x00
ST_DUPLICATE = 0x01       # a WRITE already executed under this sequence number: acknowledged, not repeated
ERR_CRC = 0x10            # CRC mismatch
ERR_FRAMING = 0x11        # invalid SLIP escape
ERR_LENGTH = 0x12         # too short, too long, or payload length does not match the opcode/count
ERR_OPCODE = 0x13         # unknown opcode
ERR_BUSY = 0x14           # WRITE refused: the core is busy (STATUS_BUSY); nothing was written
STATUS_NAMES = {ST_OK: "ok", ST_DUPLICATE: "duplicate", ERR_CRC: "bad CRC", ERR_FRAMING: "bad SLIP escape",
                ERR_LENGTH: "bad length", ERR_OPCODE: "unknown opcode", ERR_BUSY: "core busy"}
#: Errors that mean "the frame did not arrive intact": always safe to re-send the same command.
TRANSPORT_ERRORS = (ERR_CRC, ERR_FRAMING, ERR_LENGTH)

CRC_INIT = 0xFFFF
CRC_POLY = 0x1021


def crc16(data: bytes, crc: int = CRC_INIT) -> int:
    """CRC-16/CCITT-FALSE of `data` (check value of b"123456789" is 0x29B1)."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ CRC_POLY) & 0xFFFF if crc & 0x8000 else (crc << 1) & 0xFFFF
    return crc


def slip_encode(frame: bytes) -> bytes:
    """Escape `frame` and delimit it with END on both sides."""
    out = bytearray([END])
    for b in frame:
        if b == END:
            out += bytes([ESC, ESC_END])
        elif b == ESC:
            out += bytes([ESC, ESC_ESC])
        else:
            out.append(b)
    out.append(END)
    return bytes(out)


class FrameReader:
    """The host's incremental SLIP decoder: feed arbitrary chunks, get back complete frames (the gateware's
    byte-by-byte decoder is `hw.framing.SlipDecoder`, a different thing: it emits tokens, never frames).

    Each frame is returned as `(data, ok)`; `ok` is False when the frame contained an invalid escape (the
    data is then meaningless). Empty frames are dropped. Bytes after the last END stay buffered.
    `max_bytes` bounds the buffer so endless garbage without END cannot grow memory: a longer frame is
    reported as `(truncated data, False)`.
    """

    def __init__(self, max_bytes: int = 4 * MAX_FRAME_BYTES):
        self.max_bytes = max_bytes
        self._buf = bytearray()
        self._esc = False
        self._ok = True

    def feed(self, chunk: bytes) -> list[tuple[bytes, bool]]:
        frames = []
        for b in chunk:
            if b == END:
                if self._buf or not self._ok:
                    frames.append((bytes(self._buf), self._ok and not self._esc))
                self._buf.clear()
                self._esc = False
                self._ok = True
                continue
            if self._esc:
                self._esc = False
                if b == ESC_END:
                    b = END
                elif b == ESC_ESC:
                    b = ESC
                else:
                    self._ok = False
            elif b == ESC:
                self._esc = True
                continue
            if len(self._buf) < self.max_bytes:
                self._buf.append(b)
            else:
                self._ok = False
        return frames


def pack_frame(seq: int, code: int, payload: bytes = b"") -> bytes:
    """Unescaped frame: seq, opcode or status, payload, CRC."""
    body = bytes([seq & 0xFF, code & 0xFF]) + payload
    return body + struct.pack(">H", crc16(body))


def encode_frame(seq: int, code: int, payload: bytes = b"") -> bytes:
    """Frame ready for the wire (packed and SLIP-encoded)."""
    return slip_encode(pack_frame(seq, code, payload))


def unpack_frame(frame: bytes) -> tuple[int, int, bytes] | None:
    """`(seq, code, payload)` of an unescaped frame, or None if it is too short or its CRC is wrong."""
    if len(frame) < MIN_FRAME_BYTES:
        return None
    body, (crc,) = frame[:-CRC_BYTES], struct.unpack(">H", frame[-CRC_BYTES:])
    if crc16(body) != crc:
        return None
    return body[0], body[1], bytes(body[2:])


# --- request payloads -----------------------------------------------------------------------------------

def _check_span(addr: int, count: int) -> None:
    if not 1 <= count <= MAX_WORDS:
        raise ValueError(f"a frame carries 1..{MAX_WORDS} words, not {count}")
    if not 0 <= addr or addr + count > 1 << 16:
        raise ValueError(f"words {addr}..{addr + count - 1} are outside the 16-bit address space")


def write_payload(addr: int, words) -> bytes:
    words = [int(w) & 0xFFFFFFFF for w in words]
    _check_span(addr, len(words))
    return struct.pack(">HB", addr, len(words)) + struct.pack(f">{len(words)}I", *words)


def read_payload(addr: int, count: int) -> bytes:
    _check_span(addr, count)
    return struct.pack(">HB", addr, count)


def words_from_payload(payload: bytes) -> list[int]:
    if len(payload) % WORD_BYTES:
        raise ValueError(f"a word payload of {len(payload)} bytes is not a multiple of {WORD_BYTES}")
    return list(struct.unpack(f">{len(payload) // WORD_BYTES}I", payload))


def ping_reply_payload() -> bytes:
    return struct.pack(">IBB", LINK_MAGIC, PROTOCOL_VERSION, MAX_WORDS)



class DeviceModel:
    """What the device does with a byte stream, as an executable specification: the gateware's behaviour
    frame for frame (the cocotb testbench compares the two exactly) over a dict `memory` of bus words.

    `feed(data)` returns the replies (unescaped frames) for every frame `data` completes, `replies_on_wire`
    the bytes the device sends for them. `busy` stands for the core's STATUS_BUSY bit as the command
    processor reads it before a WRITE.
    """

    def __init__(self, status_addr: int):
        self.memory: dict[int, int] = {}
        self.busy = False
        self.status_addr = status_addr
        self.last_seq: int | None = None
        self._buf = bytearray()
        self._esc = False
        self._bad = False
        self._overflow = False

    def read(self, addr: int) -> int:
        if addr == self.status_addr:
            return int(self.busy)
        return self.memory.get(addr, 0)

    def replies_on_wire(self, data: bytes) -> bytes:
        """The bytes the device sends back for `data`: each reply of `feed` escaped and followed by END. The
        device sends no END before a reply (the host's leading END is for line noise, which the device's
        transmitter does not have)."""
        return b"".join(slip_encode(reply)[1:] for reply in self.feed(data))

    def feed(self, data: bytes) -> list[bytes]:
        replies = []
        for b in data:
            if b == END:
                if self._buf or self._bad or self._esc:
                    replies.append(self._execute(bytes(self._buf), self._bad or self._esc, self._overflow))
                self._buf.clear()
                self._esc = self._bad = self._overflow = False
                continue
            if self._esc:
                self._esc = False
                if b not in (ESC_END, ESC_ESC):
                    self._bad = True
                    continue
                b = END if b == ESC_END else ESC
            elif b == ESC:
                self._esc = True
                continue
            if len(self._buf) == MAX_FRAME_BYTES:
                self._overflow = True
            else:
                self._buf.append(b)
        return replies

    def _status(self, frame: bytes, bad: bool, overflow: bool) -> int:
        if bad:
            return ERR_FRAMING
        if overflow or len(frame) < MIN_FRAME_BYTES:
            return ERR_LENGTH
        if crc16(frame) != 0:
            return ERR_CRC
        seq, op = frame[0], frame[1]
        addr = int.from_bytes(frame[2:4], "big") if len(frame) >= 4 else 0
        count = frame[4] if len(frame) >= 5 else 0
        count_ok = 1 <= count <= MAX_WORDS and addr + count <= 1 << 16
        if op == OP_PING:
            return ST_OK if len(frame) == MIN_FRAME_BYTES else ERR_LENGTH
        if op == OP_READ:
            return ST_OK if len(frame) == MIN_FRAME_BYTES + RW_HEADER_BYTES and count_ok else ERR_LENGTH
        if op == OP_WRITE:
            if len(frame) != MIN_FRAME_BYTES + RW_HEADER_BYTES + WORD_BYTES * count or not count_ok:
                return ERR_LENGTH
            if self.last_seq == seq:
                return ST_DUPLICATE
            return ERR_BUSY if self.busy else ST_OK
        return ERR_OPCODE

    def _execute(self, frame: bytes, bad: bool, overflow: bool) -> bytes:
        seq = frame[0] if frame else 0
        status = self._status(frame, bad, overflow)
        payload = b""
        if status == ST_OK:
            self.last_seq = seq
            op, addr, count = frame[1], int.from_bytes(frame[2:4], "big"), frame[4] if len(frame) > 4 else 0
            if op == OP_PING:
                payload = ping_reply_payload()
            elif op == OP_READ:
                payload = b"".join(self.read(addr + k).to_bytes(4, "big") for k in range(count))
            else:
                for k, word in enumerate(words_from_payload(frame[5:-CRC_BYTES])):
                    self.memory[addr + k] = word
        return pack_frame(seq, status, payload)
