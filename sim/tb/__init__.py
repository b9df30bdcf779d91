"""cocotb testbench building blocks for the Verilog of Amaranth components (in the style of cocotbext-axi).

Every reusable piece a testbench needs lives here, so a `sim/tb_*.py` module holds only its DUT's tests and
testbench class:

- `bench`: the parameters `sim.runner.run_cocotb` passed (`load_params`) and `TB` (clock, reset, seeded
  random generator, cycle count);
- `streams`: drivers and monitors of Amaranth `lib.stream` ports (`StreamSource`, `StreamSink`,
  `HandshakeMonitor`);
- `events`: `EventCounter` for per-cycle event outputs, and `assert_transactions`, the comparison every
  transaction-level testbench reports its first mismatch with;
- `bus`: master and slave of the word bus (hw/bus.py);
- `uart`: a bit-banged UART at the pins, both directions;
- `mac_steps`: random MAC-step stimulus shared by the serial and the parallel MAC lane (imported from its
  module: it is stimulus, not a driver).

Every random choice comes from the testbench's seeded generator, so a failure reproduces with the same
seed.
"""

from dpfm.sim.tb.bench import TB, load_params
from dpfm.sim.tb.bus import BusMaster, BusSlave
from dpfm.sim.tb.events import EventCounter, assert_transactions
from dpfm.sim.tb.streams import HandshakeMonitor, StreamSink, StreamSource
from dpfm.sim.tb.uart import uart_drive_bits, uart_receive, uart_send

__all__ = ["TB", "load_params", "BusMaster", "BusSlave", "EventCounter", "assert_transactions", "HandshakeMonitor",
           "StreamSink", "StreamSource", "uart_drive_bits", "uart_receive", "uart_send"]
