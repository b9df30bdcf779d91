"""The training core's measured cycles: its Verilog trains a batch of a task's data in cocotb (sim/tb_core.py)
and is checked bit for bit against the golden model on the way; the CYCLES register gives the count."""

import json
from pathlib import Path

import numpy as np

from dpfm.golden.contract.errors import DpfmError
from dpfm.hw.config import CoreConfig
from dpfm.hw.identity import core_identity


def core_plan(cfg: CoreConfig, task_name: str, n_batches: int, batch: int, n_infer: int, seed: int,
              lr: float | None = None, model_cls=None, dither_state: int = 0, train_layers=None) -> dict:
    """A testbench plan for sim/tb_core.py: Glorot weights, the dither generator's state `dither_state`
    (written to REG_DITHER before the first operation; 0 = off), the layers that learn (`train_layers`,
    0-based, None for all: written to REG_TRAIN_MASK), `n_batches` training batches of the task's
    training data, one inference over validation samples, and every result the golden model expects
    (weights and the dither state after each operation, outputs, saturation and eviction totals)."""
    from dpfm.golden.fixed_mlp import FixedModel
    from dpfm.golden.contract.net import flatten, init_weights, train_mask
    from dpfm.golden.tasks import get_task

    task = get_task(task_name)
    if batch > cfg.max_batch or n_infer > cfg.max_batch:
        raise DpfmError(f"a batch of {max(batch, n_infer)} does not fit max_batch={cfg.max_batch}",
                        "use a smaller batch or a larger max_batch")
    X_tr, Y_tr, X_va, _ = task.load()
    model = (model_cls or FixedModel)(cfg.spec, cfg.k, cfg.fmts, tangent=cfg.tangent, train_layers=train_layers,
                                      exact_last=cfg.exact_last)
    model.dither_state = dither_state
    w = model.quantize_weights(flatten(cfg.spec, init_weights(cfg.spec, np.random.default_rng(seed))))
    w0 = w.copy()
    lr_raw = model.lr_raw(task.lr if lr is None else lr, batch)
    ops = []
    for b in range(n_batches):
        X = model.quantize_inputs(X_tr[b * batch:(b + 1) * batch])
        Y = model.quantize_inputs(Y_tr[b * batch:(b + 1) * batch], "targets")
        w = model.sgd_update(w, model.batch_gradient(w, X, Y), lr_raw)
        ops.append({"op": "train", "X": X.tolist(), "Y": Y.tolist(), "lr": lr_raw, "expect_w": w.tolist(),
                    "expect_dither": model.dither_state})
    ops.append(_infer_op(model, w, X_va[:n_infer]))
    return _plan(cfg, model, w0, ops, dither_state, train_mask(cfg.spec, train_layers))


def _infer_op(model, w, X_float) -> dict:
    """An inference operation over `X_float` and the outputs the model expects. The hardware's forward pass
    counts saturations and evictions too; inference ranks without demotion (mask 0) and leaves the dither
    state alone."""
    X = model.quantize_inputs(X_float)
    state, model.dither_state = model.dither_state, 0
    model.output_tangents(w, X)
    model.dither_state = state
    return {"op": "infer", "X": X.tolist(), "expect_out": model.predict(w, X).ravel().tolist(),
            "expect_dither": state}


def _plan(cfg: CoreConfig, model, w0, ops: list, dither_state: int, mask: int) -> dict:
    """The plan's parameters around its operations: the configuration, initial state and end totals."""
    return {"sizes": list(cfg.spec.sizes), "k": cfg.k, "lanes": cfg.lanes, "toper": str(cfg.toper),
            "sources": cfg.sources, "identity": core_identity(cfg).text(), "max_batch": cfg.max_batch,
            "dither": dither_state, "train_mask": mask, "w0": w0.tolist(), "ops": ops,
            "expect_sat": model.sat.count, "expect_evictions": model.evictions}


