"""The host refuses a core of another contract revision, or no dpfm core at all, before it writes anything
(host/device.py `_check_identity`). The device answers only REG_ID here: the check is the first thing the
host reads, and a write would fail the test."""

import pytest

from dpfm.golden.contract import regmap as R
from dpfm.golden.contract.errors import DpfmError
from dpfm.host.device import Device
from dpfm.hw.config import CoreConfig


class IdOnlyClient:
    """A link client whose device answers the identity register with `core_id` and nothing else."""

    def __init__(self, core_id: int):
        self.core_id = core_id

    def read(self, addr: int, count: int) -> list:
        assert (addr, count) == (R.address(R.REGION_REGS, R.REG_ID), 1), "the host read past the identity"
        return [self.core_id]

    def write(self, addr: int, words) -> None:
        raise AssertionError("the host wrote to a device it had not identified")


@pytest.mark.parametrize("core_id, problem", [
    (R.CORE_TAG << 16 | 1, "contract revision 1, this host speaks revision 2"),
    (R.CORE_TAG << 16 | (R.CORE_REVISION + 1), f"contract revision {R.CORE_REVISION + 1}"),
    (0x12345678, "core id 0x12345678"),
])
def test_a_core_of_another_revision_or_kind_is_refused_first(core_id, problem):
    with pytest.raises(DpfmError, match=problem):
        Device(IdOnlyClient(core_id), CoreConfig.from_task("seed-sum", 2))


def test_the_revision_is_the_low_half_of_the_id():
    assert R.CORE_ID == 0xD9F30002 and R.CORE_ID >> 16 == R.CORE_TAG
