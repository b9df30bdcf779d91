"""The DPFM training core: memories, the bus slave of golden/contract/regmap.py, and the operation sequencing.

Weights W (index = weight-id) and the gradient accumulator G live in block RAM (`hw.bram.BlockRam`: no
read-first logic, since no datapath port uses a word read in the cycle that writes it), as do the sample
buffer and the output buffer. An operation (CTRL_TRAIN / CTRL_INFER) runs the forward sequencer over the
buffered samples; in training the gradient unit accumulates G from every output neuron, and after the last
sample one SGD pass updates W and clears G. The bus has its own read ports on W, the samples and the
outputs, so reads complete (two cycles) even while an operation runs (a word the operation writes in the
cycle the bus reads it reads as undefined: such a read races the operation anyway); writes to W and the
samples are ignored while busy, as hw/bus.py specifies.

With `lanes` > 1, W has one read port (so one block RAM copy) per lane, so every lane gets its weight in the
same cycle. N_SAMPLES is used clamped to 1 .. max_batch, so an operation always terminates; a CTRL write
with both TRAIN and INFER trains. Index past the end of a region read as 0 and are not written.

The identity block (regmap.REG_IDENT, golden/contract/identity.py) is a read-only block RAM initialised with
the configuration's description, so a host can refuse a core built for other numbers.

With `cfg.resident` > 0 the core also holds a data set (a `SinglePortRam`: the SPRAMs on the UP5K), shown on
the bus through REG_DATA_PAGE, and a loss memory; a CTRL_RESIDENT run hands the `hw.resident` controller the
operation state, and each batch it copies into the sample buffer runs through FORWARD and SGD as a
CTRL_TRAIN would (docs/ARITHMETIC.md 7). Without it the netlist is the one of a core that never had it.

The model is `golden.fixed_mlp.FixedModel` in the tangent mode `cfg.tangent`.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dpfm.golden.contract import regmap
from dpfm.golden.contract.identity import IDENT_WORD_BITS
from dpfm.golden.resident import LOSS_BITS
from dpfm.hw.bram import BlockRam, BlockRom, SinglePortRam
from dpfm.hw.bus import CoreBusSignature
from dpfm.hw.config import CoreConfig, bits_for
from dpfm.hw.identity import core_identity
from dpfm.hw.resident import ResidentController
from dpfm.hw.sequencer import Forward
from dpfm.hw.update import GradientUnit, SgdUnit, last_inputs


class DpfmCore(wiring.Component):
    """The training core of one `CoreConfig`; its interface is `bus` (a CoreBusSignature slave), and on a
    resident core `busy` (STATUS's BUSY bit), for a co-simulation that keeps the clock running while the core
    trains without a host. `baud` is the UART rate of the link in front of it, which only its identity block
    reports (0: no UART)."""

    #: The SGD pass implementation (a class attribute so a test can substitute a deliberately wrong one).
    sgd_unit = SgdUnit

    def __init__(self, cfg: CoreConfig, baud: int = 0):
        self.cfg = cfg
        self.identity = core_identity(cfg, baud)
        ports = {"bus": In(CoreBusSignature())}
        if cfg.resident:
            ports["busy"] = Out(1)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        cfg, f, spec = self.cfg, self.cfg.fmts, self.cfg.spec
        bus = self.bus
        p = cfg.n_params
        n_sample_words = cfg.max_batch * cfg.sample_words
        n_out_words = cfg.max_batch * spec.n_outputs
        sample_bits, out_bits = bits_for(n_sample_words), bits_for(n_out_words)

        # W: one block RAM per read port (the bus, lane 0 / SGD, lanes 1..), all written together.
        m.submodules.wmem = wmem = BlockRam(signed(f.w.bits), p)
        m.submodules.gmem = gmem = BlockRam(signed(f.g.bits), p)
        m.submodules.smem = smem = BlockRam(signed(f.x.bits), n_sample_words)
        m.submodules.omem = omem = BlockRam(signed(f.x.bits), n_out_words)
        m.submodules.ident = ident = BlockRom(self.identity.words(), IDENT_WORD_BITS)
        w_bus, w_core, w_wr = wmem.read_port(), wmem.read_port(), wmem.write_port()
        g_rd, g_wr = gmem.read_port(), gmem.write_port()
        s_bus, s_fwd, s_grad, s_wr = smem.read_port(), smem.read_port(), smem.read_port(), smem.write_port()
        o_bus, o_wr = omem.read_port(), omem.write_port()

        m.submodules.fwd = fwd = Forward(cfg, sample_bits, out_bits)
        m.submodules.grad = grad = GradientUnit(cfg, sample_bits, cfg.id_bits)
        m.submodules.sgd = sgd = self.sgd_unit(cfg, cfg.id_bits)
        for l in range(1, cfg.lanes):
            wiring.connect(m, getattr(fwd, f"w_rd{l}"), wmem.read_port())
        wiring.connect(m, fwd.x_rd, s_fwd)
        wiring.connect(m, fwd.out_wr, o_wr)
        wiring.connect(m, grad.y_rd, s_grad)
        wiring.connect(m, fwd.grad, grad.req)
        if cfg.exact_last:   # the output layer's inputs, from the sequencer to the gradient unit (3f)
            m.submodules.xmem = xmem = BlockRam(signed(f.x.bits), last_inputs(cfg))
            wiring.connect(m, fwd.xin_wr, xmem.write_port())
            wiring.connect(m, grad.xin_rd, xmem.read_port())
            m.d.comb += fwd.grad_busy.eq(grad.busy)
        resident = cfg.resident > 0
        if resident:   # section 7: the data set, the loss memory and the run's controller
            m.submodules.dmem = dmem = SinglePortRam(signed(f.x.bits), cfg.resident * cfg.sample_words)
            m.submodules.hmem = hmem = BlockRam(unsigned(LOSS_BITS), regmap.LOSS_HISTORY)
            m.submodules.res = res = ResidentController(cfg, sample_bits)
            d_rd, d_wr, h_bus = dmem.read_port(), dmem.write_port(), hmem.read_port()
            wiring.connect(m, res.h_wr, hmem.write_port())
            m.d.comb += [res.sq.eq(grad.sq), res.sq_valid.eq(grad.sq_valid)]

        # ---- registers and operation state ------------------------------------------------------------
        n_samples = Signal(16, init=cfg.max_batch)
        lr = Signal(f.lr.bits)
        cycles = Signal(32)
        samples_done = Signal(32)
        saturations = Signal(32)
        evictions = Signal(32)
        done = Signal()
        clear = Signal()
        train = Signal()
        # N_SAMPLES clamped to 1 .. max_batch, computed when it is written: a register, so the comparisons are
        # not in series with what uses it (the sample counters, the 32-bit SAMPLES_DONE sum).
        n_eff = Signal(range(cfg.max_batch + 1), init=cfg.max_batch)

        if not resident:
            m.d.comb += [fwd.train.eq(train), fwd.n_samples.eq(n_eff), sgd.lr.eq(lr)]
        # Operation state as a plain register with continuous assignments (no FSM/If on the comb side): Icarus
        # (-g2012) never evaluates an `always @*` block whose inputs keep their initial values, so comb logic
        # under control flow that depends only on an idle state register would read as X until the first
        # operation.
        IDLE, FORWARD, SGD, FINISH, RESIDENT = range(5)
        state = Signal(range(5 if resident else 4), init=IDLE)
        busy = Signal()
        in_sgd = Signal()
        start = Signal()         # a CTRL write that starts an operation, registered (see the bus slave)
        start_train = Signal()
        forward_done = ~fwd.busy & ~grad.busy & ~grad.req.valid
        m.d.comb += [
            busy.eq(state != IDLE),
            in_sgd.eq(state == SGD),
            fwd.start.eq((state == IDLE) & start),
            sgd.start.eq((state == FORWARD) & forward_done & train),
        ]
        after_sgd = FINISH
        if resident:
            # A resident run (section 7): the controller's batches run through FORWARD and SGD as CTRL_TRAIN
            # operations do, returning to RESIDENT; the run finishes when the controller is idle again.
            start_res = Signal()
            n_data = Signal(range(cfg.resident + 1), init=1)
            epochs = Signal(range(regmap.LOSS_HISTORY + 1), init=1)
            lr_tail = Signal(f.lr.bits)
            page = Signal(16)
            in_res = Signal()   # the current operation is a resident run
            after_sgd = Mux(in_res, RESIDENT, FINISH)
            m.d.comb += [
                self.busy.eq(busy),
                fwd.start.eq(((state == IDLE) & start) | ((state == RESIDENT) & res.go)),
                fwd.train.eq(train), fwd.n_samples.eq(Mux(in_res, res.batch_n, n_eff)),
                sgd.lr.eq(Mux(in_res & res.tail, lr_tail, lr)),
                res.start.eq((state == IDLE) & start_res),
                res.n_data.eq(n_data), res.batch.eq(n_eff), res.epochs.eq(epochs),
                res.batch_done.eq((state == SGD) & ~sgd.busy & in_res),
            ]
        with m.Switch(state):
            with m.Case(IDLE):
                with m.If(start):   # CYCLES counts this cycle too: the operation started with the write
                    m.d.sync += [state.eq(FORWARD), train.eq(start_train), cycles.eq(1), done.eq(0)]
                if resident:
                    m.d.sync += in_res.eq(0)
                    with m.If(start_res):
                        m.d.sync += [state.eq(RESIDENT), train.eq(1), cycles.eq(1), done.eq(0), in_res.eq(1)]
            with m.Case(FORWARD):
                with m.If(forward_done):
                    m.d.sync += state.eq(Mux(train, SGD, FINISH))
            with m.Case(SGD):
                with m.If(~sgd.busy):
                    m.d.sync += state.eq(after_sgd)
                    if resident:
                        with m.If(in_res):
                            m.d.sync += samples_done.eq(samples_done + res.batch_n)
            with m.Case(FINISH):
                m.d.sync += [state.eq(IDLE), done.eq(1)]
                if resident:
                    with m.If(~in_res):
                        m.d.sync += samples_done.eq(samples_done + n_eff)
                else:
                    m.d.sync += samples_done.eq(samples_done + n_eff)
            if resident:
                with m.Case(RESIDENT):
                    with m.If(res.go):
                        m.d.sync += state.eq(FORWARD)
                    with m.Elif(~res.busy):
                        m.d.sync += state.eq(FINISH)
        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)

        # ---- shared memory ports -------------------------------------------------------------------------
        m.d.comb += [
            w_core.addr.eq(Mux(in_sgd, sgd.w_rd.addr, fwd.w_rd0.addr)),
            w_core.en.eq(Mux(in_sgd, sgd.w_rd.en, fwd.w_rd0.en)),
            fwd.w_rd0.data.eq(w_core.data), sgd.w_rd.data.eq(w_core.data),
            g_rd.addr.eq(Mux(in_sgd, sgd.g_rd.addr, grad.g_rd.addr)),
            g_rd.en.eq(Mux(in_sgd, sgd.g_rd.en, grad.g_rd.en)),
            grad.g_rd.data.eq(g_rd.data), sgd.g_rd.data.eq(g_rd.data),
            g_wr.addr.eq(Mux(in_sgd, sgd.g_wr.addr, grad.g_wr.addr)),
            g_wr.data.eq(Mux(in_sgd, sgd.g_wr.data, grad.g_wr.data)),
            g_wr.en.eq(Mux(in_sgd, sgd.g_wr.en, grad.g_wr.en)),
        ]

        # ---- counters --------------------------------------------------------------------------------------
        # Events are registered before they are added up, and the sums before the 32-bit additions: the
        # gradient unit's flags end its datapath (sample read -> error -> saturation test), the longest path of
        # the ECP5 build when the sum followed it directly. (`fwd.sat` is a sum of registers already.)
        unit_sat = [Signal(name="grad_sat"), Signal(name="sgd_sat")]
        sat_events = Signal((fwd.sat + unit_sat[0] + unit_sat[1]).shape())
        evict_events = Signal(fwd.evict.shape())
        with m.If(clear):
            m.d.sync += [samples_done.eq(0), saturations.eq(0), evictions.eq(0), sat_events.eq(0),
                         evict_events.eq(0), *[r.eq(0) for r in unit_sat]]
        with m.Else():
            m.d.sync += [unit_sat[0].eq(grad.sat), unit_sat[1].eq(sgd.sat),
                         sat_events.eq(fwd.sat + unit_sat[0] + unit_sat[1]), evict_events.eq(fwd.evict),
                         saturations.eq(saturations + sat_events), evictions.eq(evictions + evict_events)]

        # ---- bus slave -------------------------------------------------------------------------------------
        region = bus.addr[regmap.REGION_SHIFT:]
        index = bus.addr[:regmap.REGION_SHIFT]
        ack = Signal()
        capture = bus.valid & ~ack
        m.d.sync += ack.eq(capture)
        m.d.comb += [
            bus.ready.eq(ack),
            w_bus.addr.eq(index), s_bus.addr.eq(index), o_bus.addr.eq(index), ident.addr.eq(index),
        ]
        in_w = (region == regmap.REGION_WEIGHTS) & (index < p)
        in_s = (region == regmap.REGION_SAMPLES) & (index < n_sample_words)
        if resident:   # REG_DATA_PAGE p >= 1 shows the data set's words from (p - 1) * 2**14 on
            data_words = cfg.resident * cfg.sample_words
            data_index = Signal(regmap.REGION_SHIFT + 16)
            m.d.comb += data_index.eq(Cat(index, (page - 1)[:16]))
            in_d = (region == regmap.REGION_SAMPLES) & (page != 0) & (data_index < data_words)
            in_s = in_s & (page == 0)
        in_o = (region == regmap.REGION_OUTPUTS) & (index < n_out_words)
        write = capture & bus.we & ~busy
        # Memory writes happen in the ack cycle, from the decode registered in the capture cycle and the address
        # and data the initiator still holds (until the edge ending `ready`): the region decode and its range
        # compares are then not in series with the block RAMs' write enables (on iCE40 that path from the
        # command processor was among the longest). The next transaction is captured after the write, so it
        # sees it; and no operation can start in the ack cycle (a start needs a CTRL write captured).
        write_w, write_s = Signal(), Signal()
        m.d.sync += [write_w.eq(write & in_w), write_s.eq(write & in_s)]
        m.d.comb += [
            w_wr.addr.eq(Mux(in_sgd, sgd.w_wr.addr, index)),
            w_wr.data.eq(Mux(in_sgd, sgd.w_wr.data, bus.wdata[:f.w.bits])),
            w_wr.en.eq(Mux(in_sgd, sgd.w_wr.en, write_w)),
        ]
        if resident:   # the controller copies batches into the buffer while the bus cannot write it
            write_d = Signal()
            m.d.sync += write_d.eq(write & in_d)
            m.d.comb += [
                s_wr.addr.eq(Mux(res.busy, res.s_wr.addr, index)),
                s_wr.data.eq(Mux(res.busy, res.s_wr.data, bus.wdata[:f.x.bits])),
                s_wr.en.eq(Mux(res.busy, res.s_wr.en, write_s)),
                d_wr.addr.eq(data_index), d_wr.data.eq(bus.wdata[:f.x.bits]), d_wr.en.eq(write_d),
                d_rd.addr.eq(Mux(res.busy, res.d_rd.addr, data_index)), d_rd.en.eq(1),
                res.d_rd.data.eq(d_rd.data),
            ]
        else:
            m.d.comb += [s_wr.addr.eq(index), s_wr.data.eq(bus.wdata[:f.x.bits]), s_wr.en.eq(write_s)]
        reg_write = capture & bus.we & (region == regmap.REGION_REGS)
        with m.If(reg_write & ~busy & (index == regmap.REG_N_SAMPLES)):
            written = bus.wdata[:len(n_samples)]
            m.d.sync += [n_samples.eq(written),
                         n_eff.eq(Mux(written == 0, 1, Mux(written > cfg.max_batch, cfg.max_batch, written)))]
        with m.If(reg_write & ~busy & (index == regmap.REG_LR)):
            m.d.sync += lr.eq(bus.wdata)
        m.d.comb += [fwd.dither_set.eq(reg_write & ~busy & (index == regmap.REG_DITHER)),
                     fwd.dither_value.eq(bus.wdata)]
        train_mask = Signal(spec.n_layers, init=(1 << spec.n_layers) - 1)   # docs/ARITHMETIC.md 3e
        with m.If(reg_write & ~busy & (index == regmap.REG_TRAIN_MASK)):
            m.d.sync += train_mask.eq(bus.wdata)
        m.d.comb += fwd.train_mask.eq(train_mask)
        registers = [(regmap.REG_ID, Const(regmap.CORE_ID, 32)), (regmap.REG_STATUS, Cat(busy, done)),
                     (regmap.REG_N_SAMPLES, n_samples), (regmap.REG_LR, lr), (regmap.REG_CYCLES, cycles),
                     (regmap.REG_SAMPLES_DONE, samples_done), (regmap.REG_SATURATIONS, saturations),
                     (regmap.REG_EVICTIONS, evictions), (regmap.REG_DITHER, fwd.dither),
                     (regmap.REG_TRAIN_MASK, train_mask)]
        if resident:
            def clamp(value, top):
                return Mux(value == 0, 1, Mux(value > top, top, value))
            setting = reg_write & ~busy
            written = bus.wdata[:17]
            with m.If(setting & (index == regmap.REG_N_DATA)):
                m.d.sync += n_data.eq(clamp(written, cfg.resident))
            with m.If(setting & (index == regmap.REG_EPOCHS)):
                m.d.sync += epochs.eq(clamp(written, regmap.LOSS_HISTORY))
            with m.If(setting & (index == regmap.REG_LR_TAIL)):
                m.d.sync += lr_tail.eq(bus.wdata)
            with m.If(setting & (index == regmap.REG_DATA_PAGE)):
                m.d.sync += page.eq(bus.wdata)
            m.d.comb += [res.shuffle_set.eq(setting & (index == regmap.REG_SHUFFLE)),
                         res.shuffle_value.eq(bus.wdata)]
            registers += [(regmap.REG_N_DATA, n_data), (regmap.REG_EPOCHS, epochs), (regmap.REG_LR_TAIL, lr_tail),
                          (regmap.REG_SHUFFLE, res.shuffle), (regmap.REG_DATA_PAGE, page),
                          (regmap.REG_EPOCHS_DONE, res.epochs_done)]
        ctrl = reg_write & (index == regmap.REG_CTRL)
        # A CTRL write's start and clear are acted on in the cycle after it is captured: the decode of the
        # initiator's request is then not in series with the sequencer's dozens of start-loaded registers or
        # with the counters' synchronous clear (on iCE40 those paths from the command processor were among the
        # longest). Nothing can observe the extra cycle: the slave acks in that cycle and so captures no
        # transaction in it, and from the next one on the core is busy and the counters are clear.
        op = (bus.wdata & (regmap.CTRL_TRAIN | regmap.CTRL_INFER)).any()
        if resident:   # a write with CTRL_RESIDENT starts a resident run, whatever else it sets
            resident_bit = (bus.wdata & regmap.CTRL_RESIDENT).any()
            op = op & ~resident_bit
            m.d.sync += start_res.eq(ctrl & ~busy & resident_bit)
        m.d.sync += [
            start.eq(ctrl & ~busy & op),
            start_train.eq((bus.wdata & regmap.CTRL_TRAIN).any()),
            clear.eq(ctrl & (bus.wdata & regmap.CTRL_CLEAR_COUNTERS).any()),
        ]

        reg_rdata = Signal(32)
        with m.Switch(index):
            for addr, value in registers:
                with m.Case(addr):
                    m.d.comb += reg_rdata.eq(value)

        # Read data: memories answer one cycle after the (held) address. The source is chosen by flags registered
        # in the capture cycle, and registers are sampled then too, so the ack cycle's `rdata` is an AND-OR of
        # registers and block RAM outputs: the address decode is not in series with the initiator's use of
        # `rdata` (on iCE40 that chain through the command processor was the longest path).
        read = capture & ~bus.we
        rd_reg, rd_id, rd_w, rd_s, rd_o = Signal(), Signal(), Signal(), Signal(), Signal()
        reg_rdata_r = Signal(32)
        in_id = (region == regmap.REGION_REGS) & (index[8:] == regmap.REG_IDENT >> 8)
        m.d.sync += [
            rd_reg.eq(read & (region == regmap.REGION_REGS)), rd_id.eq(read & in_id), rd_w.eq(read & in_w),
            rd_s.eq(read & in_s), rd_o.eq(read & in_o), reg_rdata_r.eq(reg_rdata),
        ]
        rdata = (Mux(rd_reg, reg_rdata_r, 0) | Mux(rd_id, ident.data, 0) | Mux(rd_w, w_bus.data, 0)
                 | Mux(rd_s, s_bus.data, 0) | Mux(rd_o, o_bus.data, 0))
        if resident:   # the data set (p >= 1), and the loss memory at REG_LOSS + 2e (+1: the high word)
            history_bits = bits_for(regmap.LOSS_HISTORY)
            in_h = (region == regmap.REGION_REGS) & (index[1 + history_bits:] == regmap.REG_LOSS >> (1 + history_bits))
            rd_d, rd_h, rd_hi = Signal(), Signal(), Signal()
            m.d.comb += h_bus.addr.eq(index[1:1 + history_bits]), h_bus.en.eq(1)
            m.d.sync += [rd_d.eq(read & in_d), rd_h.eq(read & in_h), rd_hi.eq(index[0])]
            rdata = (rdata | Mux(rd_d, d_rd.data, 0)
                     | Mux(rd_h, Mux(rd_hi, h_bus.data[32:], h_bus.data[:32]), 0))
        m.d.comb += bus.rdata.eq(rdata)
        return m
