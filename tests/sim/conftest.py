"""Simulation tests: every test here builds Verilog from an Amaranth component and runs a cocotb testbench
on Icarus (`sim.runner.run_cocotb`) in its own build directory, so `pytest -n 2` never shares files."""

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/sim/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.sim)
