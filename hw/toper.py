"""The toper: a systolic top-K sorter of tangent entries (docs/ARITHMETIC.md section 3.3).

K cells `c_0 .. c_{K-1}` each hold one entry or nothing. A candidate enters `c_0` in the cycle it is
presented and moves one cell per cycle through pipeline registers between the cells. At cell `c_j`:

- `c_j` empty: `c_j <- e`, the candidate is consumed;
- `c_j.id == e.id`: merge, `c_j.v <- sat_t(c_j.v + e.v)`, the candidate is consumed (the cell keeps its
  position even if it now ranks differently); a clamp is a merge saturation event;
- `e` ranks above `c_j` (section 3d: `e` is not demoted and `c_j` is; or both flags are equal and
  `|e.v| > |c_j.v|`, or equal magnitudes and `e.id < c_j.id`): swap, the displaced entry continues to
  `c_{j+1}`;
- otherwise `e` continues to `c_{j+1}`.

Every entry carries its dither flag `demoted` through the cells (a merge keeps the cell's: within a neuron
an id always has the same flag). An entry leaving `c_{K-1}` is dropped and reported as an eviction event.
A candidate whose value is 0 is ignored (contract 3.2: it is not inserted).

Every cell sees the entries arriving at it in the order the candidates were accepted, and its update depends
only on that sequence, so the final state equals inserting the candidates one at a time: idle cycles between
candidates never change it. A candidate can be accepted every cycle (there is no `ready`).

Neurons follow each other without a gap: `flush` sends a token down the pipeline behind the neuron's last
candidate. The token reaches cell j after every entry of that neuron has finished with cell j and before any
entry of the next neuron arrives there, so in that cycle the cell's final value is copied to `result[j]` and
the cell is emptied for the next neuron (the contract's "cleared at the start of a neuron"). The next
neuron's candidates can follow the token in the very next cycle.

Magnitudes are compared without computing `|v|` (see `Toper.ranks_above`). The signed range is symmetric, so
`|v|` cannot overflow and two values add up to 0 only when one is the other's negation.

The model is `golden.toper.ToperModel`.
"""

from amaranth.hdl import Cat, Module, Mux, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from dpfm.golden.contract.errors import DpfmError
from dpfm.hw.streams import entry_layout, ranked_slot_layout, saturate_fast_expr, slots_layout


def count_ones(flags):
    """The number of set 1-bit `flags` as a balanced adder tree (depth log2 of their number), where Python's
    `sum` builds a chain of adders, one level per flag: on iCE40 that chain made the merge saturation count
    the longest path of the core."""
    if len(flags) == 1:
        return flags[0]
    half = len(flags) // 2
    return count_ones(flags[:half]) + count_ones(flags[half:])


