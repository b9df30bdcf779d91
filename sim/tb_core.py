"""cocotb testbench of the whole training core (`hw.core.DpfmCore`), driven only through its word bus.

The pytest side (tests/sim/test_core.py) computes the expected results with the hardware-exact golden
model and passes a *plan* in the parameters: the configuration and its identity text (which the identity
block must hold, word for word), the initial raw weights and a list of
operations (`train` with samples, targets, raw lr and the weights expected afterwards; `infer` with samples
and the outputs expected; each with the dither state REG_DITHER must read afterwards), the dither state to
write before the first operation, the train mask (REG_TRAIN_MASK, docs/ARITHMETIC.md 3e), plus the
saturation and eviction totals expected at the end. A `resident` operation (docs/ARITHMETIC.md 7) writes
its data set through REG_DATA_PAGE and runs CTRL_RESIDENT, checking each epoch's loss sum and the shuffle
state too. Every
comparison is exact. Each bus transaction is preceded by 0..`max_idle` idle cycles (seeded), and during every operation
the testbench tries to overwrite a weight, a sample and REG_DITHER, which the core must ignore while busy.

Cycles of every operation (the CYCLES register) are written to the file named by `cycles_file`.
"""

import json
from pathlib import Path

import cocotb

from dpfm.golden.contract import regmap
from dpfm.golden.contract.identity import IDENT_WORDS, CoreIdentity
from dpfm.sim.tb import TB, BusMaster, load_params


