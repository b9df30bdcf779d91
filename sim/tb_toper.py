"""cocotb tests of `hw.toper.Toper` against its model `golden.toper.ToperModel`, group by group.

A *group* is the candidate sequence of one neuron: its candidates are presented (with random idle cycles),
then `flush`, riding with the last candidate or alone in a later cycle (at random); the next group may
follow at once. The read-out of every group must equal a fresh golden toper fed the same candidates, and
the evictions and merge saturations must add up to the golden totals. Candidates are `(value, id, demoted)`:
a random half of the groups demote a random subset of their ids (the same flag for every candidate of an
id, as the lanes' hash gives), and the read-out's `result_demoted` flags must equal the model's. A monitor checks in every cycle that
`done` and `flushing` follow the flush token exactly (K-cycle walk). Parameters (from `sim.runner`): `k`,
`t` (`[bits, frac]`), `id_bits`, `groups` (random groups per test), `seed`.
"""

import cocotb
from cocotb.triggers import RisingEdge

from dpfm.golden.contract.formats import Fmt
from dpfm.golden.fixedpoint import SatCounter
from dpfm.golden.toper import ToperModel
from dpfm.hw.streams import entry_layout, pack, slots_layout, slots_to_python, unpack
from dpfm.sim.tb import TB, EventCounter, load_params

#: The model's flag for a demoted entry and for one that is not.
DEMOTED, KEPT = 1, 0


