"""`dpfm bench hw --config`: the configuration strings and the core configuration of the train backends."""

import pytest

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.tasks import get_task
from dpfm.host.bench.hw import _parse_config
from dpfm.host.commands.train import core_config
from dpfm.hw.config import CoreConfig
from dpfm.hw.identity import core_identity


@pytest.mark.parametrize("text, parsed", [
    ("icebreaker:seed-sum:8:1", ("icebreaker", "seed-sum", 8, 1, "serial", "")),
    ("ulx3s-85f:digits:8:1:parallel", ("ulx3s-85f", "digits", 8, 1, "parallel", "")),
    ("icebreaker:seed-sum:4:2:t=s12.8", ("icebreaker", "seed-sum", 4, 2, "serial", "t=s12.8")),
    ("ulx3s-85f:digits:8:1:parallel:t=s12.8", ("ulx3s-85f", "digits", 8, 1, "parallel", "t=s12.8")),
    ("ulx3s-85f:digits:8:1:parallel-3", ("ulx3s-85f", "digits", 8, 1, "parallel-3", "")),
])
def test_config_strings(text, parsed):
    assert _parse_config(text) == parsed


@pytest.mark.parametrize("text", ["icebreaker:seed-sum:8", "icebreaker:seed-sum:x:1", "a:b:1:1:serial:t=s8.4:z",
                                  "a:b:8:1:parallel-1", "a:b:8:1:paralel"])
def test_bad_config_string_says_the_format(text):
    with pytest.raises(DpfmError, match="BOARD:TASK:K:LANES"):
        _parse_config(text)


@pytest.mark.parametrize("tangent, toper", [(None, "serial"), ("toper", "serial"), ("toper-parallel", "parallel"),
                                            ("toper-parallel-3", "parallel-3")])
def test_device_backends_build_the_core_for_the_tangent_mode(tangent, toper):
    cfg = core_config("sim", get_task("seed-sum").spec, 4, momentum=0.0, fixed=None, tangent=tangent)
    assert str(cfg.toper) == toper and cfg.tangent == (tangent or "toper")


def test_exact_tangent_has_no_core():
    with pytest.raises(DpfmError, match="not the exact one"):
        core_config("sim", get_task("seed-sum").spec, 4, momentum=0.0, fixed=None, tangent="exact")


@pytest.mark.parametrize("toper, sources, identity", [("serial", None, "serial"), ("parallel", 9, "parallel-9"),
                                                      ("parallel-3", 3, "parallel-3")])
def test_core_config_sources_and_identity(toper, sources, identity):
    """The identity block names the organisation with its source count: parallel at K=8 is parallel-9."""
    cfg = CoreConfig.from_task("seed-sum", 8, toper=toper)
    assert cfg.sources == sources and core_identity(cfg).toper == identity
    assert cfg.parallel == (toper != "serial")


@pytest.mark.parametrize("toper, message", [("parallel-10", "only K \\+ 1 = 9 candidates"),
                                            ("parallel-1", "use --toper serial for one source"),
                                            ("paralel", "unknown toper organisation")])
def test_core_config_rejects_a_toper_that_does_not_fit(toper, message):
    with pytest.raises(DpfmError, match=message):
        CoreConfig.from_task("seed-sum", 8, toper=toper)
