"""A bit-banged UART at the pins (8N1, least significant bit first; no cocotbext-uart), timed in
nanoseconds so a test can run it off the DUT's nominal bit time."""

from cocotb.triggers import Timer


def uart_frame_bits(byte: int, stop: int = 1) -> list[int]:
    """The line levels of one frame: start bit, eight data bits, stop bit (`stop=0`: a framing error)."""
    return [0] + [(byte >> i) & 1 for i in range(8)] + [stop]


async def uart_drive_bits(pin, bits, bit_ns: float):
    """Hold `pin` at each level of `bits` for `bit_ns`."""
    for bit in bits:
        pin.value = bit
        await Timer(bit_ns, unit="ns")


async def uart_send(pin, byte: int, bit_ns: float):
    await uart_drive_bits(pin, uart_frame_bits(byte), bit_ns)


async def uart_receive(pin, count: int, bit_ns: float, timeout_ns: float) -> bytes:
    """`count` bytes from `pin`, sampled at mid-bit like a host UART; fail on a start bit shorter than
    half a bit, a missing stop bit, or `timeout_ns` without a start bit."""
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
            assert pin.value == 0, "start bit shorter than half a bit"
            value = 0
            for i in range(8):
                await Timer(bit_ns, unit="ns")
                value |= int(pin.value) << i
            await Timer(bit_ns, unit="ns")
            assert pin.value == 1, "missing stop bit"
            out.append(value)
            waited = 0.0
    return bytes(out)
