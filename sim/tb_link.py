"""cocotb testbench of the link gateware against `golden.contract.wire.DeviceModel` (the executable protocol
spec).

Two DUTs: `hw.link.FrameLink` (byte streams; the frame decoder and command processor, fuzzed with valid,
corrupted, truncated, overlong and garbage frames) and `hw.link.Link` (UART pins, a few frames end to end).
A Python word-bus slave with random response delays stands in for the core. Every reply must equal the
model's byte for byte, and after every frame the slave's memory must equal the model's memory, so a bad frame
that wrote a word, a missing or malformed reply, and a hang (bounded waits) all fail.
"""

import random

import cocotb

from dpfm.golden.contract import wire as P
from dpfm.golden.contract import regmap
from dpfm.golden.uart import FRAME_BITS
from dpfm.sim.tb import TB, BusSlave, StreamSink, StreamSource, load_params, uart_receive, uart_send

STATUS_ADDR = regmap.address(regmap.REGION_REGS, regmap.REG_STATUS)


def random_frame(rng: random.Random, seq: int) -> bytes:
    """A wire chunk: usually a valid command, often a damaged one, sometimes garbage."""
    kind = rng.choice(["ping", "write", "write", "read", "read", "flip", "truncate", "extend", "badop",
                       "badlen", "garbage", "badesc", "overlong"])
    addr = rng.choice([0, 1, 5, 0x4000, 0x4001, 0x8000, 0xFFC0, rng.randrange(1 << 16)])
    count = rng.randint(1, P.MAX_WORDS) if rng.random() < 0.3 else rng.randint(1, 4)
    count = min(count, (1 << 16) - addr)
    words = [rng.choice([0, 0xFFFFFFFF, P.END * 0x01010101, P.ESC << 8, rng.getrandbits(32)]) for _ in range(count)]
    if kind == "ping":
        return P.encode_frame(seq, P.OP_PING)
    if kind == "write":
        return P.encode_frame(seq, P.OP_WRITE, P.write_payload(addr, words))
    if kind == "read":
        return P.encode_frame(seq, P.OP_READ, P.read_payload(addr, count))
    frame = bytearray(P.pack_frame(seq, P.OP_WRITE, P.write_payload(addr, words)))
    if kind == "flip":
        frame[rng.randrange(len(frame))] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del frame[rng.randrange(len(frame)):]
    elif kind == "extend":
        frame += bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3)))
    elif kind == "badop":
        frame = bytearray(P.pack_frame(seq, rng.choice([0, 4, 0x7F, 0xFF])))
    elif kind == "badlen":
        bad_count = rng.choice([0, P.MAX_WORDS + 1, count + 1])
        frame = bytearray(P.pack_frame(seq, rng.choice([P.OP_WRITE, P.OP_READ]),
                                       bytes([addr >> 8, addr & 0xFF, bad_count & 0xFF]) + bytes(4 * count)))
    elif kind == "garbage":
        return bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 40))) + bytes([P.END])
    elif kind == "badesc":
        wire = bytearray(P.slip_encode(bytes(frame)))
        wire.insert(rng.randint(1, len(wire) - 1), P.ESC)
        return bytes(wire)
    elif kind == "overlong":
        frame = bytearray(P.pack_frame(seq, P.OP_WRITE, bytes(P.MAX_FRAME_BYTES)))
    return P.slip_encode(bytes(frame))


async def exchange(tb, source, sink, model, slave, wire: bytes, what: str):
    """Send `wire`, wait for the model's replies, compare replies and memory."""
    expected = model.replies_on_wire(wire)
    for b in wire:
        source.send(b)
    want = len(expected)
    start = len(sink.items)
    await sink.wait_for(start + want, max_cycles=200 + 40 * (len(wire) + want))
    await tb.cycles(50)                                # anything extra would show up now
    got = bytes(sink.items[start:])
    assert got == expected, f"{what}: replies {got.hex()} != expected {expected.hex()}"
    assert slave.memory == model.memory, f"{what}: memory differs from the model"


def setup(dut, params):
    tb = TB(dut, params["seed"])
    slave = BusSlave(dut, tb.rng, params.get("max_delay", 3), STATUS_ADDR)
    model = P.DeviceModel(STATUS_ADDR)
    return tb, slave, model