class ToperTB(TB):
    def __init__(self, dut):
        p = load_params()
        super().__init__(dut, p["seed"])
        self.k, self.id_bits = p["k"], p["id_bits"]
        self.t_fmt = Fmt(*p["t"])
        self.n_groups = p["groups"]
        self.entry = entry_layout(self.t_fmt, self.id_bits)
        self.slots_layout = slots_layout(self.k, self.t_fmt, self.id_bits)
        dut.cand__valid.value = 0
        dut.cand__payload.value = 0
        dut.flush.value = 0
        self.evictions = EventCounter(dut, "evict")
        self.merge_sats = EventCounter(dut, "merge_clamps", flags=True)
        self.results = []
        self.since_flush = self.k   # cycles since the last flush was presented (the driver's own count)

    # --- stimulus -------------------------------------------------------------------------------------

    def value(self, magnitudes=None) -> int:
        """A random t-format value, weighted towards the interesting ones (extremes, small, zero)."""
        t, r = self.t_fmt, self.rng.random()
        if magnitudes is not None:
            mag = self.rng.choice(magnitudes)
        elif r < 0.1:
            mag = t.max_raw
        elif r < 0.15:
            mag = 0
        elif r < 0.4:
            mag = self.rng.randint(1, 8)
        else:
            mag = self.rng.randint(1, t.max_raw)
        return mag if self.rng.random() < 0.5 else -mag

    def demote(self, group, share: float | None = None) -> list[tuple[int, int, int]]:
        """`group`'s `(value, id)` candidates with a dither flag per id: each id is demoted with probability
        `share` (random per call when None: 0 in half the calls, else up to all)."""
        if share is None:
            share = 0.0 if self.rng.random() < 0.5 else self.rng.random()
        flags = {wid: int(self.rng.random() < share) for _, wid in group}
        return [(v, wid, flags[wid]) for v, wid in group]

    def group(self, size: int, id_range: int, magnitudes=None) -> list[tuple[int, int, int]]:
        return self.demote([(self.value(magnitudes), self.rng.randrange(min(id_range, 1 << self.id_bits)))
                            for _ in range(size)])

    # --- driving and monitoring -----------------------------------------------------------------------

    async def _cycle(self, cand=None, flush: bool = False):
        """Present `cand` ((value, id, demoted) or None) and `flush` for one cycle."""
        if cand is not None:
            self.dut.cand__payload.value = pack(self.entry, {"value": cand[0], "id": cand[1], "demoted": cand[2]})
        self.dut.cand__valid.value = int(cand is not None)
        self.dut.flush.value = int(flush)
        await RisingEdge(self.dut.clk)
        self.since_flush = 0 if flush else self.since_flush + 1

    async def run_groups(self, groups, idle: float) -> list:
        """Drive the groups back to back and return their read-outs (as recorded by `monitor`)."""
        self.results = []
        monitor = cocotb.start_soon(self.monitor())
        for cands in groups:
            for n, cand in enumerate(cands):
                while self.rng.random() < idle:
                    await self._cycle()
                ride = n == len(cands) - 1 and self.since_flush + 1 >= self.k and self.rng.random() < 0.5
                await self._cycle(cand, flush=ride)
            if not (cands and self.since_flush == 0):
                while self.since_flush + 1 < self.k:   # `flushing` is high: the previous token still walks
                    await self._cycle()
                await self._cycle(flush=True)
        for _ in range(self.k + 3):   # let the last token finish and its read-out be recorded
            await self._cycle()
        monitor.cancel()
        return list(self.results)

    async def monitor(self):
        """Record `result` in the cycle after each `done`, and check `done`/`flushing` against the flushes
        seen K - 1 cycles and 1 .. K - 1 cycles earlier."""
        history = [0] * self.k        # flush in the last K cycles, most recent last
        complete = False
        while True:
            await RisingEdge(self.dut.clk)
            if complete:
                slots = slots_to_python(unpack(self.slots_layout, int(self.dut.result.value)))
                flags = int(self.dut.result_demoted.value)
                self.results.append([None if s is None else (*s, DEMOTED if flags >> j & 1 else KEPT)
                                     for j, s in enumerate(slots)])
            history = history[1:] + [int(self.dut.flush.value)]
            done, flushing = int(self.dut.done.value), int(self.dut.flushing.value)
            assert done == history[0], f"done={done}, but a flush {self.k - 1} cycles ago was {history[0]}"
            assert flushing == int(any(history[:-1])), f"flushing={flushing}, flush history {history}"
            complete = bool(done)

    def expected(self, groups) -> tuple:
        """Per group the golden read-out (entries with their flag); and the evictions and merge saturations
        over all groups."""
        slots, evictions, sat = [], 0, SatCounter()
        for cands in groups:
            model = ToperModel(self.k, self.t_fmt, sat)
            for v, wid, demoted in cands:
                model.insert(v, wid, DEMOTED if demoted else KEPT)
            slots.append(model.entries())
            evictions += model.evictions
        return slots, evictions, sat.count

    async def check(self, groups, idle: float = 0.3, what: str = "group"):
        ev0, sat0 = self.evictions.total, self.merge_sats.total
        results = await self.run_groups(groups, idle)
        slots, evictions, sats = self.expected(groups)
        for i, (got, exp) in enumerate(zip(results, slots)):
            assert got == exp, (f"{what} {i} (K={self.k}, t={self.t_fmt}): got {got}, expected {exp}; "
                                f"candidates {groups[i]}")
        assert len(results) == len(groups), f"{len(results)} read-outs for {len(groups)} groups"
        got_ev, got_sat = self.evictions.total - ev0, self.merge_sats.total - sat0
        assert got_ev == evictions, f"evictions {got_ev}, expected {evictions}"
        assert got_sat == sats, f"merge saturations {got_sat}, expected {sats}"
        return results


async def _start(dut) -> ToperTB:
    tb = ToperTB(dut)
    await tb.reset()
    return tb


@cocotb.test()
async def random_groups(dut):
    """Random groups of 0 .. 3K candidates with mixed id ranges, values and idles."""
    tb = await _start(dut)
    groups = [tb.group(tb.rng.randint(0, 3 * tb.k), tb.rng.choice([4, 2 * tb.k, 1 << tb.id_bits]))
              for _ in range(tb.n_groups)]
    await tb.check(groups, idle=0.3)


