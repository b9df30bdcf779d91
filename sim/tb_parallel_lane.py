"""cocotb tests of `hw.parallel_lane.ParallelMacLane` against its model
`golden.parallel_lane.ParallelMacLaneModel`, neuron by neuron, and of its exact cycle cost.

Parameters (from `sim.runner`): `k`, `sources`, `fmts` (a `HwFormats` string), `id_bits`, `neurons`, `seed`.
"""

import cocotb

from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.fixedpoint import SatCounter
from dpfm.golden.parallel_lane import ParallelMacLaneModel
from dpfm.hw.streams import dual_layout, mac_step_layout, slots_to_python
from dpfm.sim.tb import (TB, EventCounter, HandshakeMonitor, StreamSink, StreamSource, assert_transactions,
                         load_params)
from dpfm.sim.tb.mac_steps import KINDS, NeuronGen, step_payloads


def neuron_rounds(steps, sources: int) -> int:
    """The lane's cycles for a neuron's steps: a step takes rounds up to its last valid candidate's,
    `1 + c_last // S` (hw/parallel_lane.py)."""
    return sum(1 + max([j + 1 for j, slot in enumerate(slots) if slot is not None], default=0) // sources
               for _, _, _, slots in steps)


def filled(steps, rng, id_bits: int):
    """`steps` with every empty slot of the non-bias steps filled (small random entries), so each of those
    steps takes all `ceil((K + 1) / S)` rounds."""
    return [(w, wid, x, slots if i == len(steps) - 1 else
             [s if s is not None else (rng.randint(-4, 4), rng.randrange(1 << id_bits)) for s in slots])
            for i, (w, wid, x, slots) in enumerate(steps)]


class Bench:
    """The DUT with its drivers, event counters and its model."""

    def __init__(self, dut, idle: float, backpressure: float):
        p = load_params()
        self.tb = TB(dut, p["seed"])
        self.k, self.fmts, self.id_bits = p["k"], HwFormats.parse(p["fmts"]), p["id_bits"]
        self.sources = p["sources"]
        self.n_neurons = p["neurons"]
        step_layout = mac_step_layout(self.k, self.fmts, self.id_bits)
        self.source = StreamSource(dut, "i", step_layout, self.tb.rng, idle=idle)
        self.sink = StreamSink(dut, "o", dual_layout(self.k, self.fmts.x, self.fmts.t, self.id_bits), self.tb.rng,
                               backpressure=backpressure)
        last = step_layout["last"].offset
        #: cycles in which the input accepted a neuron's last step, and in which the output handed over a result
        self.last_accepted = HandshakeMonitor(self.tb, "i", when=lambda word: (word >> last) & 1).cycles
        self.delivered = HandshakeMonitor(self.tb, "o").cycles
        self.sat, self.evict = EventCounter(dut, "sat"), EventCounter(dut, "evict")
        self.gen = NeuronGen(self.tb.rng, self.k, self.fmts, self.id_bits)
        self.golden_sat = SatCounter()
        self.model = ParallelMacLaneModel(self.k, self.fmts, self.golden_sat, self.sources)
        self.neurons, self.masks, self.frozen, self.expected = [], [], [], []

    async def run(self, neurons, frozen_rate: float = 0.0):
        """Send `neurons` (after the ones sent before), each with a random dither mask and, at
        `frozen_rate`, in a frozen layer (docs/ARITHMETIC.md 3e), wait for their results."""
        masks = [self.gen.mask() for _ in neurons]
        frozen = [self.tb.rng.random() < frozen_rate for _ in neurons]
        self.neurons += neurons
        self.masks += masks
        self.frozen += frozen
        self.expected += [self.model.neuron(steps, mask, off) for steps, mask, off in zip(neurons, masks, frozen)]
        for steps, mask, off in zip(neurons, masks, frozen):
            for payload in step_payloads(steps, mask, off):
                self.source.send(payload)
        max_cycles = 20 * sum(len(s) + 2 * self.k for s in neurons) * (self.k + 2) + 100
        await self.sink.wait_for(len(self.neurons), max_cycles)

    async def check(self):
        """Every result, and the event totals, equal the model's."""
        await self.tb.cycles(self.k + 4)
        got = [(item["value"], slots_to_python(item["slots"])) for item in self.sink.items]
        assert_transactions(got, self.expected, f"neuron (K={self.k}, {self.fmts})",
                            describe=lambda i: f"mask {self.masks[i]:#010x}, frozen {self.frozen[i]}, "
                                                f"steps {self.neurons[i]}")
        evictions = self.model.evictions
        assert self.evict.total == evictions, f"evictions: got {self.evict.total}, expected {evictions}"
        assert self.sat.total == self.golden_sat.count, \
            f"saturation events: got {self.sat.total}, expected {self.golden_sat.count}"


@cocotb.test()
async def matches_golden(dut):
    """Every kind of neuron (random, saturating, zeros, duplicate ids, sparse tangents) with random input
    idles and output backpressure."""
    bench = Bench(dut, idle=0.3, backpressure=0.4)
    await bench.tb.reset()
    await bench.run([bench.gen.neuron(KINDS[i % len(KINDS)]) for i in range(bench.n_neurons)], frozen_rate=0.25)
    await bench.check()
    assert bench.golden_sat.count > 0, "stimulus never saturates: the check is vacuous"
    assert bench.model.toper.tree_evictions > 0, "the merge tree never evicts: the eviction check is vacuous"


@cocotb.test()
async def throughput(dut):
    """Without idles or backpressure, neurons of R rounds come out exactly every `max(R, 2K)` cycles, and a
    neuron sent into an empty lane comes out `3 + K + 3K * depth` cycles after its last step was accepted
    (hw/parallel_lane.py). Batches of neurons of equal rounds, each batch into an empty lane: with S = K + 1
    a step is one round whatever its slots; with fewer sources every non-bias step is filled to take all
    its rounds."""
    bench = Bench(dut, idle=0.0, backpressure=0.0)
    k, n_src = bench.k, bench.sources
    depth = (n_src - 1).bit_length()     # ceil(log2(S))
    latency = 3 + k + 3 * k * depth
    per_step = -(-(k + 1) // n_src)
    await bench.tb.reset()
    # inputs n_in so that R = n_in * per_step + 1 runs from 2 to past 2K
    lengths = sorted({1, max(1, (2 * k - 2) // per_step), max(1, (2 * k - 1) // per_step), 2 * k // per_step + 1,
                      2 * k // per_step + 2})
    kinds = ("random", "zeros", "sparse")
    for n_in in lengths:
        first = len(bench.neurons)
        batch = [bench.gen.neuron(kinds[i % len(kinds)], n_in=n_in) for i in range(5)]
        if n_src <= k:
            batch = [filled(steps, bench.tb.rng, bench.id_bits) for steps in batch]
        rounds = neuron_rounds(batch[0], n_src)
        assert all(neuron_rounds(steps, n_src) == rounds for steps in batch)
        await bench.run(batch)
        delivered = bench.delivered[first:]
        measured = [b - a for a, b in zip(delivered, delivered[1:])]
        assert measured == [max(rounds, 2 * k)] * (len(batch) - 1), \
            f"neurons of {rounds} rounds came out {measured} cycles apart, expected every {max(rounds, 2 * k)}"
        got_latency = delivered[0] - bench.last_accepted[first]
        assert got_latency == latency, f"first neuron of {rounds} rounds: latency {got_latency}, expected {latency}"
        bench.tb.dut._log.info("parallel lane K=%d S=%d: neurons of %d rounds every %d cycles, latency %d",
                               k, n_src, rounds, measured[0], got_latency)
    await bench.check()
