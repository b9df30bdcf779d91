"""Host side of the link: a byte transport and the request/reply client of golden/contract/wire.py.

`SerialPort` opens any pyserial URL with `serial.serial_for_url`, so a board's /dev/ttyUSB1 and a
co-simulation's socket://127.0.0.1:PORT take the same code path. `LinkClient` sends one command at a time,
waits for its reply with a timeout, re-sends the SAME sequence number on a lost reply or a transport-error
reply (safe by the protocol's exactly-once rule) and splits long reads/writes into frames.
"""

import time
from collections import deque
from abc import ABC, abstractmethod
from dataclasses import dataclass

from dpfm.golden.contract import wire as P
from dpfm.golden.contract.errors import DpfmError


class ByteLink(ABC):
    """A bidirectional byte pipe."""

    name = "link"

    @abstractmethod
    def write(self, data: bytes) -> None: ...

    @abstractmethod
    def read(self, timeout: float) -> bytes:
        """Whatever bytes arrive within `timeout` seconds (at least one unless it expires)."""

    @abstractmethod
    def close(self) -> None: ...


class SerialPort(ByteLink):
    """A pyserial port by URL: a device path, or `socket://127.0.0.1:PORT` for the co-simulation."""

    def __init__(self, url: str, baud: int = P.BAUD):
        import serial
        self.name = url
        if url.startswith("socket://"):
            _check_socket_url(url)
        try:
            self._port = serial.serial_for_url(url, baudrate=baud, timeout=0, exclusive=True) \
                if not url.startswith("socket://") else serial.serial_for_url(url, timeout=0)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise DpfmError(f"cannot open {url}: {exc}", _open_hint(url)) from None

    def write(self, data: bytes) -> None:
        import serial
        try:
            self._port.write(data)
            self._port.flush()
        except (serial.SerialException, OSError) as exc:
            raise DpfmError(f"writing to {self.name} failed: {exc}", _open_hint(self.name)) from None

    def read(self, timeout: float) -> bytes:
        import serial
        self._port.timeout = max(timeout, 0.0)
        try:
            first = self._port.read(1)
            if not first:
                return b""
            self._port.timeout = 0
            return first + self._port.read(4096)
        except (serial.SerialException, OSError) as exc:
            raise DpfmError(f"reading from {self.name} failed: {exc}", _open_hint(self.name)) from None

    def close(self) -> None:
        self._port.close()


def _check_socket_url(url: str) -> None:
    """`socket://HOST:PORT` with a port 1..65535, else one DpfmError (pyserial's own errors for these read
    like internal failures)."""
    host, sep, port = url[len("socket://"):].rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise DpfmError(f"{url} is not a socket address with a TCP port 1..65535",
                        "write socket://127.0.0.1:PORT with the port `dpfm sim serve` prints")


def _open_hint(url: str) -> str:
    if url.startswith("socket://"):
        return "start the co-simulation with `dpfm sim serve` and use the socket:// address it prints"
    return ("check the board is plugged in and the port name (ls /dev/ttyUSB*), that no other program "
            "(screen, minicom, another dpfm) holds it, and that you may open it (dialout group)")


@dataclass
class LinkStats:
    commands: int = 0
    retries: int = 0
    duplicates: int = 0     # WRITEs the device had already executed when their re-send arrived
    bytes_out: int = 0
    bytes_in: int = 0


class DeviceBusy(DpfmError):
    """A WRITE was refused because the core is busy (nothing was written)."""


