"""The two writers of the learning state: the MSE gradient accumulator and the end-of-batch SGD pass.

`GradientUnit` turns one output neuron's dual `(a, slots)` into G read-modify-writes (docs/ARITHMETIC.md
3.5); `SgdUnit` walks every weight-id once, applying `w <- sat_w(w - round_w(lr * G))` and clearing G
(section 3.6). Both drive memory ports handed to them by the core, which arbitrates the shared ones.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import ReadPort, WritePort
from amaranth.lib.wiring import In, Out

from dpfm.hw.config import CoreConfig, bits_for
from dpfm.hw.streams import saturate_expr, shift_round_expr, slots_layout


def read_port(addr_width: int, shape) -> wiring.FlippedSignature:
    """A memory read port as seen by the block that drives its address."""
    return ReadPort.Signature(addr_width=addr_width, shape=shape).flip()


def write_port(addr_width: int, shape) -> wiring.FlippedSignature:
    """A memory write port as seen by the block that writes through it."""
    return WritePort.Signature(addr_width=addr_width, shape=shape).flip()


def grad_request_layout(cfg: CoreConfig, sample_addr_bits: int) -> data.StructLayout:
    """One output neuron handed to the gradient unit: its activation, tangent, and where its target is; for an
    exact output layer (docs/ARITHMETIC.md 3f) also its slope `d`, the id `row` of its weight `W[o, 0]`, and
    `direct` (the output layer learns: add its direct entries)."""
    fields = {
        "a": signed(cfg.fmts.x.bits),
        "slots": slots_layout(cfg.k, cfg.fmts.t, cfg.id_bits),
        "y_addr": unsigned(sample_addr_bits),
    }
    if cfg.exact_last:
        fields.update(d=signed(cfg.fmts.x.bits), row=unsigned(cfg.id_bits), direct=1)
    return data.StructLayout(fields)


def last_inputs(cfg: CoreConfig) -> int:
    """Inputs of the output layer: the words of the gradient unit's input memory (section 3f)."""
    return cfg.spec.layer_shape(cfg.spec.n_layers - 1)[1]


