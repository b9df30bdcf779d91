"""cocotb tests of `hw.mac_lane.MacLane` against its model `golden.mac_lane.MacLaneModel`, neuron by neuron.

Every neuron has a random dither mask (including 0 and all ones), sent with its steps; in `matches_golden` a
quarter of the neurons belong to a frozen layer (no direct candidate, docs/ARITHMETIC.md 3e).

Parameters (from `sim.runner`): `k`, `fmts` (a `HwFormats` string), `id_bits`, `neurons`, `seed`.
"""

import cocotb

from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.fixedpoint import SatCounter
from dpfm.golden.mac_lane import MacLaneModel, mac_candidates
from dpfm.hw.streams import dual_layout, mac_step_layout, slots_to_python
from dpfm.sim.tb import TB, EventCounter, StreamSink, StreamSource, assert_transactions, load_params
from dpfm.sim.tb.mac_steps import KINDS, NeuronGen, step_payloads


async def run(dut, idle: float, backpressure: float, kinds, frozen_rate: float = 0.0):
    p = load_params()
    tb = TB(dut, p["seed"])
    k, fmts, id_bits = p["k"], HwFormats.parse(p["fmts"]), p["id_bits"]
    source = StreamSource(dut, "i", mac_step_layout(k, fmts, id_bits), tb.rng, idle=idle)
    sink = StreamSink(dut, "o", dual_layout(k, fmts.x, fmts.t, id_bits), tb.rng, backpressure=backpressure)
    sat, evict = EventCounter(dut, "sat"), EventCounter(dut, "evict")

    gen = NeuronGen(tb.rng, k, fmts, id_bits)
    neurons = [gen.neuron(kinds[i % len(kinds)]) for i in range(p["neurons"])]
    masks = [gen.mask() for _ in neurons]
    frozen = [tb.rng.random() < frozen_rate for _ in neurons]
    golden_sat = SatCounter()
    model = MacLaneModel(k, fmts, golden_sat)
    expected = [model.neuron(steps, mask, off) for steps, mask, off in zip(neurons, masks, frozen)]
    await tb.reset()
    for steps, mask, off in zip(neurons, masks, frozen):
        for payload in step_payloads(steps, mask, off):
            source.send(payload)
    max_cycles = 20 * sum(len(s) for s in neurons) * (k + 2) + 100
    await sink.wait_for(len(neurons), max_cycles)
    await tb.cycles(k + 4)

    got = [(item["value"], slots_to_python(item["slots"])) for item in sink.items]
    assert_transactions(got, expected, f"neuron (K={k}, {fmts})",
                        describe=lambda i: f"mask {masks[i]:#010x}, frozen {frozen[i]}, steps {neurons[i]}")
    assert evict.total == model.evictions, f"evictions: got {evict.total}, expected {model.evictions}"
    assert sat.total == golden_sat.count, f"saturation events: got {sat.total}, expected {golden_sat.count}"
    assert golden_sat.count > 0 or "saturating" not in kinds, "stimulus never saturates: the check is vacuous"
    return tb, neurons, model, sink


@cocotb.test()
async def matches_golden(dut):
    """Every kind of neuron (random, saturating, zeros, duplicate ids, sparse tangents), some of them frozen,
    with random input idles and output backpressure."""
    _, _, model, _ = await run(dut, idle=0.3, backpressure=0.4, kinds=KINDS, frozen_rate=0.25)
    assert model.evictions > 0, "stimulus never evicts: the eviction check is vacuous"


@cocotb.test()
async def throughput(dut):
    """Without idles or backpressure a neuron costs exactly `max(sum_i (1 + v_i), K)` cycles
    (hw/mac_lane.py), `v_i` the valid input slots of step i: measured between consecutive results."""
    tb, neurons, model, sink = await run(dut, idle=0.0, backpressure=0.0, kinds=("random", "zeros", "sparse"))
    k = load_params()["k"]
    issued = [[1 + sum(s is not None for s in slots) for _, _, _, slots in steps] for steps in neurons]
    expected = [max(sum(ops), k) for ops in issued[1:]]
    measured = [b - a for a, b in zip(sink.arrivals, sink.arrivals[1:])]
    for i, (got, exp) in enumerate(zip(measured, expected)):
        assert got == exp, (f"neuron {i + 1} took {got} cycles, expected {exp}; operations per step "
                            f"{issued[i + 1]}")
    steps = sum(len(s) for s in neurons[1:])
    candidates = sum(len(mac_candidates(w, wid, x, slots, model.fmts)) for neuron in neurons[1:]
                     for w, wid, x, slots in neuron)
    tb.dut._log.info("MAC lane K=%d: %d steps (%d nonzero candidates) in %d cycles: %.2f cycles/step",
                     k, steps, candidates, sum(measured), sum(measured) / steps)
