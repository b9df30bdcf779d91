"""The host refuses any core it was not built for, before it writes anything (host/core_identity.py).

The device here is a register model that answers REG_ID and the identity block only (tests/sim/test_core.py
checks that the gateware's block holds `core_identity(cfg).words()` word for word, also on iCE40 block RAM,
and tests/host/test_device.py refuses a co-simulated core). The matrix pairs cores and runs that differ in
one property each: every property that decides the weights is refused by name, the others are accepted.
"""

import pytest

from dpfm.golden.contract import regmap as R
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.contract.identity import IDENT_WORDS, RESULT_KEYS, CoreIdentity
from dpfm.golden.contract.net import NetSpec
from dpfm.host.core_identity import check_core
from dpfm.host.device import Device
from dpfm.hw.config import CoreConfig
from dpfm.hw.identity import core_identity

SEED_SUM = NetSpec((4, 5, 5, 1), ("sigmoid", "sigmoid", "identity"))


class IdentityClient:
    """A link client whose device answers REG_ID with `core_id` and the identity block with `words`, and
    fails the test on a write or on a read of anything else."""

    def __init__(self, core_id: int, words=()):
        self.core_id, self.words = core_id, list(words)

    def read(self, addr: int, count: int) -> list:
        ident = R.address(R.REGION_REGS, R.REG_IDENT)
        if addr == R.address(R.REGION_REGS, R.REG_ID) and count == 1:
            return [self.core_id]
        assert self.words and ident <= addr and addr + count <= ident + len(self.words), \
            f"the host read {count} words at {addr:#x}, outside REG_ID and the identity block"
        return self.words[addr - ident:addr - ident + count]

    def write(self, addr: int, words) -> None:
        raise AssertionError("the host wrote to a device it had not identified")


def core(cfg: CoreConfig, baud: int = 0) -> IdentityClient:
    return IdentityClient(R.CORE_ID, core_identity(cfg, baud).words())


def config(**changes) -> CoreConfig:
    return CoreConfig(**{"spec": SEED_SUM, "k": 8, **changes})


@pytest.mark.parametrize("core_id, problem", [
    (R.CORE_TAG << 16 | (R.CORE_REVISION - 1), f"revision {R.CORE_REVISION - 1}, this host speaks revision "
                                                f"{R.CORE_REVISION}"),
    (R.CORE_TAG << 16 | (R.CORE_REVISION + 1), f"contract revision {R.CORE_REVISION + 1}"),
    (0x12345678, "core id 0x12345678"),
])
def test_a_core_of_another_revision_or_kind_is_refused_first(core_id, problem):
    with pytest.raises(DpfmError, match=problem):
        Device(IdentityClient(core_id), CoreConfig.from_task("seed-sum", 2))


def test_the_revision_is_the_low_half_of_the_id():
    assert R.CORE_ID == 0xD9F30005 and R.CORE_ID >> 16 == R.CORE_TAG


#: One property changed at a time: (name, core config changes, run config changes, the items named; the
#: gradient format g follows x and t).
MISMATCHES = [
    ("sizes, same parameter count", {}, {"spec": NetSpec((4, 8, 2, 1), SEED_SUM.activations)}, ("sizes",)),
    ("activations", {}, {"spec": NetSpec(SEED_SUM.sizes, ("tanh", "tanh", "identity"))}, ("act",)),
    ("x format", {}, {"fmts": HwFormats.parse("x=s16.10,g=s32.22")}, ("x", "g")),
    ("w format", {}, {"fmts": HwFormats.parse("w=s12.10")}, ("w",)),
    ("t format", {}, {"fmts": HwFormats.parse("t=s16.14,g=s32.26")}, ("t", "g")),
    ("lr format", {}, {"fmts": HwFormats.parse("lr=u16.16")}, ("lr",)),
    ("LUT size", {}, {"fmts": HwFormats.parse("lut_bits=9")}, ("lut_bits",)),
    ("K", {}, {"k": 4}, ("k",)),
    ("toper", {}, {"toper": "parallel"}, ("toper",)),
    ("toper sources", {"toper": "parallel-3"}, {"toper": "parallel-4"}, ("toper",)),
    ("exact output layer", {}, {"exact_last": True}, ("last_layer",)),
]


@pytest.mark.parametrize("name, core_changes, run_changes, keys", MISMATCHES, ids=[m[0] for m in MISMATCHES])
def test_a_core_built_for_other_numbers_is_refused_naming_both_sides(name, core_changes, run_changes, keys):
    core_cfg, run_cfg = config(**core_changes), config(**{**core_changes, **run_changes})
    theirs, mine = core_identity(core_cfg), core_identity(run_cfg)
    with pytest.raises(DpfmError) as err:
        Device(core(core_cfg), run_cfg)
    message = str(err.value)
    for key in keys:
        assert f"{key} {getattr(mine, key)} here, {getattr(theirs, key)} on the device" in message
    assert message.count(" on the device") == len(keys), "only the changed items are reported"
    assert "dpfm build" in message and "--fixed" in message and "--exact-last" in message


def test_the_matrix_covers_every_item_that_decides_the_weights():
    assert {key for m in MISMATCHES for key in m[3]} == set(RESULT_KEYS)


@pytest.mark.parametrize("core_changes", [{"lanes": 2}, {"max_batch": 32}, {}], ids=["lanes", "max_batch", "baud"])
def test_speed_and_capacity_do_not_decide_the_weights(core_changes):
    """Lanes, the buffer size and the link rate are the core's business: the run is accepted."""
    device = check_core(core(config(**core_changes), baud=3_000_000), config())
    assert device.baud == "3000000"


def test_a_damaged_identity_block_is_refused():
    words = core_identity(config()).words()
    for damaged in ([0] + words[1:], [600] + words[1:], [words[0], 0xFFFF] + words[2:]):
        with pytest.raises(DpfmError, match="identity"):
            check_core(IdentityClient(R.CORE_ID, damaged), config())


def test_the_text_round_trips_and_the_build_id_follows_it():
    ident = core_identity(config(), baud=3_000_000)
    assert CoreIdentity.from_words(ident.words()) == ident == CoreIdentity.parse(ident.text())
    assert ident.words()[0] == len(ident.text()) and len(ident.words()) == IDENT_WORDS
    assert ident.build_id != core_identity(config(), baud=115_200).build_id
