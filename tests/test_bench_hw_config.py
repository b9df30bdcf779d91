"""`dpfm bench hw --config`: the configuration strings and the core configuration of the train backends."""

import pytest

from golden.errors import DpfmError
from golden.tasks import get_task
from host.commands.train import core_config
from hw.bench import _parse_config


@pytest.mark.parametrize("text, parsed", [
    ("icebreaker:seed-sum:8:1", ("icebreaker", "seed-sum", 8, 1, "serial", "")),
    ("ulx3s-85f:digits:8:1:parallel", ("ulx3s-85f", "digits", 8, 1, "parallel", "")),
    ("icebreaker:seed-sum:4:2:t=s12.8", ("icebreaker", "seed-sum", 4, 2, "serial", "t=s12.8")),
    ("ulx3s-85f:digits:8:1:parallel:t=s12.8", ("ulx3s-85f", "digits", 8, 1, "parallel", "t=s12.8")),
])
def test_config_strings(text, parsed):
    assert _parse_config(text) == parsed


@pytest.mark.parametrize("text", ["icebreaker:seed-sum:8", "icebreaker:seed-sum:x:1", "a:b:1:1:serial:t=s8.4:z"])
def test_bad_config_string_says_the_format(text):
    with pytest.raises(DpfmError, match="BOARD:TASK:K:LANES"):
        _parse_config(text)


@pytest.mark.parametrize("tangent, toper", [(None, "serial"), ("toper", "serial"), ("toper-parallel", "parallel")])
def test_device_backends_build_the_core_for_the_tangent_mode(tangent, toper):
    cfg = core_config("sim", get_task("seed-sum").spec, 4, momentum=0.0, fixed=None, tangent=tangent)
    assert cfg.toper == toper and cfg.tangent == (tangent or "toper")


def test_exact_tangent_has_no_core():
    with pytest.raises(DpfmError, match="not the exact one"):
        core_config("sim", get_task("seed-sum").spec, 4, momentum=0.0, fixed=None, tangent="exact")