class GradientUnit(wiring.Component):
    """MSE delta and G accumulation for one output at a time (section 3.5).

    `e = sat_x(a - y)`, `delta = sat_x(round_x(c * e))`, then for each valid slot in order
    `G[id] <- sat_g(G[id] + delta * v)`. One register stage per step (the target read from block RAM, error,
    delta, product, sum, saturate) keeps the unit off the critical path. A valid slot costs three cycles
    (read with the product, add, saturate and write) and the next slot is read only after the write, so two
    slots naming the same id (possible after in-place merges) see each other's result without forwarding
    logic. `busy` is low only when no request is held. `sat` counts this cycle's saturation events.

    Exact output layer (`cfg.exact_last`, section 3f): after the slots, a request with `direct` set walks the
    output layer's inputs `x_i` (the input memory `xin`, written by the sequencer; the bias's 1.0 last):
    `v = conv_t(x_i)`, `p = round_t(d * v)` (one state each, so a cycle reports at most one saturation),
    then the slot path's product, add and write at id `row + i`. The next input's read is issued with the
    write, so an entry costs five cycles.

    Resident training (`cfg.resident`, section 7): `sq` is `e * e`, computed on the slots' multiplier in DELTA
    and valid in the cycle `sq_valid` is high (one per output), for the epoch's loss sum.

    The model is `golden.update.accumulate_output_gradient` (with `golden.update.direct_slots`).
    """

    def __init__(self, cfg: CoreConfig, sample_addr_bits: int, g_addr_bits: int):
        self.cfg = cfg
        f = cfg.fmts
        ports = {
            "req": In(stream.Signature(grad_request_layout(cfg, sample_addr_bits))),
            "y_rd": Out(read_port(sample_addr_bits, signed(f.x.bits))),
            "g_rd": Out(read_port(g_addr_bits, signed(f.g.bits))),
            "g_wr": Out(write_port(g_addr_bits, signed(f.g.bits))),
            "busy": Out(1),
            "sat": Out(1),
        }
        if cfg.exact_last:
            ports["xin_rd"] = Out(read_port(xin_addr_bits(cfg), signed(f.x.bits)))
        if cfg.resident:
            ports["sq"] = Out(unsigned(2 * f.x.bits))
            ports["sq_valid"] = Out(1)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        cfg, f = self.cfg, self.cfg.fmts
        a = Signal(signed(f.x.bits))
        e = Signal(signed(f.x.bits))
        delta = Signal(signed(f.x.bits))
        prod = Signal(signed(max(f.x.bits + f.t.bits, 2 * f.x.bits if cfg.resident else 0)))
        slots = Signal(slots_layout(cfg.k, f.t, cfg.id_bits))
        left = Signal(range(cfg.k + 1))
        head = slots[0]

        y = Signal(signed(f.x.bits))
        e_new, e_sat = saturate_expr(a - y, f.x)
        c = Const(cfg.delta_scale_raw, signed(f.x.bits))
        d_new, d_sat = saturate_expr(shift_round_expr(c * e, f.x.frac), f.x)
        g_sum = Signal(signed(f.g.bits + 1))
        g_new, g_sat = saturate_expr(g_sum, f.g)

        # State as a plain register and continuous assignments (see hw/core.py on Icarus and `always @*`).
        IDLE, TARGET, ERROR, DELTA, SLOT, ADD, RMW, XCONV, XSLOPE, XMUL = range(10)
        exact = cfg.exact_last
        state = Signal(range(XMUL + 1 if exact else RMW + 1), init=IDLE)
        idle = state == IDLE
        sat = ((state == ERROR) & e_sat) | ((state == DELTA) & d_sat) | ((state == RMW) & g_sat)
        after_slots = IDLE
        g_addr = head.id
        slot_written = state == RMW   # a slot's write, which shifts the slots
        # Without the exact output layer the unit builds the netlist of a core that never had it: the UP5K K=8
        # core fills its device, and any other netlist maps to a different number of logic cells.
        # Section 3f: the direct entries' phase (`xphase`), the input index `xi`, the entry's id and value.
        if exact:
            xphase = Signal()
            direct = Signal()
            n_in = last_inputs(cfg)
            d = Signal(signed(f.x.bits))
            row = Signal(cfg.id_bits)
            xi = Signal(range(n_in + 1))
            xid = Signal(cfg.id_bits)
            v = Signal(signed(f.t.bits))
            p = Signal(signed(f.t.bits))
            x_in = Mux(xi == n_in, Const(1 << f.x.frac, signed(f.x.bits)), self.xin_rd.data)
            v_new, v_sat = saturate_expr(shift_round_expr(x_in, f.x.frac - f.t.frac), f.t)
            p_new, p_sat = saturate_expr(shift_round_expr(d * v, f.x.frac), f.t)
            after_slots = Mux(direct, XCONV, IDLE)
            g_addr = Mux(xphase, xid, head.id)
            slot_written = slot_written & ~xphase
            sat = sat | ((state == XCONV) & v_sat) | ((state == XSLOPE) & p_sat)
            # the next input is read with the current entry's write, so it is there in the next XCONV
            last_x = xi == n_in
            m.d.comb += [self.xin_rd.addr.eq(Mux((state == RMW) & xphase, xi + 1, xi)),
                         self.xin_rd.en.eq(1)]
        m.d.comb += [
            self.req.ready.eq(idle),
            self.y_rd.addr.eq(self.req.p.y_addr), self.y_rd.en.eq(idle),
            self.g_rd.addr.eq(g_addr), self.g_wr.addr.eq(g_addr), self.g_wr.data.eq(g_new),
            self.g_wr.en.eq(state == RMW),
            self.busy.eq(~idle),
            self.sat.eq(sat),
        ]

        slot_product = delta * head.value
        if cfg.resident:
            # The epoch's loss (section 7): e * e on the slots' multiplier, in DELTA, which leaves it free.
            square = state == DELTA
            slot_product = Mux(square, e, delta) * Mux(square, e, head.value)
            m.d.comb += self.sq.eq(prod[:2 * f.x.bits])
            m.d.sync += self.sq_valid.eq(square)
            with m.If(square):
                m.d.sync += prod.eq(slot_product)
        shift_slot = slot_written | ((state == SLOT) & ~head.valid)
        with m.If(shift_slot):
            m.d.sync += [slots.eq(slots.as_value() >> len(head.as_value())), left.eq(left - 1)]
        with m.Switch(state):
            with m.Case(IDLE):
                with m.If(self.req.valid):
                    m.d.sync += [a.eq(self.req.p.a), slots.eq(self.req.p.slots), left.eq(cfg.k), state.eq(TARGET)]
                    if exact:
                        m.d.sync += [d.eq(self.req.p.d), row.eq(self.req.p.row), direct.eq(self.req.p.direct),
                                     xi.eq(0), xphase.eq(0)]
            with m.Case(TARGET):    # the read port holds the word read in IDLE (its enable is low now)
                m.d.sync += [y.eq(self.y_rd.data), state.eq(ERROR)]
            with m.Case(ERROR):
                m.d.sync += [e.eq(e_new), state.eq(DELTA)]
            with m.Case(DELTA):
                m.d.sync += [delta.eq(d_new), state.eq(SLOT)]
            with m.Case(SLOT):
                m.d.sync += prod.eq(slot_product)
                with m.If(head.valid):
                    m.d.sync += state.eq(ADD)
                with m.Elif(left == 1):
                    m.d.sync += state.eq(after_slots)
            with m.Case(ADD):
                m.d.sync += [g_sum.eq(self.g_rd.data + prod), state.eq(RMW)]
            with m.Case(RMW):
                if exact:
                    with m.If(xphase):
                        m.d.sync += [xi.eq(xi + 1), state.eq(Mux(last_x, IDLE, XCONV))]
                    with m.Else():
                        m.d.sync += state.eq(Mux(left == 1, after_slots, SLOT))
                else:
                    m.d.sync += state.eq(Mux(left == 1, IDLE, SLOT))
            if exact:
                with m.Case(XCONV):
                    m.d.sync += [v.eq(v_new), xphase.eq(1), state.eq(XSLOPE)]
                with m.Case(XSLOPE):
                    m.d.sync += [p.eq(p_new), xid.eq(row + xi), state.eq(XMUL)]
                with m.Case(XMUL):
                    m.d.sync += [prod.eq(delta * p), state.eq(ADD)]
        return m


