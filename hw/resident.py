"""The resident run's controller (docs/ARITHMETIC.md 7): shuffle, batch copies, epochs and their loss sums.

A CTRL_RESIDENT run trains `epochs` epochs over the `n_data` samples of the core's data set memory without
the host. Each epoch first draws its order into the order memory (the inside-out Fisher-Yates of
`golden.resident.epoch_order`: draws until one is kept, then one read and two writes per sample), then,
batch by batch, copies the batch's samples from the data set into the batch buffer the forward sequencer
reads and hands the batch to the core's ordinary training operation (`go`, then `batch_done` once its SGD
pass is over). So a resident batch is exactly a CTRL_TRAIN of the same samples, and the sequencer, the gradient unit
and the SGD pass are the streamed mode's, unchanged. The gradient unit's squared errors (`sq`) are summed
per epoch and written to the loss memory at the epoch's index.

The order memory holds sample indices; the data set holds sample n's words at n * sample_words + j, as the
batch buffer does. The model is `golden.resident` with the trainers' resident epochs.
"""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from dpfm.golden.contract import regmap
from dpfm.golden.resident import DRAW_SHIFT, INDEX_BITS, LOSS_BITS
from dpfm.hw.bram import SinglePortRam
from dpfm.hw.config import CoreConfig, bits_for, order_bits
from dpfm.hw.update import read_port, write_port


def data_addr_bits(cfg: CoreConfig) -> int:
    """Address bits of the data set memory (`cfg.resident` samples of `cfg.sample_words` words)."""
    return bits_for(cfg.resident * cfg.sample_words)


def xorshift_expr(s):
    """One step of the shuffle generator (`golden.resident.step`) as a 32-bit expression."""
    s = s ^ (s << 13)[:32]
    s = s ^ (s >> 17)
    return s ^ (s << 5)[:32]


