"""The bus transport: the core's word bus (golden/contract/regmap.py) carried over a local TCP socket, one
request at a time, the way a PCIe BAR carries it (docs/PCIE.md).

The co-simulation serves it (sim/cosim/harness.cpp built with `transport="bus"`) with no UART in between;
the host's `host.bus_link.BusClient` speaks it. All integers little-endian:

- request: `op` (1 byte, `OP_READ` or `OP_WRITE`), word address (u16), word count n (u16, 1..MAX_WORDS),
  then for a write n data words (u32);
- reply: a read's n words (u32); a write's single byte `WRITE_ACK` once every word is on the bus.

Consecutive words go to consecutive addresses. A socket is reliable and ordered, so there is no checksum,
sequence number or re-send (a BAR access is the same); a transport that breaks is an error, not a retry.
"""

import struct

OP_READ = ord("R")
OP_WRITE = ord("W")
WRITE_ACK = ord("K")
MAX_WORDS = 0xFFFF
HEADER = struct.Struct("<BHH")


def request(op: int, addr: int, words_or_count) -> bytes:
    """The request bytes of a read of `count` words or a write of `words` at word address `addr`."""
    if op == OP_READ:
        return HEADER.pack(op, addr, words_or_count)
    words = list(words_or_count)
    return HEADER.pack(op, addr, len(words)) + struct.pack(f"<{len(words)}I", *words)
