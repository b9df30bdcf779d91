"""Pin-level cocotb testbench of the UART PHY (hw/uart.py) against its model `golden.uart`, bit-banged (no
cocotbext-uart): random bytes at the nominal rate and off by the `baud_error` parameter, a missing stop
bit, a glitch shorter than half a bit, and the transmitter's exact bit timing."""

import cocotb
from cocotb.triggers import RisingEdge, Timer

from dpfm.golden.uart import FRAME_BITS, frame_bits, frame_byte
from dpfm.sim.tb import TB, EventCounter, StreamSink, StreamSource, load_params, uart_drive_bits


def setup(dut):
    params = load_params()
    dut.rx.value = 1
    tb = TB(dut, params["seed"])
    return params, tb


@cocotb.test()
async def receive(dut):
    params, tb = setup(dut)
    sink = StreamSink(dut, "o", 8, tb.rng)
    errors = EventCounter(dut, "frame_error")
    dut.i__valid.value = 0
    await tb.reset()
    bit_ns = params["divisor"] * TB.CLOCK_PERIOD_NS * (1 + params["baud_error"])
    data = [0x00, 0xFF, 0x55, 0xAA, 0xC0, 0xDB] + [tb.rng.getrandbits(8) for _ in range(14)]
    for byte in data:
        await uart_drive_bits(dut.rx, frame_bits(byte), bit_ns)
    await tb.cycles(4 * params["divisor"])
    assert sink.items == data, f"received {sink.items}"
    assert errors.total == 0


@cocotb.test()
async def stop_bit_glitch_and_recovery(dut):
    params, tb = setup(dut)
    sink = StreamSink(dut, "o", 8, tb.rng)
    errors = EventCounter(dut, "frame_error")
    dut.i__valid.value = 0
    await tb.reset()
    bit_ns = params["divisor"] * TB.CLOCK_PERIOD_NS
    await uart_drive_bits(dut.rx, frame_bits(0x3C, stop=0), bit_ns)        # missing stop bit: dropped, counted
    await uart_drive_bits(dut.rx, [0, 0], bit_ns)                          # line held low (a break) a while longer
    await uart_drive_bits(dut.rx, [1, 1], bit_ns)
    dut.rx.value = 0                                              # a glitch of a quarter bit: no start bit
    await Timer(bit_ns / 4, unit="ns")
    await uart_drive_bits(dut.rx, [1] * 12, bit_ns)
    await uart_drive_bits(dut.rx, frame_bits(0xA5), bit_ns)
    await tb.cycles(4 * params["divisor"])
    assert sink.items == [0xA5], f"received {sink.items}"
    assert errors.total == 1


@cocotb.test()
async def transmit(dut):
    params, tb = setup(dut)
    source = StreamSource(dut, "i", 8, tb.rng, idle=0.5)
    dut.o__ready.value = 1
    await tb.reset()
    d = params["divisor"]
    data = [0x00, 0xFF, 0x80, 0x01] + [tb.rng.getrandbits(8) for _ in range(8)]
    for b in data:
        source.send(b)
    got = []
    levels = []          # tx level per cycle while a frame is on the line
    for _ in range(len(data) * (FRAME_BITS * d + 4) * 3):
        await RisingEdge(dut.clk)
        levels.append(int(dut.tx.value))
    # decode: find each falling edge, then every bit must hold for exactly d cycles
    i = 0
    while i < len(levels):
        if levels[i] == 0:
            bits = [levels[i + k * d: i + (k + 1) * d] for k in range(FRAME_BITS)]
            assert all(len(set(b)) == 1 for b in bits), f"a bit did not last exactly {d} cycles at cycle {i}"
            byte = frame_byte([b[0] for b in bits])
            assert byte is not None, f"bad start/stop bit at cycle {i}"
            got.append(byte)
            i += FRAME_BITS * d
        else:
            i += 1
    assert got == data, f"transmitted {got}"