@cocotb.test()
async def ties(dut):
    """Few distinct magnitudes, distinct ids: equal |v| with different ids and with opposite signs."""
    tb = await _start(dut)
    groups = []
    for _ in range(max(4, tb.n_groups // 4)):
        size = tb.rng.randint(2, 2 * tb.k + 2)
        ids = tb.rng.sample(range(1 << tb.id_bits), size)
        groups.append(tb.demote([(tb.value(magnitudes=[3, 5]), wid) for wid in ids]))
    # the named cases: +v then -v (opposite sign, lower id second) and the reverse order
    groups += [tb.demote(g, 0) for g in ([(5, 9), (-5, 3)], [(-5, 3), (5, 9)], [(7, 4), (7, 2), (-7, 6), (-7, 1)])]
    await tb.check(groups, idle=0.2, what="tie group")


@cocotb.test()
async def merges_and_saturation(dut):
    """Duplicate ids merging, including sums that saturate at both ends and sums that cancel to 0."""
    tb = await _start(dut)
    mx = tb.t_fmt.max_raw
    groups = [tb.demote(g) for g in ([(mx, 5), (mx, 5)], [(-mx, 5), (-1, 5)], [(mx - 1, 2), (3, 2), (-mx, 2)],
                                     [(9, 1), (-9, 1)], [(4, 3), (mx, 7), (mx, 7), (-4, 3), (1, 3)])]
    groups += [tb.group(tb.rng.randint(1, 3 * tb.k + 3), 3) for _ in range(max(4, tb.n_groups // 4))]
    await tb.check(groups, idle=0.2, what="merge group")
    assert tb.expected(groups)[2] > 0


@cocotb.test()
async def few_candidates_and_zeros(dut):
    """K larger than the number of candidates, empty groups, and zero-valued candidates (ignored)."""
    tb = await _start(dut)
    groups = [tb.demote(g) for g in ([], [(0, 1)], [(0, 1), (3, 1), (0, 1)], [(2, 4)], [(0, 3)] * (tb.k + 2))]
    groups += [tb.group(tb.rng.randint(0, tb.k), 1 << tb.id_bits) for _ in range(max(4, tb.n_groups // 4))]
    await tb.check(groups, idle=0.3, what="small group")


@cocotb.test()
async def evictions(dut):
    """Many more distinct ids than cells: every group evicts, counted exactly."""
    tb = await _start(dut)
    groups = [tb.demote([(tb.value(), wid) for wid in tb.rng.sample(range(1 << tb.id_bits), 3 * tb.k + 2)])
              for _ in range(max(3, tb.n_groups // 6))]
    await tb.check(groups, idle=0.1, what="evicting group")
    assert tb.expected(groups)[1] > 0


@cocotb.test()
async def demotion(dut):
    """Dither flags (docs/ARITHMETIC.md 3d): a quarter of the ids demoted, with few magnitudes so demoted and
    kept entries of equal and opposite values meet (the `e = -c` override applies only to equal flags),
    large values demoted below small ones, and merges of demoted ids."""
    tb = await _start(dut)
    groups = []
    for _ in range(max(6, tb.n_groups // 2)):
        ids = tb.rng.sample(range(1 << tb.id_bits), tb.rng.randint(2, 2 * tb.k + 2))
        groups.append(tb.demote([(tb.value(magnitudes=[3, 5, tb.t_fmt.max_raw]), wid) for wid in ids], 0.25))
    groups += [[(5, 9, 1), (-5, 3, 0)], [(-5, 3, 1), (5, 9, 0)], [(5, 3, 1), (-5, 9, 0)], [(-5, 9, 1), (5, 3, 0)],
               [(1, 8, 0), (tb.t_fmt.max_raw, 2, 1), (-2, 6, 0), (4, 2, 1)]]
    groups += [tb.group(tb.rng.randint(1, 3 * tb.k), 3) for _ in range(4)]
    await tb.check(groups, idle=0.2, what="demotion group")


@cocotb.test()
async def bubble_independence(dut):
    """The same groups back to back (no idle cycles) and with many idle cycles give identical results."""
    tb = await _start(dut)
    groups = [tb.group(tb.rng.randint(1, 3 * tb.k), 2 * tb.k) for _ in range(max(4, tb.n_groups // 3))]
    dense = await tb.check(groups, idle=0.0, what="dense group")
    sparse = await tb.check(groups, idle=0.7, what="sparse group")
    assert dense == sparse
