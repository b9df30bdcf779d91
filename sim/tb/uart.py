"""A bit-banged UART at the pins (no cocotbext-uart), timed in nanoseconds so a test can run it off the
DUT's nominal bit time. The characters are those of the UART's model, `golden.uart`."""

from cocotb.triggers import Timer

from dpfm.golden.uart import FRAME_BITS, frame_bits, frame_byte


async def uart_drive_bits(pin, bits, bit_ns: float):
    """Hold `pin` at each level of `bits` for `bit_ns`."""
    for bit in bits:
        pin.value = bit
        await Timer(bit_ns, unit="ns")


async def uart_send(pin, byte: int, bit_ns: float):
    await uart_drive_bits(pin, frame_bits(byte), bit_ns)


async def uart_receive(pin, count: int, bit_ns: float, timeout_ns: float) -> bytes:
    """`count` bytes from `pin`, each character sampled at mid-bit like a host UART; fail on a character
    `golden.uart.frame_byte` refuses (bad start or stop bit) or `timeout_ns` without a start bit."""
    out = bytearray()
    step = bit_ns / 8
    waited = 0.0
    while len(out) < count:
        await Timer(step, unit="ns")
        waited += step
        if waited > timeout_ns:
            raise AssertionError(f"timeout: {len(out)} of {count} reply bytes arrived")
        if pin.value == 0:
            await Timer(bit_ns / 2, unit="ns")
            levels = [int(pin.value)]
            for _ in range(FRAME_BITS - 1):
                await Timer(bit_ns, unit="ns")
                levels.append(int(pin.value))
            value = frame_byte(levels)
            assert value is not None, f"bad start or stop bit, levels at mid-bit {levels}"
            out.append(value)
            waited = 0.0
    return bytes(out)
