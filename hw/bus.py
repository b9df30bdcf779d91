"""The word bus between the link's command processor and the training core (see golden/contract/regmap.py).

One transaction at a time: the initiator holds `addr`/`wdata`/`we` with `valid` until `ready`; for reads
`rdata` is valid in the cycle `ready` is high. Writes to the weight and sample regions while the core is
busy are ignored (`STATUS_BUSY` tells the host to wait); reads always complete.
"""

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dpfm.golden.contract import regmap


class CoreBusSignature(wiring.Signature):
    """From the initiator's side (the command processor); the core uses `.flip()`."""

    def __init__(self):
        super().__init__({
            "valid": Out(1),
            "we": Out(1),
            "addr": Out(regmap.ADDR_BITS),
            "wdata": Out(regmap.DATA_BITS),
            "ready": In(1),
            "rdata": In(regmap.DATA_BITS),
        })