def xin_addr_bits(cfg: CoreConfig) -> int:
    """Address bits of the gradient unit's input memory (section 3f)."""
    return bits_for(last_inputs(cfg))


class SgdUnit(wiring.Component):
    """One pass over all P weight-ids after a training batch (section 3.6), one id per cycle, pipelined.

    Cycle n reads `W[n]`, `G[n]`; n+1 registers the words read; n+2 the exact product `lr * G[n]`; n+3 rounds
    it to format w; n+4 the difference `W[n] - round_w(lr * G[n])`; n+5 writes its saturation to `W[n]` and
    `G[n] <- 0`. The register after the read keeps the block RAM's clock-to-output time (and the core's port
    sharing) out of the 16 x 32 multiply's path, the longest in the ECP5 build. The one between subtraction
    and saturation splits what was among the iCE40 build's longest paths (the step-wide carry chain, the clamp
    test, then the core's write data mux). Each costs one cycle per batch. Reads and writes in flight always
    name different ids, so there is no hazard. `start` pulses to begin; `busy` stays high until the last
    write.

    The model is `golden.fixed_mlp.FixedModel.sgd_update`.
    """

    #: pipeline registers between a read and its write (the write is in cycle n + STAGES)
    STAGES = 5

    def __init__(self, cfg: CoreConfig, addr_bits: int):
        self.cfg = cfg
        f = cfg.fmts
        super().__init__({
            "start": In(1),
            "lr": In(unsigned(f.lr.bits)),
            "w_rd": Out(read_port(addr_bits, signed(f.w.bits))),
            "g_rd": Out(read_port(addr_bits, signed(f.g.bits))),
            "w_wr": Out(write_port(addr_bits, signed(f.w.bits))),
            "g_wr": Out(write_port(addr_bits, signed(f.g.bits))),
            "busy": Out(1),
            "sat": Out(1),
        })

    def round_step(self, product):
        """`round_w(lr * G)` from the exact product (frac lr.frac + g.frac): round half up to format w."""
        f = self.cfg.fmts
        return shift_round_expr(product, f.lr.frac + f.g.frac - f.w.frac)

    def clamp_weight(self, diff):
        """`(sat_w(diff), clamped)`: the new weight saturated to format w, and whether that clamped."""
        return saturate_expr(diff, self.cfg.fmts.w)

    def elaborate(self, platform):
        m = Module()
        cfg, f = self.cfg, self.cfg.fmts
        p = cfg.n_params
        stages = self.STAGES
        rd_id = Signal(range(p + 1))
        reading = Signal()
        ids = [Signal(range(p), name=f"id{s}") for s in range(1, stages + 1)]
        valid = [Signal(name=f"valid{s}") for s in range(1, stages + 1)]
        ws = [Signal(signed(f.w.bits), name=f"w{s}") for s in range(1, 4)]   # W[n] until the subtraction
        g1 = Signal(signed(f.g.bits))
        product = self.lr * g1
        product2 = Signal(signed(len(product) + 1))
        step = self.round_step(product2)
        step3 = Signal(signed(len(step)))
        diff = ws[2] - step3
        diff4 = Signal(diff.shape())
        w_new, w_sat = self.clamp_weight(diff4)
        last = stages - 1

        m.d.comb += [
            self.w_rd.addr.eq(rd_id), self.g_rd.addr.eq(rd_id),
            self.w_wr.addr.eq(ids[last]), self.g_wr.addr.eq(ids[last]),
            self.w_wr.data.eq(w_new), self.g_wr.data.eq(0),
            self.w_wr.en.eq(valid[last]), self.g_wr.en.eq(valid[last]),
            self.sat.eq(valid[last] & w_sat),
            self.busy.eq(reading | Cat(valid).any()),
        ]
        m.d.sync += [valid[0].eq(reading), ids[0].eq(rd_id), ws[0].eq(self.w_rd.data), g1.eq(self.g_rd.data)]
        m.d.sync += [valid[s].eq(valid[s - 1]) for s in range(1, stages)]
        m.d.sync += [ids[s].eq(ids[s - 1]) for s in range(1, stages)]
        m.d.sync += [ws[s].eq(ws[s - 1]) for s in range(1, len(ws))]
        m.d.sync += [product2.eq(product), step3.eq(step), diff4.eq(diff)]
        with m.If(self.start):
            m.d.sync += [reading.eq(1), rd_id.eq(0)]
        with m.Elif(reading):
            m.d.sync += rd_id.eq(rd_id + 1)
            with m.If(rd_id == p - 1):
                m.d.sync += reading.eq(0)
        return m
