"""The UART PHY at its pins (sim/tb_uart.py on Icarus): receive at and off the nominal rate, framing
errors and glitches, exact transmit bit timing; and the divisor rules of `bit_divisor`."""

import pytest
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from dpfm.golden.contract.errors import DpfmError
from dpfm.hw.uart import UartRx, UartTx, bit_divisor
from dpfm.sim.runner import run_cocotb


class UartPair(wiring.Component):
    """Receiver and transmitter side by side (not looped back), so each is checked on its own pins."""

    rx: In(1, init=1)
    o: Out(stream.Signature(8))
    frame_error: Out(1)
    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor):
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.rx = rx = UartRx(self.divisor)
        m.submodules.tx = tx = UartTx(self.divisor)
        m.d.comb += [rx.rx.eq(self.rx), self.frame_error.eq(rx.frame_error), self.tx.eq(tx.tx)]
        wiring.connect(m, rx.o, wiring.flipped(self.o))
        wiring.connect(m, wiring.flipped(self.i), tx.i)
        return m


def run_uart(tmp_path, divisor, testcase, baud_error=0.0):
    params = {"seed": divisor, "divisor": divisor, "baud_error": baud_error}
    return run_cocotb(UartPair(divisor), name="uart", test_module="dpfm.sim.tb_uart", build_dir=tmp_path,
                      params=params, testcase=testcase, seed=divisor)


@pytest.mark.iverilog
@pytest.mark.parametrize("divisor, baud_error", [(4, 0.0), (16, 0.03), (16, -0.03)])
def test_receive(tmp_path, divisor, baud_error):
    run_uart(tmp_path, divisor, "receive", baud_error).check()


@pytest.mark.iverilog
@pytest.mark.parametrize("divisor", [4, 16])
def test_stop_bit_glitch_and_recovery(tmp_path, divisor):
    run_uart(tmp_path, divisor, "stop_bit_glitch_and_recovery").check()


@pytest.mark.iverilog
@pytest.mark.parametrize("divisor", [4, 7])
def test_transmit_bit_timing(tmp_path, divisor):
    run_uart(tmp_path, divisor, "transmit").check()


def test_divisor_rules():
    assert bit_divisor(100_000_000, 3_000_000) == 33
    assert bit_divisor(12_000_000, 3_000_000) == 4
    with pytest.raises(DpfmError, match="cycles per bit"):
        bit_divisor(10_000_000, 3_000_000)
    with pytest.raises(DpfmError, match="off by"):
        bit_divisor(25_000_000, 3_000_000)      # 8.33 cycles: divisor 8 is 4% fast