@cocotb.test()
async def commands(dut):
    """Valid PING/WRITE/READ, the exactly-once rule (a repeated WRITE is not executed) and ERR_BUSY."""
    params = load_params()
    tb, slave, model = setup(dut, params)
    source = StreamSource(dut, "i", 8, tb.rng, idle=0.3)
    sink = StreamSink(dut, "o", 8, tb.rng, backpressure=0.3)
    await tb.reset()
    await exchange(tb, source, sink, model, slave, P.encode_frame(7, P.OP_PING), "ping")
    await exchange(tb, source, sink, model, slave, P.encode_frame(8, P.OP_WRITE, P.write_payload(0x4000, [1, 2, 3])),
                   "write")
    # the same sequence number again with different data: acknowledged as a duplicate, memory unchanged
    await exchange(tb, source, sink, model, slave, P.encode_frame(8, P.OP_WRITE, P.write_payload(0x4000, [9, 9, 9])),
                   "duplicate write")
    assert slave.memory[0x4000] == 1
    await exchange(tb, source, sink, model, slave, P.encode_frame(9, P.OP_READ, P.read_payload(0x4000, 3)), "read")
    slave.busy = model.busy = True
    await exchange(tb, source, sink, model, slave, P.encode_frame(10, P.OP_WRITE, P.write_payload(0x4001, [5])),
                   "write while busy")
    await exchange(tb, source, sink, model, slave, P.encode_frame(11, P.OP_READ, P.read_payload(STATUS_ADDR, 1)),
                   "read while busy")
    slave.busy = model.busy = False
    await exchange(tb, source, sink, model, slave, P.encode_frame(10, P.OP_WRITE, P.write_payload(0x4001, [5])),
                   "retry after busy")
    assert slave.memory[0x4001] == 5
    await exchange(tb, source, sink, model, slave,
                   P.encode_frame(12, P.OP_WRITE, P.write_payload(0xFFC0, list(range(P.MAX_WORDS)))), "full write")
    await exchange(tb, source, sink, model, slave, P.encode_frame(13, P.OP_READ, P.read_payload(0xFFC0, P.MAX_WORDS)),
                   "full read")


@cocotb.test()
async def fuzz(dut):
    """Random valid and corrupted frames and garbage: replies and memory match the model after each one."""
    params = load_params()
    tb, slave, model = setup(dut, params)
    source = StreamSource(dut, "i", 8, tb.rng, idle=0.2)
    sink = StreamSink(dut, "o", 8, tb.rng, backpressure=0.2)
    await tb.reset()
    seq = 0
    for n in range(params["frames"]):
        if tb.rng.random() < 0.1:
            slave.busy = model.busy = not slave.busy
        wire = random_frame(tb.rng, seq)
        await exchange(tb, source, sink, model, slave, wire, f"frame {n} ({wire.hex()})")
        if tb.rng.random() < 0.8:
            seq = (seq + 1) & 0xFF


@cocotb.test()
async def pins(dut):
    """`Link` through its UART pins: a ping, a write with escaped bytes, a corrupt frame, a read."""
    params = load_params()
    dut.rx.value = 1
    tb, slave, model = setup(dut, params)
    await tb.reset()
    bit_ns = params["divisor"] * TB.CLOCK_PERIOD_NS
    words = [P.END, P.ESC << 24, 0x12345678]
    corrupt = bytearray(P.pack_frame(3, P.OP_WRITE, P.write_payload(0x10, [0xDEAD])))
    corrupt[-1] ^= 0x01
    for wire in [P.encode_frame(1, P.OP_PING), P.encode_frame(2, P.OP_WRITE, P.write_payload(0x4000, words)),
                 P.slip_encode(bytes(corrupt)), P.encode_frame(3, P.OP_READ, P.read_payload(0x4000, 3))]:
        expected = model.replies_on_wire(wire)
        receiver = cocotb.start_soon(uart_receive(dut.tx, len(expected), bit_ns,
                                                  timeout_ns=(FRAME_BITS * len(wire) + 200) * bit_ns))
        for b in wire:
            await uart_send(dut.rx, b, bit_ns)
        got = await receiver
        assert got == expected, f"{wire.hex()}: reply {got.hex()} != {expected.hex()}"
        assert slave.memory == model.memory
