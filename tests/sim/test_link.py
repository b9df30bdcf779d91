"""The link gateware equals `golden.contract.wire.DeviceModel` frame for frame (sim/tb_link.py, Icarus)."""

import pytest

from dpfm.hw.link import FrameLink, Link
from dpfm.sim.runner import run_cocotb


def run_link(dut, tmp_path, testcase, **params):
    params.setdefault("seed", 1)
    return run_cocotb(dut, name="link", test_module="dpfm.sim.tb_link", build_dir=tmp_path, params=params,
                      testcase=testcase, seed=params["seed"])


def test_commands_and_exactly_once(tmp_path):
    run_link(FrameLink(), tmp_path, "commands", max_delay=3).check()


@pytest.mark.parametrize("seed", [1, 2])
def test_fuzzed_frames_match_model(tmp_path, seed):
    """Random valid/corrupt/garbage frames, random stream stalls and bus delays: no hang, replies and
    memory equal the model after every frame."""
    run_link(FrameLink(), tmp_path, "fuzz", seed=seed, frames=100, max_delay=2).check()


def test_link_through_uart_pins(tmp_path):
    divisor = 4
    run_link(Link(clk_freq=divisor * 1_000_000, baud=1_000_000), tmp_path, "pins", divisor=divisor).check()