def resident_plan(cfg: CoreConfig, task_name: str, n_data: int, batch: int, epochs: int, seed: int, lr: float,
                  shuffle_state: int, dither_state: int = 0) -> dict:
    """A testbench plan for sim/tb_core.py with one resident run (docs/ARITHMETIC.md 7): the task's first
    `n_data` training samples as the data set, `epochs` epochs in batches of `batch`, and what the golden
    model expects after it (weights, each epoch's loss sum, the shuffle and dither states, the counters);
    then one streamed inference, which must still read the batch buffer."""
    from dpfm.golden import resident
    from dpfm.golden.contract.net import flatten, init_weights, train_mask
    from dpfm.golden.fixed_mlp import FixedModel
    from dpfm.golden.tasks import get_task

    X_tr, Y_tr, X_va, _ = get_task(task_name).load()
    model = FixedModel(cfg.spec, cfg.k, cfg.fmts, tangent=cfg.tangent, exact_last=cfg.exact_last)
    model.dither_state = dither_state
    w = w0 = model.quantize_weights(flatten(cfg.spec, init_weights(cfg.spec, np.random.default_rng(seed))))
    X = model.quantize_inputs(X_tr[:n_data])
    Y = model.quantize_inputs(Y_tr[:n_data], "targets")
    tail = n_data % batch
    losses, state = [], shuffle_state
    for _ in range(epochs):
        w, total, state = resident.train_epoch(model, w, X, Y, state, batch, lr)
        losses.append(total)
    run = {"op": "resident", "X": X.tolist(), "Y": Y.tolist(), "batch": batch, "epochs": epochs,
           "lr": model.lr_raw(lr, batch), "lr_tail": model.lr_raw(lr, tail) if tail else 0,
           "shuffle": shuffle_state, "expect_shuffle": state, "expect_losses": losses, "expect_w": w.tolist(),
           "expect_dither": model.dither_state, "samples": epochs * n_data}
    return _plan(cfg, model, w0, [run, _infer_op(model, w, X_va[:4])], dither_state, train_mask(cfg.spec, None))


def run_core_sim(core, build_dir: Path, plan: dict, seed: int = 1, max_idle: int = 3, platform=None):
    """Simulate `core` with sim/tb_core.py on `plan` (elaborated for `platform`, None = generic); returns the
    `SimResult` (cycles in cycles.json)."""
    from dpfm.sim.runner import run_cocotb
    build_dir = Path(build_dir).resolve()  # the testbench runs inside the build directory
    params = dict(plan, seed=seed, max_idle=max_idle, cycles_file=str(build_dir / "cycles.json"))
    return run_cocotb(core, name="dpfm_core", test_module="dpfm.sim.tb_core", build_dir=build_dir, params=params,
                      seed=seed, platform=platform)


def measure_cycles(cfg: CoreConfig, task_name: str, build_dir: Path, train_layers=None) -> dict:
    """Cycles of one full training batch (`max_batch` samples, SGD included) and one inference batch, from
    a bit-exact simulation of the core (with only `train_layers` learning, 0-based; None: all); raises
    `DpfmError` if the core disagrees with the golden model."""
    from dpfm.golden.tasks import get_task
    from dpfm.hw.core import DpfmCore
    batch = cfg.max_batch
    # the task's lr, unless lr / batch overflows the lr format (cycles do not depend on it)
    lr = min(get_task(task_name).lr, cfg.fmts.lr.max_value * batch / 2)
    plan = core_plan(cfg, task_name, n_batches=1, batch=batch, n_infer=batch, seed=0, lr=lr, train_layers=train_layers)
    result = run_core_sim(DpfmCore(cfg), build_dir, plan, max_idle=0)
    if not result.passed:
        raise DpfmError(f"the core simulation disagrees with the golden model: {result.failures}",
                        f"see {result.log}")
    log = json.loads((Path(build_dir) / "cycles.json").read_text())
    train, infer = log[0], log[1]
    return {"train_cycles_per_sample": train["cycles"] / train["samples"],
            "infer_cycles_per_sample": infer["cycles"] / infer["samples"],
            "ideal_cycles_per_sample": cfg.macs_per_sample / cfg.lanes,
            "batch": train["samples"]}
