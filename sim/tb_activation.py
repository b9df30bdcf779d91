"""cocotb test of `hw.activation.Activation` against its model `golden.activation.activation_slots`,
transaction by transaction, with random input idles and output backpressure.

Parameters (from `sim.runner`): `kind`, `k`, `fmts` (a `HwFormats` string), `id_bits`, `n` (transactions),
`seed`, and `bypass`: the DUT is an Activation with the identity bypass whose input payload is
`{"dual": ..., "identity": flag}` (tests/sim/test_activation.py's harness); then a random third of the
transactions are identity neurons, some with valid slots of value 0 (which the identity must keep).
"""

import cocotb
from amaranth.lib.data import StructLayout

from dpfm.golden.activation import activation_slots
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.fixedpoint import SatCounter
from dpfm.hw.streams import dual_layout, slots_from_python, slots_to_python
from dpfm.sim.tb import TB, EventCounter, StreamSink, StreamSource, assert_transactions, load_params


def random_dual(rng, k: int, fmts: HwFormats, id_bits: int, zeros: bool = False):
    """A `(z, slots)` stimulus: z over the whole x range, concentrated on the table's [-8, 8) span and its
    clamped ends; slots empty, extreme, or small enough to round to 0 after the multiply; with `zeros`, also
    valid slots of value 0 (an in-place merge can leave one)."""
    x, t = fmts.x, fmts.t
    r = rng.random()
    if r < 0.6:
        z = rng.randint(max(x.min_raw, -8 << x.frac), min(x.max_raw, 8 << x.frac))
    elif r < 0.8:
        z = rng.randint(x.min_raw, x.max_raw)
    else:
        z = rng.choice([x.min_raw, x.max_raw, 0, -1, 1, (8 << x.frac) - 1, -(8 << x.frac)])
        z = min(max(z, x.min_raw), x.max_raw)
    slots = []
    for _ in range(k):
        u = rng.random()
        if u < 0.25:
            slots.append(None)
            continue
        mag = t.max_raw if u < 0.35 else rng.randint(1, 3) if u < 0.55 else rng.randint(1, t.max_raw)
        if zeros and u > 0.85:
            mag = 0
        slots.append((mag if rng.random() < 0.5 else -mag, rng.randrange(1 << id_bits)))
    return z, slots


@cocotb.test()
async def matches_golden(dut):
    p = load_params()
    tb = TB(dut, p["seed"])
    k, fmts, kind, id_bits = p["k"], HwFormats.parse(p["fmts"]), p["kind"], p["id_bits"]
    bypass = p.get("bypass", False)
    layout = dual_layout(k, fmts.x, fmts.t, id_bits)
    in_layout = StructLayout({"dual": layout, "identity": 1}) if bypass else layout
    source = StreamSource(dut, "i", in_layout, tb.rng, idle=0.3)
    sink = StreamSink(dut, "o", layout, tb.rng, backpressure=0.3)
    sat = EventCounter(dut, "sat")
    await tb.reset()

    identity = [bypass and tb.rng.random() < 1 / 3 for _ in range(p["n"])]
    stimulus = [random_dual(tb.rng, k, fmts, id_bits, zeros=ident) for ident in identity]
    golden_sat = SatCounter()
    expected = [activation_slots(z, slots, "identity" if ident else kind, fmts, golden_sat)
                for (z, slots), ident in zip(stimulus, identity)]
    for (z, slots), ident in zip(stimulus, identity):
        dual = {"value": z, "slots": slots_from_python(slots)}
        source.send({"dual": dual, "identity": int(ident)} if bypass else dual)
    await sink.wait_for(len(stimulus), max_cycles=(k + 20) * len(stimulus) + 100)  # K cycles per result
    await tb.cycles(k + 4)

    got = [(item["value"], slots_to_python(item["slots"])) for item in sink.items]
    assert_transactions(got, expected, f"{kind} K={k} ({fmts})", describe=lambda i: stimulus[i])
    assert sat.total == golden_sat.count, f"saturation events: got {sat.total}, expected {golden_sat.count}"
