"""Host side of the bus transport (golden/contract/bus_socket.py): word reads and writes straight onto the
core's bus, as a PCIe BAR gives them (docs/PCIE.md), served today by the co-simulation built with
`transport="bus"`.

`BusClient` has `LinkClient`'s `read(addr, count)` / `write(addr, words)` / `close()`, so `host.device.Device`
drives a core through either without knowing which. There is no re-send: a socket is reliable, and a broken
or silent one is reported as such.
"""

import socket
import struct

from dpfm.golden.contract import bus_socket as B
from dpfm.golden.contract.errors import DpfmError

_FIX = "the co-simulation stopped: restart it (the weights of a run are in its last checkpoint)"


class BusClient:
    """Bus words over TCP to `address` (`HOST:PORT`); `timeout` bounds every reply. `stats` counts the
    requests and words each way (what a BAR would carry: docs/PCIE.md)."""

    def __init__(self, address: str, timeout: float = 60.0):
        self.name = f"bus://{address}"
        self.stats = {"read_requests": 0, "words_read": 0, "write_requests": 0, "words_written": 0}
        host, _, port = address.rpartition(":")
        try:
            self._sock = socket.create_connection((host, int(port)), timeout=timeout)
        except (OSError, ValueError) as exc:
            raise DpfmError(f"cannot open {self.name}: {exc}",
                            "start the co-simulation with the bus transport and use the address it prints") from None
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, addr: int, words) -> None:
        words = [int(w) & 0xFFFFFFFF for w in words]
        for start in range(0, len(words), B.MAX_WORDS):
            chunk = words[start:start + B.MAX_WORDS]
            self._send(B.request(B.OP_WRITE, addr + start, chunk))
            self.stats["write_requests"] += 1
            self.stats["words_written"] += len(chunk)
            if self._recv(1)[0] != B.WRITE_ACK:
                raise DpfmError(f"{self.name} answered a write with something else than its acknowledgement",
                                "the host and the co-simulation disagree on the bus transport: rebuild it")

    def read(self, addr: int, count: int) -> list[int]:
        out = []
        for start in range(0, count, B.MAX_WORDS):
            n = min(B.MAX_WORDS, count - start)
            self._send(B.request(B.OP_READ, addr + start, n))
            self.stats["read_requests"] += 1
            self.stats["words_read"] += n
            out += struct.unpack(f"<{n}I", self._recv(4 * n))
        return out

    def close(self) -> None:
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _send(self, data: bytes) -> None:
        try:
            self._sock.sendall(data)
        except OSError as exc:
            raise DpfmError(f"writing to {self.name} failed: {exc}", _FIX) from None

    def _recv(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            try:
                chunk = self._sock.recv(n - len(data))
            except socket.timeout:
                raise DpfmError(f"{self.name} did not answer within {self._sock.gettimeout():g} s", _FIX) from None
            except OSError as exc:
                raise DpfmError(f"reading from {self.name} failed: {exc}", _FIX) from None
            if not chunk:
                raise DpfmError(f"{self.name} closed the connection", _FIX)
            data += chunk
        return data