class Toper(wiring.Component):
    """K-cell systolic top-K sorter with a pipelined read-out.

    Parameters: `k` cells, `t_fmt` the tangent format (signed), `id_bits` the weight-id width.

    Ports:
    - `cand` (in, stream of `entry_layout`, always ready): at most one candidate per cycle.
    - `flush` (in): the neuron ends with this cycle's candidate (if any). Its token passes cell j in cycle
      n + j (n = this cycle): `result[j]` takes the cell's final value and the cell becomes empty. Present
      `flush` only while `flushing` is low, or `result` mixes two neurons.
    - `result` (out, `slots_layout`): the read-out of the last flushed neuron, in cell order, empty cells
      with `valid = 0`; complete after the clock edge of the cycle in which `done` is high, and unchanged
      until the edge ending the next `flush` cycle.
    - `result_demoted` (out, K bits): bit j is slot j's dither flag, with the same timing as `result` (the
      parallel lane's merge tree ranks by it; a lane's output drops it).
    - `done` (out): the token passes the last cell in this cycle (for K = 1 this is `flush` itself).
    - `flushing` (out): a token presented in an earlier cycle has not yet passed the last cell.
    - `evict` (out): an entry left the last cell in this cycle (dropped).
    - `merge_clamps` (out, K bits): bit j: cell j's merge in this cycle was clamped to the t range (a merge
      saturation event). Flags rather than their count: the lanes register them and count after the
      register, so no adder tree is in series with the merge adder and its clamp test (on iCE40 that series
      was the core's longest path).
    """

    def __init__(self, k: int, t_fmt, id_bits: int):
        if k < 1:
            raise DpfmError(f"toper size K={k} is too small", "use K >= 1")
        self.k = k
        self.t_fmt = t_fmt
        self.id_bits = id_bits
        super().__init__({
            "cand": In(stream.Signature(entry_layout(t_fmt, id_bits), always_ready=True)),
            "flush": In(1),
            "result": Out(slots_layout(k, t_fmt, id_bits)),
            "result_demoted": Out(k),
            "done": Out(1),
            "flushing": Out(1),
            "evict": Out(1),
            "merge_clamps": Out(k),
        })

    def ranks_above(self, e_value, e_id, e_demoted, c_value, c_id, c_demoted, opposite):
        """The order key: entry e ranks above entry c: not demoted above demoted (section 3d), then `|e| > |c|`,
        then the lower id. The flag is one more bit above the magnitude in the compared keys.

        Without the magnitudes (`|v|` is an adder, which would sit in series with the comparison's carry
        chain, the cells' longest path): with `m = v ^ sign` in the bits below the sign, `|v| = m + sign`, so
        the keys `(~demoted, m, sign, ~id)` compared as one unsigned number order entries exactly like
        `(~demoted, |v|, ~id)`, except when `e = -c` (`opposite`, see `negates`) with equal flags: then the
        magnitudes are equal, the keys' `m` differ by one, and the ids decide."""
        def key(value, ident, demoted):
            sign = value[-1]
            return Cat(~ident, sign, value[:-1] ^ sign.replicate(len(value) - 1), ~demoted)
        return Mux(opposite & (e_demoted == c_demoted), e_id < c_id,
                   key(e_value, e_id, e_demoted) > key(c_value, c_id, c_demoted))

    @staticmethod
    def negates(a, b):
        """`a + b == 0` (mod 2**len(a)) without the sum's carry chain: bit 0 of the sum is 0 when `a[0] == b[0]`,
        and then bit i is 0 when `a[i] ^ b[i]` equals the carry into it, which is `a[i-1] | b[i-1]`. So one
        4-input function per bit and an AND: it is ready before the key comparison it overrides. (For two
        values of the symmetric range the sum cannot wrap, so this is `a == -b`.)"""
        return Cat([~(a[0] ^ b[0])] + [(a[i] ^ b[i]) == (a[i - 1] | b[i - 1]) for i in range(1, len(a))]).all()

    def elaborate(self, platform):
        m = Module()
        layout = ranked_slot_layout(self.t_fmt, self.id_bits)

        cells = [Signal(layout, name=f"cell{j}") for j in range(self.k)]
        # fly[j] / token[j]: the entry and the flush token travelling into cell j (j >= 1); cell 0 is fed
        # by `cand` and `flush` directly.
        fly = [None] + [Signal(layout, name=f"fly{j}") for j in range(1, self.k)]
        token = [self.flush] + [Signal(name=f"token{j}") for j in range(1, self.k)]

        incoming = Signal(layout, name="cand_in")
        m.d.comb += [
            incoming.valid.eq(self.cand.valid & (self.cand.p.value != 0)),
            incoming.value.eq(self.cand.p.value),
            incoming.id.eq(self.cand.p.id),
            incoming.demoted.eq(self.cand.p.demoted),
        ]

        sat_flags = []
        for j in range(self.k):
            inc = incoming if j == 0 else fly[j]
            cur = cells[j]
            nxt = Signal(layout, name=f"next{j}")   # the cell after this cycle's arrival
            out = Signal(layout, name=f"out{j}")    # what leaves cell j towards cell j+1 in this cycle

            merged, merge_clamped = saturate_fast_expr(cur.value + inc.value, self.t_fmt)
            sat = Signal(name=f"merge_sat{j}")
            sat_flags.append(sat)

            # The cell's decision as three flags, then one plain mux per field.
            same = cur.valid & (cur.id == inc.id)
            take = Signal(name=f"take{j}")      # the cell takes the arriving entry (empty cell or swap)
            merge = Signal(name=f"merge{j}")    # the arriving entry merges into the cell
            swap = Signal(name=f"swap{j}")      # the cell's old entry leaves towards c_{j+1}
            above = self.ranks_above(inc.value, inc.id, inc.demoted, cur.value, cur.id, cur.demoted,
                                     self.negates(inc.value, cur.value))
            m.d.comb += [
                swap.eq(inc.valid & cur.valid & ~same & above),
                take.eq(inc.valid & ~cur.valid | swap),
                merge.eq(inc.valid & same),
                sat.eq(merge & merge_clamped),
                nxt.valid.eq(cur.valid | inc.valid),
                nxt.id.eq(Mux(take, inc.id, cur.id)),
                nxt.demoted.eq(Mux(take, inc.demoted, cur.demoted)),    # a merge keeps the cell's flag
                nxt.value.eq(Mux(take, inc.value, Mux(merge, merged, cur.value))),   # take, merge exclusive
                out.valid.eq(inc.valid & cur.valid & ~same),
                out.id.eq(Mux(swap, cur.id, inc.id)),
                out.demoted.eq(Mux(swap, cur.demoted, inc.demoted)),
                out.value.eq(Mux(swap, cur.value, inc.value)),
            ]

            with m.If(token[j]):
                m.d.sync += [self.result[j].valid.eq(nxt.valid), self.result[j].value.eq(nxt.value),
                             self.result[j].id.eq(nxt.id), self.result_demoted[j].eq(nxt.demoted),
                             cells[j].valid.eq(0)]
            with m.Else():
                m.d.sync += cells[j].eq(nxt)

            if j + 1 < self.k:
                m.d.sync += [fly[j + 1].eq(out), token[j + 1].eq(token[j])]
            else:
                m.d.comb += [self.evict.eq(out.valid), self.done.eq(token[j])]

        m.d.comb += [
            self.merge_clamps.eq(Cat(sat_flags)),
            self.flushing.eq(Cat(token[1:]).any() if self.k > 1 else 0),
        ]
        return m
