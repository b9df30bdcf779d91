"""The forward sequencer: samples -> layers -> neurons -> MAC steps through a MAC lane and the activations.

Lanes: `cfg.lanes` MAC lanes compute units `u0 .. u0+L-1` of a layer side by side; unit u runs on lane
`u mod L`. They share each step's input `x_i` (and its tangent), which is broadcast, and each reads its own
weight from its own copy of W (the core keeps L identical copies), so one step is issued to all lanes per
cycle; a lane that has taken the step waits for the others (fork with per-lane `taken` flags).

Issue side: steps in the order `(sample, layer, unit group, input)` with the bias last. Inputs come from the
sample buffer in layer 0 (no tangent) and from the scratch memory otherwise; the bias step feeds `x = 1.0`
with an empty tangent. Memory reads are synchronous and the read ports hold their data while a lane applies
backpressure (port enable = pipeline advance), so there is no skid buffer.

Scratch: one record `(a, K slots)` per unit, two banks; layer l writes bank `l % 2` and layer l+1 reads it.
Layer l+1 starts issuing only after every neuron of layer l has come back (a drain per layer). The next
sample's layer 0 needs no drain: it reads the sample buffer, and its results land after every scratch read
of the previous sample was issued.

Dither (docs/ARITHMETIC.md section 3d): the generator's state `dither` lives here, where the neurons are
issued. In training, the unit group in issue stage 1 takes its masks from the current state (lane j, unit
u0 + j: the state stepped j times, combinationally) and the state steps once per unit of the group when
the group's bias step leaves stage 1 (taken by all its lanes), so neurons take consecutive states in issue
order `(sample, layer, unit)`, a partial group counting only its units. Masks are part of every step's
payload, so the lanes need no mask register of their own that a stall could get out of step. Inference
issues mask 0 (plain top-K) and never steps the state.

Exact output layer (docs/ARITHMETIC.md 3f, `cfg.exact_last`): the output layer's neurons are issued as frozen
(no direct candidate), its first unit group writes each step's input into the gradient unit's input memory
(`xin_wr`), the gradient unit's request carries the neuron's slope and the id of its `W[o, 0]`, and the output
layer of the next sample starts only when the gradient unit is idle, so that memory is never overwritten in use.

Result side: neurons come back in issue order; counters follow the same order to address the scratch,
the output buffer and (when training, for the last layer) the gradient unit's request with the target's
address. Lane outputs are taken round-robin in unit order, so results (and G updates) keep the order of
the contract whatever the lanes' relative timing. Several activation kinds are served by one Activation
instance each (identity layers by the first table instance's bypass, when it can take them); the lanes'
output is routed by the layer of the neuron leaving them, and results are taken from the instance of the
layer the result side expects next, so order is kept even when instances differ in latency.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from dpfm.golden import dither
from dpfm.hw.activation import Activation
from dpfm.hw.bram import BlockRam
from dpfm.hw.config import CoreConfig
from dpfm.hw.mac_lane import MacLane
from dpfm.hw.parallel_lane import ParallelMacLane
from dpfm.hw.streams import dither_step_expr, dual_layout
from dpfm.hw.update import grad_request_layout, read_port, write_port, xin_addr_bits


def _table(m: Module, index, values, shape, name: str) -> Signal:
    """A combinational lookup `values[index]` of Python constants.

    Built as a Mux chain (a continuous assignment in Verilog) rather than a Switch: Icarus in -g2012 mode
    never runs an `always @*` block whose inputs keep their initial values, which an index that is 0 from
    time 0 does, so a Switch would read as X until the index first changes.
    """
    sig = Signal(shape, name=name)
    expr = values[0]
    for i, v in enumerate(values[1:], start=1):
        expr = Mux(index == i, v, expr)
    m.d.comb += sig.eq(expr)
    return sig


class Forward(wiring.Component):
    """Forward passes over `n_samples` buffered samples, started by a `start` pulse.

    `busy` is high from the cycle after `start` until the last neuron's result was stored (and, when
    `train`, handed to the gradient unit through `grad`). `sat` / `evict` report the previous cycle's
    saturation and eviction events of the lanes and activations. `dither` is the dither generator's state;
    `dither_set` loads it with `dither_value` (only while not busy: the core's REG_DITHER write).
    """

    def __init__(self, cfg: CoreConfig, sample_addr_bits: int, out_addr_bits: int):
        self.cfg = cfg
        self.sample_addr_bits = sample_addr_bits
        f = cfg.fmts
        self.lanes = [ParallelMacLane(cfg.k, f, cfg.id_bits, sources=cfg.sources) if cfg.parallel
                      else MacLane(cfg.k, f, cfg.id_bits) for _ in range(cfg.lanes)]
        # One activation unit per table kind. Identity layers ride on the first table unit's bypass when it
        # can take them (no second unit and no result mux), else they get an identity unit of their own.
        kinds = set(cfg.spec.activations)
        table_kinds = sorted(kinds - {"identity"})
        self.bypass = "identity" in kinds and bool(table_kinds) and Activation.can_bypass(table_kinds[0], f)
        self.kinds = table_kinds + (["identity"] if "identity" in kinds and not self.bypass else [])
        self.acts = {kind: Activation(kind, cfg.k, f, cfg.id_bits, bypass=self.bypass and n == 0,
                                      slope_out=cfg.exact_last)
                     for n, kind in enumerate(self.kinds)}
        #: the unit (index into `kinds`) computing each layer's activation
        self.layer_units = [self.kinds.index(a) if a in self.kinds else 0 for a in cfg.spec.activations]
        super().__init__({
            "start": In(1),
            "train": In(1),
            "n_samples": In(range(cfg.max_batch + 1)),
            "busy": Out(1),
            **{f"w_rd{l}": Out(read_port(cfg.id_bits, signed(f.w.bits))) for l in range(cfg.lanes)},
            "x_rd": Out(read_port(sample_addr_bits, signed(f.x.bits))),
            "out_wr": Out(write_port(out_addr_bits, signed(f.x.bits))),
            "grad": Out(stream.Signature(grad_request_layout(cfg, sample_addr_bits))),
            # bounds from the lanes' own count widths (a serial lane evicts at most 1 per cycle, a parallel
            # lane one per toper)
            "sat": Out(range(sum(1 << len(l.sat) for l in self.lanes) + len(self.kinds) * (cfg.k + 2))),
            "evict": Out(range(sum(1 << len(l.evict) for l in self.lanes))),
            "dither": Out(dither.BITS),
            "dither_set": In(1),
            "dither_value": In(dither.BITS),
            "train_mask": In(cfg.spec.n_layers),
            # an exact output layer (docs/ARITHMETIC.md 3f): its inputs for the gradient unit, which is busy
            **({"xin_wr": Out(write_port(xin_addr_bits(cfg), signed(f.x.bits))), "grad_busy": In(1)}
               if cfg.exact_last else {}),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, f, spec = self.cfg, self.cfg.fmts, self.cfg.spec
        n_layers = spec.n_layers
        n_ins = [spec.layer_shape(l)[1] for l in range(n_layers)]
        n_outs = [spec.layer_shape(l)[0] for l in range(n_layers)]
        total_units = sum(n_outs)
        width = cfg.max_width
        sw = cfg.sample_words
        n_lanes = cfg.lanes
        lanes = self.lanes
        w_rds = [getattr(self, f"w_rd{l}") for l in range(n_lanes)]
        for l, lane in enumerate(lanes):
            m.submodules[f"lane{l}"] = lane
        for kind, act in self.acts.items():
            m.submodules[f"act_{kind}"] = act

        rec = dual_layout(cfg.k, f.x, f.t, cfg.id_bits)
        # The issue side reads the bank the result side is not writing (a layer-0 read may hit the written
        # bank, but its word is unused), so the read-first logic of a `Memory` would be wasted.
        m.submodules.scratch = scratch = BlockRam(rec, 2 * width)
        scr_rd = scratch.read_port()
        scr_wr = scratch.write_port()

        # ---- issue side ------------------------------------------------------------------------------
        issuing = Signal()
        s_left = Signal(range(cfg.max_batch + 1))
        l_i = Signal(range(n_layers))
        u_i = Signal(range(width))
        i_i = Signal(range(max(n_ins) + 1))
        wid = Signal(cfg.id_bits)
        sbase_i = Signal(self.sample_addr_bits)
        issued_n = Signal(range(cfg.max_batch * total_units + 1))
        done_n = Signal(range(cfg.max_batch * total_units + 1))

        n_in_i = _table(m, l_i, n_ins, i_i.shape(), "n_in_i")
        n_out_i = _table(m, l_i, n_outs, unsigned(width.bit_length()), "n_out_i")

        id_shape = unsigned(cfg.id_bits)
        # offsets of lane l's weight in the current layer (l rows further), and the next layer's first id
        lane_off = [_table(m, l_i, [l * (n + 1) for n in n_ins], id_shape, f"lane_off{l}") for l in range(n_lanes)]
        next_base = _table(m, l_i, [spec.layer_base(l + 1) for l in range(n_layers)], id_shape, "next_base")

        v1 = Signal()        # stage 1 holds a step (read data on the ports)
        bias1 = Signal()
        l0_1 = Signal()
        frozen1 = Signal()   # the step's neuron forms no direct candidate (docs/ARITHMETIC.md 3e, 3f)
        xin1 = Signal()      # the step's input is one of the output layer's, to keep for the gradient unit
        i1 = Signal.like(i_i)
        wid1 = [Signal(id_shape, name=f"wid1_{l}") for l in range(n_lanes)]
        active1 = Signal(n_lanes)   # lanes that have a unit in this group
        taken = Signal(n_lanes)     # lanes that already accepted the stage-1 step

        active = Signal(n_lanes)
        m.d.comb += active.eq(Cat(u_i + l < n_out_i for l in range(n_lanes)))
        lane_valid = [v1 & active1[l] & ~taken[l] for l in range(n_lanes)]
        lane_done = [~active1[l] | taken[l] | lanes[l].i.ready for l in range(n_lanes)]
        all_done = Signal()
        m.d.comb += all_done.eq(Cat(lane_done).all())

        last_i = l_i == n_layers - 1
        drain_wait = (l_i != 0) & (u_i == 0) & (i_i == 0) & (issued_n != done_n)
        if cfg.exact_last:
            # The output layer writes its inputs for the gradient unit (section 3f): it starts only when the
            # previous sample's outputs have all been handed over and the gradient unit is done with them.
            drain_wait = drain_wait | (last_i & (u_i == 0) & (i_i == 0) & ((issued_n != done_n) | self.grad_busy))
        can_issue = issuing & ~drain_wait
        advance = ~v1 | all_done
        is_bias = i_i == n_in_i
        last_group = u_i + n_lanes >= n_out_i
        read_bank = Signal(range(2 * width))
        m.d.comb += read_bank.eq(((l_i + 1) & 1) * width)

        for l in range(n_lanes):
            m.d.comb += [w_rds[l].addr.eq(wid + lane_off[l]), w_rds[l].en.eq(advance)]
        m.d.comb += [
            self.x_rd.addr.eq(sbase_i + i_i), self.x_rd.en.eq(advance),
            scr_rd.addr.eq(read_bank + i_i), scr_rd.en.eq(advance),
        ]
        with m.If(advance):
            m.d.sync += [v1.eq(can_issue), taken.eq(0)]
        with m.Else():
            m.d.sync += taken.eq(taken | Cat(lane_valid[l] & lanes[l].i.ready for l in range(n_lanes)))
        with m.If(advance & can_issue):
            frozen = ~self.train_mask.bit_select(l_i, 1)
            if cfg.exact_last:
                frozen = frozen | last_i
                m.d.sync += [xin1.eq(last_i & (u_i == 0) & ~is_bias), i1.eq(i_i)]
            m.d.sync += [bias1.eq(is_bias), l0_1.eq(l_i == 0), active1.eq(active), wid.eq(wid + 1),
                         frozen1.eq(frozen)]
            m.d.sync += [wid1[l].eq(wid + lane_off[l]) for l in range(n_lanes)]
            with m.If(is_bias):
                m.d.sync += [i_i.eq(0), issued_n.eq(issued_n + sum(active[l] for l in range(n_lanes)))]
                with m.If(last_group):
                    m.d.sync += [u_i.eq(0), wid.eq(next_base)]
                    with m.If(l_i == n_layers - 1):
                        m.d.sync += [l_i.eq(0), wid.eq(0), sbase_i.eq(sbase_i + sw), s_left.eq(s_left - 1)]
                        with m.If(s_left == 1):
                            m.d.sync += issuing.eq(0)
                    with m.Else():
                        m.d.sync += l_i.eq(l_i + 1)
                with m.Else():
                    m.d.sync += [u_i.eq(u_i + n_lanes), wid.eq(wid + 1 + lane_off[n_lanes - 1])]
            with m.Else():
                m.d.sync += i_i.eq(i_i + 1)

        x1 = Mux(bias1, Const(1 << f.x.frac, signed(f.x.bits)), Mux(l0_1, self.x_rd.data, scr_rd.data.value))
        if cfg.exact_last:   # rewritten with the same word while the step waits for its lanes
            m.d.comb += [self.xin_wr.addr.eq(i1), self.xin_wr.data.eq(x1), self.xin_wr.en.eq(v1 & xin1)]
        # No tangent in layer 0 or for the bias: only the slots' valid bits are cleared (the rest of an
        # invalid slot is don't-care), which costs K gates instead of a mux on the whole tangent.
        no_tangent = bias1 | l0_1

        # ---- dither masks: lane j of the group in stage 1 takes the state stepped j times -------------------
        # Each stepped state is a signal of its own: as nested expressions, every step would copy its input
        # twice (the shift and the feedback bit), and the netlist would double with every lane.
        masks = [self.dither]
        for l in range(1, n_lanes + 1):
            stepped = Signal(dither.BITS, name=f"dither_step{l}")
            m.d.comb += stepped.eq(dither_step_expr(masks[-1]))
            masks.append(stepped)
        # after the group: the state stepped once per active lane (the active lanes are a prefix)
        after_group = masks[1]
        for l in range(1, n_lanes):
            after_group = Mux(active1[l], masks[l + 1], after_group)
        with m.If(self.dither_set):
            m.d.sync += self.dither.eq(self.dither_value)
        with m.Elif(self.train & v1 & bias1 & all_done):
            m.d.sync += self.dither.eq(after_group)

        for l, lane in enumerate(lanes):
            m.d.comb += [
                lane.i.valid.eq(lane_valid[l]),
                lane.i.p.w.eq(w_rds[l].data),
                lane.i.p.wid.eq(wid1[l]),
                lane.i.p.x.eq(x1),
                lane.i.p.slots.eq(scr_rd.data.slots),
                *[lane.i.p.slots[j].valid.eq(scr_rd.data.slots[j].valid & ~no_tangent) for j in range(cfg.k)],
                lane.i.p.last.eq(bias1),
                lane.i.p.frozen.eq(frozen1),
                lane.i.p.mask.eq(Mux(self.train, masks[l], 0)),
            ]

        # ---- lane -> activation routing ----------------------------------------------------------------
        kind_index = {kind: n for n, kind in enumerate(self.kinds)}
        layer_kinds = self.layer_units
        l_m = Signal(range(n_layers))
        u_m = Signal(range(width))
        n_out_m = _table(m, l_m, n_outs, unsigned(width.bit_length()), "n_out_m")
        kind_m = _table(m, l_m, layer_kinds, range(len(self.kinds)), "kind_m")
        lane_m = Signal(range(n_lanes))   # the lane holding unit u_m
        lane_o_valid, lane_o_p = lanes[0].o.valid, lanes[0].o.p.as_value()
        for l in range(1, n_lanes):
            lane_o_valid = Mux(lane_m == l, lanes[l].o.valid, lane_o_valid)
            lane_o_p = Mux(lane_m == l, lanes[l].o.p.as_value(), lane_o_p)
        if self.bypass:
            m.d.comb += self.acts[self.kinds[0]].identity.eq(
                _table(m, l_m, [a == "identity" for a in spec.activations], 1, "identity_m"))
        act_ready = Const(0, 1)
        for kind, act in self.acts.items():
            sel = kind_m == kind_index[kind]
            m.d.comb += [act.i.valid.eq(lane_o_valid & sel), act.i.p.eq(lane_o_p)]
            act_ready = act_ready | (sel & act.i.ready)
        for l, lane in enumerate(lanes):
            m.d.comb += lane.o.ready.eq(act_ready & (lane_m == l))
        with m.If(lane_o_valid & act_ready):
            m.d.sync += [u_m.eq(u_m + 1), lane_m.eq(Mux(lane_m == n_lanes - 1, 0, lane_m + 1))]
            with m.If(u_m == n_out_m - 1):
                m.d.sync += [u_m.eq(0), lane_m.eq(0), l_m.eq(Mux(l_m == n_layers - 1, 0, l_m + 1))]

        # ---- result side ---------------------------------------------------------------------------------
        l_r = Signal(range(n_layers))
        u_r = Signal(range(width))
        out_addr = Signal(range(cfg.max_batch * spec.n_outputs + 1))
        ybase = Signal(self.sample_addr_bits)
        n_out_r = _table(m, l_r, n_outs, unsigned(width.bit_length()), "n_out_r")
        kind_r = _table(m, l_r, layer_kinds, range(len(self.kinds)), "kind_r")
        res = Signal(rec)
        res_valid = Signal()
        first, *others = self.kinds
        res_expr, valid_expr = self.acts[first].o.p.as_value(), self.acts[first].o.valid
        for kind in others:
            sel = kind_r == kind_index[kind]
            res_expr = Mux(sel, self.acts[kind].o.p.as_value(), res_expr)
            valid_expr = Mux(sel, self.acts[kind].o.valid, valid_expr)
        m.d.comb += [res.eq(res_expr), res_valid.eq(valid_expr)]   # (`res` leaves out an appended slope)
        last_layer = l_r == n_layers - 1
        to_grad = last_layer & self.train
        accept = res_valid & (~to_grad | self.grad.ready)
        for kind, act in self.acts.items():
            m.d.comb += act.o.ready.eq(accept & (kind_r == kind_index[kind]))

        m.d.comb += [
            scr_wr.addr.eq((l_r & 1) * width + u_r),
            scr_wr.data.eq(res),
            scr_wr.en.eq(accept),
            self.out_wr.addr.eq(out_addr),
            self.out_wr.data.eq(res.value),
            self.out_wr.en.eq(accept & last_layer),
            self.grad.valid.eq(res_valid & to_grad),
            self.grad.p.a.eq(res.value),
            self.grad.p.slots.eq(res.slots),
            self.grad.p.y_addr.eq(ybase + spec.n_inputs + u_r),
        ]
        if cfg.exact_last:
            # the output neuron's slope, and the id of its W[o, 0], counted along the output layer
            d_expr = self.acts[first].o.p.d
            for kind in others:
                d_expr = Mux(kind_r == kind_index[kind], self.acts[kind].o.p.d, d_expr)
            n_in_last = spec.layer_shape(n_layers - 1)[1]
            base_last = spec.layer_base(n_layers - 1)
            row = Signal(cfg.id_bits, init=base_last)
            m.d.comb += [self.grad.p.d.eq(d_expr), self.grad.p.row.eq(row),
                         self.grad.p.direct.eq(self.train_mask[n_layers - 1])]
            with m.If(self.start):
                m.d.sync += row.eq(base_last)
            with m.Elif(accept & last_layer):
                m.d.sync += row.eq(Mux(u_r == n_out_r - 1, base_last, row + n_in_last + 1))
        with m.If(accept):
            m.d.sync += [done_n.eq(done_n + 1), u_r.eq(u_r + 1)]
            with m.If(last_layer):
                m.d.sync += out_addr.eq(out_addr + 1)
            with m.If(u_r == n_out_r - 1):
                m.d.sync += u_r.eq(0)
                with m.If(last_layer):
                    m.d.sync += [l_r.eq(0), ybase.eq(ybase + sw)]
                with m.Else():
                    m.d.sync += l_r.eq(l_r + 1)

        # ---- start ---------------------------------------------------------------------------------------
        with m.If(self.start):
            m.d.sync += [
                issuing.eq(self.n_samples != 0), s_left.eq(self.n_samples),
                l_i.eq(0), u_i.eq(0), i_i.eq(0), wid.eq(0), sbase_i.eq(0),
                issued_n.eq(0), done_n.eq(0), out_addr.eq(0), ybase.eq(0),
                l_m.eq(0), u_m.eq(0), lane_m.eq(0), l_r.eq(0), u_r.eq(0),
            ]
        m.d.comb += [
            self.busy.eq(issuing | (issued_n != done_n)),
        ]
        # Event outputs are registered per source before they are added up: the lanes' and activations'
        # `sat` are combinational ends of their datapaths, and a sum behind them would lengthen those paths.
        sources = [lane.sat for lane in lanes] + [act.sat for act in self.acts.values()]
        sat_regs = [Signal.like(src, name=f"sat_r{n}") for n, src in enumerate(sources)]
        evict_regs = [Signal.like(lane.evict, name=f"evict_r{l}") for l, lane in enumerate(lanes)]
        m.d.sync += [r.eq(src) for r, src in zip(sat_regs, sources)]
        m.d.sync += [r.eq(lane.evict) for r, lane in zip(evict_regs, lanes)]
        m.d.comb += [self.sat.eq(sum(sat_regs)), self.evict.eq(sum(evict_regs))]
        return m
