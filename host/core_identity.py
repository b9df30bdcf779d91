"""Reading a core's identity over any link client, and refusing a core built for other numbers.

The first thing a host reads from a device is REG_ID (is it a dpfm core, of this contract revision?), then
the identity block (golden/contract/identity.py). `check_core` compares the block with the identity of the
configuration a run needs and refuses any difference in what decides the trained weights, with one line
that names both sides and the two ways out: a bitstream for this run, or this run's options for the core.
"""

from dpfm.golden.contract import regmap as R
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.identity import MAX_TEXT_BYTES, CoreIdentity
from dpfm.hw.identity import core_identity

#: The identity items that `--fixed` (train) and `--formats` (build) set.
_FORMAT_KEYS = ("x", "w", "t", "g", "lr", "lut_bits")


def read_core_id(client) -> int:
    """REG_ID, refused unless it is a dpfm core of this host's contract revision."""
    core_id = client.read(R.address(R.REGION_REGS, R.REG_ID), 1)[0]
    if core_id >> 16 == R.CORE_TAG and core_id != R.CORE_ID:
        raise DpfmError(f"the device runs a dpfm core of contract revision {core_id & 0xFFFF}, this host speaks "
                        f"revision {R.CORE_REVISION} (golden/contract/regmap.py: the arithmetic or the register map differs)",
                        "rebuild and program the bitstream with this dpfm (dpfm build --board ... --program)")
    if core_id != R.CORE_ID:
        raise DpfmError(f"the device reports core id {core_id:#010x}, not {R.CORE_ID:#010x}",
                        "program the board with a dpfm bitstream")
    return core_id


def read_identity(client) -> CoreIdentity:
    """The identity block of a core whose REG_ID was accepted: the length, then just the text."""
    base = R.address(R.REGION_REGS, R.REG_IDENT)
    n_bytes = client.read(base, 1)[0]
    text = client.read(base + 1, n_bytes) if 0 < n_bytes <= MAX_TEXT_BYTES else []
    return CoreIdentity.from_words([n_bytes, *text])


def check_core(client, config) -> CoreIdentity:
    """The device's identity, if it trains exactly as `config` (a `hw.config.CoreConfig`) says; else DpfmError."""
    read_core_id(client)
    device = read_identity(client)
    diffs = device.differences(core_identity(config))
    if diffs:
        shown = "; ".join(f"{key} {theirs} here, {mine} on the device" for key, mine, theirs in diffs)
        raise DpfmError(f"the device's core is built for other numbers than this run: {shown}",
                        f"program a bitstream built for this run ({build_options(config)}), or train with "
                        f"the core's settings ({run_options(device)})")
    return device


def build_options(config) -> str:
    """The `dpfm build` options (besides --board and the task) that make a core of `config`."""
    return (f"dpfm build --k {config.k} --toper {config.toper} --formats {config.fmts} --exact-last "
            f"{'on' if config.exact_last else 'off'} for network {','.join(map(str, config.spec.sizes))} "
            f"{','.join(config.spec.activations)}")


def run_options(device: CoreIdentity) -> str:
    """The `dpfm train` options that match the core `device` describes."""
    formats = ",".join(f"{key}={getattr(device, key)}" for key in _FORMAT_KEYS)
    toper = "" if device.toper == "serial" else " --tangent toper-" + device.toper
    exact = " --exact-last " + ("on" if device.last_layer == "exact" else "off")
    return (f"--k {device.k} --fixed {formats}{toper}{exact}, on network {device.sizes} with activations "
            f"{device.act}")
