"""The simulation infrastructure itself: port naming, the payload codec, waveforms, and failure reporting."""

import pytest
from amaranth.hdl import signed
from amaranth.lib import data

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import Fmt, HwFormats
from dpfm.hw.streams import dual_layout, mac_step_layout, pack, slots_from_python, slots_to_python, unpack
from dpfm.hw.toper import Toper
from dpfm.sim.runner import component_ports, require_icarus, run_cocotb, write_verilog

T = Fmt(16, 12)


def test_ports_follow_the_signature_and_skip_constant_ready(tmp_path):
    toper = Toper(2, T, 6)
    expected = {"cand__valid", "cand__payload", "flush", "result", "result_demoted", "done", "flushing", "evict",
                "merge_clamps"}
    assert set(component_ports(toper)) == expected
    header = write_verilog(toper, "toper", tmp_path).read_text().split("module toper(", 1)[1].split(")", 1)[0]
    assert {p.strip() for p in header.split(",")} == expected | {"clk", "rst"}


@pytest.mark.parametrize("layout, obj", [
    (dual_layout(3, Fmt(12, 8), T, 5), {"value": -2047, "slots": slots_from_python([(-32767, 31), None, (1, 0)])}),
    (mac_step_layout(2, HwFormats(), 9), {"w": -1, "wid": 511, "x": 32767, "last": 1, "mask": 0xFFFFFFFF,
                                          "slots": slots_from_python([None, (-5, 7)])}),
])
def test_pack_matches_amaranth_encoding_and_unpack_inverts_it(layout, obj):
    word = pack(layout, obj)
    assert word == layout.const(obj).as_value().value
    decoded = unpack(layout, word)
    assert {name: decoded[name] for name in obj if name != "slots"} == {n: v for n, v in obj.items() if n != "slots"}
    assert slots_to_python(decoded["slots"]) == slots_to_python(obj["slots"])


def test_pack_rejects_values_that_do_not_fit():
    with pytest.raises(ValueError):
        pack(data.StructLayout({"v": signed(8)}), {"v": 128})


@pytest.mark.iverilog
def test_waveform_file_is_written(tmp_path):
    params = {"k": 1, "t": [T.bits, T.frac], "id_bits": 6, "groups": 2, "seed": 3}
    result = run_cocotb(Toper(1, T, 6), name="toper", test_module="dpfm.sim.tb_toper", build_dir=tmp_path,
                        params=params, testcase="few_candidates_and_zeros", waves=True)
    result.check()
    assert result.waves is not None and result.waves.stat().st_size > 0


@pytest.mark.iverilog
def test_failing_cocotb_test_fails_the_run(tmp_path):
    """The testbench is told t is s12.8 while the RTL is built for s16.12: the golden expectations differ
    (saturation points), the cocotb test fails, and `check()` raises with its name."""
    params = {"k": 2, "t": [12, 8], "id_bits": 6, "groups": 2, "seed": 3}
    result = run_cocotb(Toper(2, T, 6), name="toper", test_module="dpfm.sim.tb_toper", build_dir=tmp_path,
                        params=params, testcase="merges_and_saturation")
    assert not result.passed
    with pytest.raises(AssertionError, match="merges_and_saturation"):
        result.check()


def test_missing_simulator_is_a_user_error(monkeypatch):
    monkeypatch.setenv("PATH", "")
    with pytest.raises(DpfmError, match="iverilog"):
        require_icarus()