class LinkClient:
    """Commands to the device over a `ByteLink`: `ping`, `write(addr, words)`, `read(addr, count)`.

    `timeout` is the wait for the first reply, doubled on every re-send (up to 16x) so a slow device (a
    loaded co-simulation) is not buried under re-sends it cannot answer in time; `retries` is the number of
    re-sends before giving up with a DpfmError that says what to check. Opening sends a PING, which also makes a stale sequence number from an earlier session
    harmless (see golden/contract/wire.py).
    """

    def __init__(self, link: ByteLink, timeout: float = 0.5, retries: int = 4):
        self.link = link
        self.timeout = timeout
        self.retries = retries
        self.stats = LinkStats()
        self._reader = P.FrameReader()
        self._frames = deque()  # decoded reply frames not yet looked at
        self._seq = 0
        self.info = self.ping()

    def close(self):
        self.link.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # --- commands -------------------------------------------------------------------------------------

    def ping(self) -> dict:
        payload = self.command(P.OP_PING)
        if len(payload) != 6 or int.from_bytes(payload[:4], "big") != P.LINK_MAGIC:
            raise DpfmError(f"{self.link.name} answered the ping with {payload.hex()}, not a dpfm link",
                            "check the port belongs to a board running the dpfm bitstream")
        version, max_words = payload[4], payload[5]
        if version != P.PROTOCOL_VERSION:
            raise DpfmError(f"the device speaks protocol version {version}, this host {P.PROTOCOL_VERSION}",
                            "rebuild the bitstream (dpfm build) from this version of dpfm")
        return {"version": version, "max_words": max_words}

    def write(self, addr: int, words) -> None:
        words = [int(w) & 0xFFFFFFFF for w in words]
        for start in range(0, len(words), P.MAX_WORDS):
            self.command(P.OP_WRITE, P.write_payload(addr + start, words[start:start + P.MAX_WORDS]))

    def read(self, addr: int, count: int) -> list[int]:
        out = []
        for start in range(0, count, P.MAX_WORDS):
            n = min(P.MAX_WORDS, count - start)
            words = P.words_from_payload(self.command(P.OP_READ, P.read_payload(addr + start, n)))
            if len(words) != n:
                raise DpfmError(f"the device returned {len(words)} words for a read of {n}",
                                "the link is out of step: reopen it")
            out += words
        return out

    # --- one request/reply exchange -------------------------------------------------------------------

    def command(self, op: int, payload: bytes = b"") -> bytes:
        """Send a command and return its reply payload, re-sending on a lost or damaged exchange."""
        self._seq = (self._seq + 1) & 0xFF
        wire = P.encode_frame(self._seq, op, payload)
        self.stats.commands += 1
        for attempt in range(self.retries + 1):
            if attempt:
                self.stats.retries += 1
            self.link.write(wire)
            self.stats.bytes_out += len(wire)
            reply = self._await_reply(self._seq, self.timeout * 2 ** min(attempt, 4))
            if reply is None:
                continue
            status, data = reply
            if status in (P.ST_OK, P.ST_DUPLICATE):
                self.stats.duplicates += status == P.ST_DUPLICATE
                return data
            if status == P.ERR_BUSY:
                raise DeviceBusy("the core is busy and refused the write", "wait for STATUS_DONE before writing")
            raise DpfmError(f"the device refused {P.OPCODES.get(op, op)}: {P.STATUS_NAMES.get(status, status)}",
                            "the host and the bitstream disagree on the protocol: rebuild the bitstream")
        raise DpfmError(f"no valid reply from {self.link.name} after {self.retries + 1} tries "
                        f"(first timeout {self.timeout:g} s, doubled per try)",
                        "check that the board is programmed and powered (or the co-simulation is running), "
                        "the port and baud rate, and the USB cable")

    def _await_reply(self, seq: int, timeout: float):
        """`(status, payload)` of the reply to `seq`, or None to re-send: on a timeout, or at once when the
        device answers `seq` with a transport error (it has then finished with the damaged frame, so the
        re-send cannot overlap its reply). Garbled frames and replies to other sequence numbers (late
        answers to earlier re-sends) are skipped: re-sending on them could pile frames onto a device that
        is still answering."""
        deadline = time.monotonic() + timeout
        while True:
            if not self._frames:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                chunk = self.link.read(left)
                self.stats.bytes_in += len(chunk)
                self._frames.extend(self._reader.feed(chunk))
            while self._frames:
                frame, ok = self._frames.popleft()
                parsed = P.unpack_frame(frame) if ok else None
                if parsed is None or parsed[0] != seq:
                    continue
                status, data = parsed[1], parsed[2]
                if status in P.TRANSPORT_ERRORS:
                    return None
                return status, data