class CoreTB(TB):
    def __init__(self, dut):
        self.p = p = load_params()
        super().__init__(dut, p["seed"])
        self.bus = BusMaster(dut, self.rng, p["max_idle"])
        self.sizes = p["sizes"]
        self.n_in, self.n_out = self.sizes[0], self.sizes[-1]

    async def check_identity(self):
        p, reg = self.p, self.bus.reg
        assert await reg(regmap.REG_ID) == regmap.CORE_ID, "REG_ID"
        want = CoreIdentity.parse(p["identity"]).words()
        for i in [*range(want[0] + 2), IDENT_WORDS - 1]:   # the text, the first word past it, the last word
            assert await reg(regmap.REG_IDENT + i) == want[i], f"identity word {i}"
        assert await reg(regmap.REG_STATUS) == 0, "STATUS after reset"
        assert await reg(regmap.REG_DITHER) == 0, "DITHER after reset (off)"
        every = (1 << (len(self.p["sizes"]) - 1)) - 1
        assert await reg(regmap.REG_TRAIN_MASK) == every, "TRAIN_MASK after reset (every layer learns)"

    async def write_weights(self, w):
        for i, v in enumerate(w):
            await self.bus.write(regmap.REGION_WEIGHTS, i, v)

    async def read_weights(self, n: int) -> list[int]:
        return [regmap.from_word(await self.bus.read(regmap.REGION_WEIGHTS, i)) for i in range(n)]

    async def write_samples(self, X, Y):
        words = self.n_in + self.n_out
        for s, (x, y) in enumerate(zip(X, Y)):
            for j, v in enumerate(list(x) + list(y)):
                await self.bus.write(regmap.REGION_SAMPLES, s * words + j, v)

    async def write_data_set(self, X, Y):
        """The resident data set, page by page (REG_DATA_PAGE), then back to the batch buffer (page 0)."""
        bus, words = self.bus, [v for x, y in zip(X, Y) for v in list(x) + list(y)]
        for start in range(0, len(words), regmap.DATA_PAGE_WORDS):
            await bus.write(regmap.REGION_REGS, regmap.REG_DATA_PAGE, 1 + start // regmap.DATA_PAGE_WORDS)
            for i, v in enumerate(words[start:start + regmap.DATA_PAGE_WORDS]):
                await bus.write(regmap.REGION_SAMPLES, i, v)
        await bus.write(regmap.REGION_REGS, regmap.REG_DATA_PAGE, 1)
        for i in (0, len(words) - 1):   # a read-back of the set's first and last words (page 1 holds both here)
            got = regmap.from_word(await bus.read(regmap.REGION_SAMPLES, i))
            assert got == words[i], f"data set word {i}: {got}, expected {words[i]}"
        await bus.write(regmap.REGION_REGS, regmap.REG_DATA_PAGE, 0)

    async def run_resident(self, op) -> int:
        """One CTRL_RESIDENT run of `op` (sim/core_cycles.resident_plan); returns its CYCLES. EPOCHS_DONE must
        only count up, and every epoch's loss sum must equal the model's."""
        bus, reg = self.bus, self.bus.reg
        await self.write_data_set(op["X"], op["Y"])
        for index, value in ((regmap.REG_N_DATA, len(op["X"])), (regmap.REG_N_SAMPLES, op["batch"]),
                             (regmap.REG_LR, op["lr"]), (regmap.REG_LR_TAIL, op["lr_tail"]),
                             (regmap.REG_SHUFFLE, op["shuffle"]), (regmap.REG_EPOCHS, op["epochs"])):
            await bus.write(regmap.REGION_REGS, index, value)
            assert await reg(index) == value, f"register {index:#x} written"
        await bus.write(regmap.REGION_REGS, regmap.REG_CTRL, regmap.CTRL_RESIDENT)
        await bus.write(regmap.REGION_SAMPLES, 0, 0x777)   # ignored while busy, like every write
        await bus.write(regmap.REGION_REGS, regmap.REG_SHUFFLE, 0x5EED)
        seen = 0
        for _ in range(2000000):
            status = await reg(regmap.REG_STATUS)
            done = await reg(regmap.REG_EPOCHS_DONE)
            assert seen <= done <= op["epochs"], f"EPOCHS_DONE went from {seen} to {done}"
            seen = done
            if status == regmap.STATUS_DONE:
                break
            assert status == regmap.STATUS_BUSY, f"STATUS={status:#x} during a resident run"
        else:
            raise AssertionError("the resident run did not finish")
        assert seen == op["epochs"], f"EPOCHS_DONE={seen} at the end, expected {op['epochs']}"
        for e, want in enumerate(op["expect_losses"]):
            got = await reg(regmap.REG_LOSS + 2 * e) | await reg(regmap.REG_LOSS + 2 * e + 1) << 32
            assert got == want, f"loss sum of epoch {e}: {got}, expected {want}"
        shuffle = await reg(regmap.REG_SHUFFLE)
        assert shuffle == op["expect_shuffle"], \
            f"SHUFFLE after the run: {shuffle:#x}, expected {op['expect_shuffle']:#x}"
        return await reg(regmap.REG_CYCLES)

    async def run_op(self, ctrl: int, n: int, lr: int) -> int:
        """Start one operation, poke the busy core, wait for DONE; return the CYCLES register, checked against
        the testbench's own view: no more than the cycles from the CTRL write to the DONE read, no fewer than
        from the CTRL write to the last read that still saw BUSY."""
        bus = self.bus
        await bus.write(regmap.REGION_REGS, regmap.REG_N_SAMPLES, n)
        await bus.write(regmap.REGION_REGS, regmap.REG_LR, lr)
        await bus.write(regmap.REGION_REGS, regmap.REG_CTRL, ctrl)
        started = last_busy = self.cycle
        # Writes while busy must be ignored; reads must still complete.
        await bus.write(regmap.REGION_WEIGHTS, 0, 0x1234)
        await bus.write(regmap.REGION_SAMPLES, 0, 0x777)
        await bus.write(regmap.REGION_REGS, regmap.REG_DITHER, 0x5EED)
        await bus.read(regmap.REGION_WEIGHTS, 0)
        for _ in range(200000):
            status = await bus.reg(regmap.REG_STATUS)
            if status == regmap.STATUS_DONE:
                cycles = await bus.reg(regmap.REG_CYCLES)
                assert last_busy - started <= cycles <= self.cycle - started, \
                    f"CYCLES={cycles} outside the observed window [{last_busy - started}, {self.cycle - started}]"
                return cycles
            assert status == regmap.STATUS_BUSY, f"STATUS={status:#x} during an operation"
            last_busy = self.cycle
        raise AssertionError("operation did not finish")


def _first_mismatch(got, want, what):
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            raise AssertionError(f"{what}: index {i} got {g}, expected {w} ({sum(a != b for a, b in zip(got, want))}"
                                 f" of {len(want)} differ)")
    assert len(got) == len(want), f"{what}: {len(got)} values, expected {len(want)}"


@cocotb.test()
async def run_plan(dut):
    tb = CoreTB(dut)
    p, bus = tb.p, tb.bus
    await tb.reset()
    await tb.check_identity()
    await tb.write_weights(p["w0"])
    _first_mismatch(await tb.read_weights(len(p["w0"])), p["w0"], "weights written")
    await bus.write(regmap.REGION_REGS, regmap.REG_DITHER, p["dither"])
    assert await bus.reg(regmap.REG_DITHER) == p["dither"], "DITHER written"
    await bus.write(regmap.REGION_REGS, regmap.REG_TRAIN_MASK, p["train_mask"])
    assert await bus.reg(regmap.REG_TRAIN_MASK) == p["train_mask"], "TRAIN_MASK written"
    samples, log = 0, []
    for n_op, op in enumerate(p["ops"]):
        X = op["X"]
        Y = op.get("Y", [[0] * tb.n_out for _ in X])
        if op["op"] == "resident":
            cycles = await tb.run_resident(op)
        else:
            await tb.write_samples(X, Y)
            ctrl = regmap.CTRL_TRAIN if op["op"] == "train" else regmap.CTRL_INFER
            cycles = await tb.run_op(ctrl, len(X), op.get("lr", 0))
        n = op.get("samples", len(X))
        samples += n
        log.append({"op": op["op"], "samples": n, "cycles": cycles})
        if "expect_w" in op:
            _first_mismatch(await tb.read_weights(len(p["w0"])), op["expect_w"], f"weights after op {n_op}")
        dither = await bus.reg(regmap.REG_DITHER)
        assert dither == op["expect_dither"], f"DITHER after op {n_op}: {dither:#x}, expected {op['expect_dither']:#x}"
        if "expect_out" in op:
            got = [regmap.from_word(await bus.read(regmap.REGION_OUTPUTS, i)) for i in range(len(op["expect_out"]))]
            _first_mismatch(got, op["expect_out"], f"outputs of op {n_op}")
    assert await bus.reg(regmap.REG_SAMPLES_DONE) == samples, "SAMPLES_DONE"
    assert await bus.reg(regmap.REG_SATURATIONS) == p["expect_sat"], "SATURATIONS"
    assert await bus.reg(regmap.REG_EVICTIONS) == p["expect_evictions"], "EVICTIONS"
    await bus.write(regmap.REGION_REGS, regmap.REG_CTRL, regmap.CTRL_CLEAR_COUNTERS)
    for reg in (regmap.REG_SAMPLES_DONE, regmap.REG_SATURATIONS, regmap.REG_EVICTIONS):
        assert await bus.reg(reg) == 0, f"register {reg:#x} after CLEAR_COUNTERS"
    Path(p["cycles_file"]).write_text(json.dumps(log))
