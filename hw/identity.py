"""The identity a core of one configuration carries in its identity block (golden/contract/identity.py).

`core_identity` spells a `CoreConfig` as the contract's `CoreIdentity` (pure Python: the host computes the
identity it expects without importing Amaranth). Its `src` item hashes the sources a bitstream is generated
from (the gateware, the arithmetic it implements and the board tops), so bitstreams of one configuration
built from different sources tell apart.
"""

import functools
import hashlib
import importlib
from pathlib import Path

from dpfm.golden.contract.identity import CoreIdentity

#: The packages whose sources `source_hash` covers, relative to the `dpfm` namespace.
SOURCE_PACKAGES = ("golden", "hw", "boards")


@functools.cache
def source_hash() -> str:
    """8 hex digits of a SHA-256 over the .py files of SOURCE_PACKAGES (relative path and contents, sorted)."""
    digest = hashlib.sha256()
    for package in SOURCE_PACKAGES:
        root = Path(importlib.import_module(f"dpfm.{package}").__path__[0])
        for path in sorted(root.rglob("*.py")):
            digest.update(f"{package}/{path.relative_to(root).as_posix()}\0".encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def core_identity(cfg, baud: int = 0) -> CoreIdentity:
    """The identity of a core of `cfg` (a `CoreConfig`) behind a UART at `baud` (0: no UART)."""
    f = cfg.fmts
    toper = f"parallel-{cfg.sources}" if cfg.parallel else "serial"
    return CoreIdentity(
        sizes=",".join(map(str, cfg.spec.sizes)), act=",".join(cfg.spec.activations),
        x=str(f.x), w=str(f.w), t=str(f.t), g=str(f.g), lr=str(f.lr), lut_bits=str(f.lut_bits),
        k=str(cfg.k), toper=toper, last_layer="exact" if cfg.exact_last else "slots", lanes=str(cfg.lanes),
        max_batch=str(cfg.max_batch), resident=str(cfg.resident), baud=str(baud),
        src=source_hash())