class ResidentController(wiring.Component):
    """Runs `epochs` epochs over the data set's first `n_data` samples in batches of `batch` (all three held
    steady by the core during a run). `shuffle` is the generator's state: `shuffle_set` loads
    `shuffle_value` (the core only allows it between runs). `busy` is high from the cycle after `start` to
    the end of the run's last epoch; `epochs_done` counts the run's finished epochs."""

    def __init__(self, cfg: CoreConfig, sample_addr_bits: int):
        self.cfg = cfg
        f = cfg.fmts
        super().__init__({
            "start": In(1),
            "n_data": In(range(cfg.resident + 1)),
            "batch": In(range(cfg.max_batch + 1)),
            "epochs": In(range(regmap.LOSS_HISTORY + 1)),
            "shuffle_set": In(1),
            "shuffle_value": In(32),
            "shuffle": Out(32),
            "d_rd": Out(read_port(data_addr_bits(cfg), signed(f.x.bits))),
            "s_wr": Out(write_port(sample_addr_bits, signed(f.x.bits))),
            "h_wr": Out(write_port(bits_for(regmap.LOSS_HISTORY), unsigned(LOSS_BITS))),
            "go": Out(1),
            "batch_n": Out(range(cfg.max_batch + 1)),
            "tail": Out(1),
            "batch_done": In(1),
            "sq": In(unsigned(2 * f.x.bits)),
            "sq_valid": In(1),
            "epochs_done": Out(range(regmap.LOSS_HISTORY + 1)),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n_max, sw = cfg.resident, cfg.sample_words
        # a single-port RAM (SPRAM on the UP5K): no cycle reads and writes it together (MOVE writes what CHECK read)
        m.submodules.order = order = SinglePortRam(unsigned(order_bits(cfg)), n_max)
        o_rd, o_wr = order.read_port(), order.write_port()

        i = Signal(range(n_max))          # the shuffle's position
        r = Signal(INDEX_BITS)            # its draw
        pos = Signal(range(n_max + 1))    # the epoch's first sample of the current batch
        s = Signal(range(cfg.max_batch))  # the batch's sample being copied
        j = Signal(range(sw))             # its word
        dbase = Signal(len(self.d_rd.addr))
        sbase = Signal(len(self.s_wr.addr))
        wv = Signal()                     # a copied word arrives on d_rd this cycle, for s_wr at `waddr`
        waddr = Signal.like(sbase)
        acc = Signal(LOSS_BITS)
        epoch = Signal.like(self.epochs_done)

        mask = Signal(INDEX_BITS)         # index_mask(i): i with every bit below its highest set
        smear = i.as_unsigned()
        for shift in (1, 2, 4, 8):
            smear = smear | (smear >> shift)
        m.d.comb += mask.eq(smear)
        s_next = xorshift_expr(self.shuffle)

        # State as a plain register and continuous assignments (see hw/core.py on Icarus and `always @*`).
        IDLE, DRAW, CHECK, MOVE, PLACE, BATCH, FETCH, BASE, COPY, SETTLE, GO, WAIT, EPOCH = range(13)
        state = Signal(range(EPOCH + 1), init=IDLE)
        m.d.comb += [
            self.busy.eq(state != IDLE),
            self.go.eq(state == GO),
            self.tail.eq(self.batch_n != self.batch),
            self.epochs_done.eq(epoch),
            o_rd.addr.eq(Mux(state == CHECK, r, pos + s)), o_rd.en.eq(1),
            o_wr.addr.eq(Mux(state == MOVE, i, r)), o_wr.data.eq(Mux(state == MOVE, o_rd.data, i)),
            o_wr.en.eq((state == MOVE) | (state == PLACE)),
            self.d_rd.addr.eq(dbase + j), self.d_rd.en.eq(1),
            self.s_wr.addr.eq(waddr), self.s_wr.data.eq(self.d_rd.data), self.s_wr.en.eq(wv),
            self.h_wr.addr.eq(epoch), self.h_wr.data.eq(acc), self.h_wr.en.eq(state == EPOCH),
        ]
        m.d.sync += [wv.eq(state == COPY), waddr.eq(sbase + j)]
        with m.If(self.sq_valid & (state != IDLE)):
            m.d.sync += acc.eq(acc + self.sq)
        with m.If(self.shuffle_set):
            m.d.sync += self.shuffle.eq(self.shuffle_value)

        with m.Switch(state):
            with m.Case(IDLE):
                with m.If(self.start):
                    m.d.sync += [epoch.eq(0), acc.eq(0), i.eq(0), state.eq(DRAW)]
            with m.Case(DRAW):
                m.d.sync += [self.shuffle.eq(s_next), r.eq(s_next[DRAW_SHIFT:] & mask), state.eq(CHECK)]
            with m.Case(CHECK):     # reads a[r] (used in MOVE) whether or not the draw is kept
                m.d.sync += state.eq(Mux(r <= i, MOVE, DRAW))
            with m.Case(MOVE):      # a[i] <- a[r]
                m.d.sync += state.eq(PLACE)
            with m.Case(PLACE):     # a[r] <- i
                m.d.sync += i.eq(i + 1)
                with m.If(i == self.n_data - 1):
                    m.d.sync += [pos.eq(0), state.eq(BATCH)]
                with m.Else():
                    m.d.sync += state.eq(DRAW)
            with m.Case(BATCH):
                rest = self.n_data - pos
                m.d.sync += [self.batch_n.eq(Mux(rest < self.batch, rest, self.batch)), s.eq(0), sbase.eq(0),
                             state.eq(FETCH)]
            with m.Case(FETCH):     # reads the sample index a[pos + s]
                m.d.sync += state.eq(BASE)
            with m.Case(BASE):
                m.d.sync += [dbase.eq(o_rd.data * sw), j.eq(0), state.eq(COPY)]
            with m.Case(COPY):      # reads word j; the write follows a cycle later (wv)
                m.d.sync += j.eq(j + 1)
                with m.If(j == sw - 1):
                    m.d.sync += [s.eq(s + 1), sbase.eq(sbase + sw)]
                    m.d.sync += state.eq(Mux(s == self.batch_n - 1, SETTLE, FETCH))
            with m.Case(SETTLE):    # the last word's write
                m.d.sync += state.eq(GO)
            with m.Case(GO):
                m.d.sync += state.eq(WAIT)
            with m.Case(WAIT):
                with m.If(self.batch_done):
                    m.d.sync += pos.eq(pos + self.batch_n)
                    m.d.sync += state.eq(Mux(pos + self.batch_n == self.n_data, EPOCH, BATCH))
            with m.Case(EPOCH):
                m.d.sync += [epoch.eq(epoch + 1), acc.eq(0), i.eq(0)]
                m.d.sync += state.eq(Mux(epoch == self.epochs - 1, IDLE, DRAW))
        return m
