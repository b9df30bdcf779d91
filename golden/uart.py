"""The UART PHY's model (hw/uart.py): the 8N1 character that carries one byte on the line.

A character is `FRAME_BITS` bit times: a start bit (0), the 8 data bits LSB first, a stop bit (1); the line
idles high. `hw.uart.UartTx` must send exactly `frame_bits(byte)`, one level per bit time, and
`hw.uart.UartRx` must deliver the byte of every character whose `frame_byte` is not None and drop (and
count) the others.
"""

DATA_BITS = 8
FRAME_BITS = 1 + DATA_BITS + 1


def frame_bits(byte: int, stop: int = 1) -> list[int]:
    """The line levels of `byte`'s character, one per bit time; `stop=0` gives a character with a missing
    stop bit (a framing error)."""
    return [0] + [(byte >> i) & 1 for i in range(DATA_BITS)] + [stop]


def frame_byte(bits: list[int]) -> int | None:
    """The byte of a character read off the line, one level per bit time (the inverse of `frame_bits`), or
    None when its start bit is not 0 or its stop bit is not 1."""
    if len(bits) != FRAME_BITS or bits[0] != 0 or bits[-1] != 1:
        return None
    return sum(bit << i for i, bit in enumerate(bits[1:-1]))
