"""`dpfm bench approx`: what the hardware's toper approximation costs in training quality.

Four gradients are compared at each K, from the same initial weights and the same shuffled batches
(`golden.mlp.GoldenTrainer`, one seed):

- `hw-toper`: the hardware-exact fixed-point model of the serial lane (`FixedModel(tangent="toper")`);
- `hw-parallel`: the same for the parallel lane (`tangent="toper-parallel"`: K + 1 source topers and a merge
  tree, docs/ARITHMETIC.md section 3b);
- `hw-parallel-3`: the parallel lane with 3 source topers (`tangent="toper-parallel-3"`, the ECP5 build's;
  all K + 1 sources when K + 1 < 3);
- `fixed-exact`: exact top-K in the same fixed-point formats (each neuron's tangent summed exactly, then
  pruned), the reference the toper approximates;
- `float-topk`: exact top-K in float64 (`golden.dual` semantics, where the loss is one more top-K node);

against two full-gradient baselines, `float-full` and `fixed-full` (K = full, exact forward mode).

Two measurements per task:
1. *gradient fidelity* at the initial weights, over the first training batches: cosine similarity of each
   top-K batch gradient to the full fixed-point gradient, and the fraction of batches where each toper's
   gradient differs from exact top-K in any bit;
2. *training*: final training / validation loss (and validation accuracy for classifiers) after a short,
   stated number of epochs, wall time per epoch, and the fixed-point saturation / eviction counts.

Writes a JSON, prints a table and saves a PNG (matplotlib Agg), each atomically; both paths are checked
before the study starts.
"""

import time
from pathlib import Path

import numpy as np

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import check_writable, write_json
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.contract.net import flatten, init_weights
from dpfm.golden.contract.organisation import Organisation
from dpfm.golden.fixed_mlp import FixedModel
from dpfm.golden.trainer import k_label
from dpfm.host.plots import save_figure

# Default study length and formats per task.
STUDY_DEFAULTS = {
    "seed-sum": {"epochs": 100, "formats": ""},
    "digits": {"epochs": 5, "formats": ""},
}
FIDELITY_BATCHES = 20
#: The lanes compared, each named by `Organisation.study_mode`; the other modes use exact top-K.
HW_ORGANISATIONS = (Organisation(), Organisation(parallel=True), Organisation(parallel=True, sources=3))
HW_MODES = {org.study_mode: org for org in HW_ORGANISATIONS}
MODES = (*HW_MODES, "fixed-exact", "float-topk")
BASELINES = ("fixed-full", "float-full")


def add_arguments(parser) -> None:
    parser.add_argument("--tasks", default=",".join(STUDY_DEFAULTS),
                        help="comma-separated task names (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs per run for every task (default: seed-sum 100, digits 5)")
    parser.add_argument("--ks", default="2,4,8,16,32", help="comma-separated K values (default: %(default)s)")
    parser.add_argument("--formats", default=None,
                        help="fixed-point formats for every task, e.g. 'lr=u16.13' (default: per task, see JSON)")
    parser.add_argument("--seed", type=int, default=0, help="initial weights and shuffling (default: 0)")
    parser.add_argument("--out", default="runs/approx", help="output directory for the PNG (default: %(default)s)")
    parser.add_argument("--json", default=None, help="JSON path (default: OUT/approx.json)")


def run(args) -> int:
    ks = _parse_ks(args.ks)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    if not tasks:
        raise DpfmError("no tasks given", "use e.g. --tasks seed-sum,digits")
    if args.epochs is not None and args.epochs < 1:
        raise DpfmError(f"--epochs must be at least 1, got {args.epochs}", "use e.g. --epochs 20")
    out = Path(args.out)
    json_path = Path(args.json) if args.json else out / "approx.json"
    png = out / "approx.png"
    for path in (json_path, png):
        check_writable(path)
    results = {"study": "approx", "seed": args.seed, "ks": ks, "tasks": {}}
    for name in tasks:
        defaults = STUDY_DEFAULTS.get(name, {"epochs": 20, "formats": ""})
        epochs = args.epochs if args.epochs is not None else defaults["epochs"]
        fmts = HwFormats.parse(args.formats if args.formats is not None else defaults["formats"])
        results["tasks"][name] = study_task(name, ks, epochs, fmts, args.seed)
    write_json(json_path, results)
    print(format_table(results))
    plot(results, png)
    print(f"wrote {json_path} and {png}")
    return 0


def _parse_ks(text: str) -> list[int]:
    try:
        ks = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise DpfmError(f"cannot read K values '{text}'", "give comma-separated integers, e.g. --ks 2,4,8") from None
    if not ks or min(ks) < 1:
        raise DpfmError(f"K values must be positive integers, got '{text}'", "e.g. --ks 2,4,8,16")
    return ks


def study_task(name: str, ks: list[int], epochs: int, fmts: HwFormats, seed: int, log=print) -> dict:
    """Fidelity and training runs of one task; see the module docstring."""
    from dpfm.golden.tasks import get_task
    task = get_task(name)
    X, Y, X_val, Y_val = task.load()
    log(f"{name}: gradient fidelity over {FIDELITY_BATCHES} batches")
    fidelity = gradient_fidelity(task, X, Y, ks, fmts, seed)
    runs = []
    configs = [(m, k) for k in ks for m in MODES] + [(b, None) for b in BASELINES]
    for mode, k in configs:
        runs.append(train_once(task, mode, k, epochs, fmts, seed, X, Y, X_val, Y_val))
        r = runs[-1]
        log(f"{name} {mode:11s} K={k_label(k):>4s}: val loss {r['val_loss']:.5g}  {r['s_per_epoch']:.3f} s/epoch")
    return {"epochs": epochs, "formats": str(fmts), "lr": task.lr, "batch": task.batch,
            "classifier": task.classifier, "fidelity": fidelity, "runs": runs}


def gradient_fidelity(task, X, Y, ks, fmts, seed) -> list[dict]:
    """At the initial weights (same init as training): per K, mean cosine of each hardware toper's and of
    exact top-K's batch gradient to the full fixed-point gradient, and the fraction of batches where a
    hardware gradient differs from exact top-K at all."""
    spec = task.spec
    flat = flatten(spec, init_weights(spec, np.random.default_rng(seed), task.init))
    full = FixedModel(spec, None, fmts)
    w = full.quantize_weights(flat)
    Xr, Yr = full.quantize_inputs(X), full.quantize_inputs(Y, "targets")
    batches = [slice(s, s + task.batch) for s in range(0, len(X), task.batch)][:FIDELITY_BATCHES]
    G_full = [full.batch_gradient(w, Xr[b], Yr[b]).astype(np.float64) for b in batches]
    out = []
    for k in ks:
        ex = FixedModel(spec, k, fmts, "exact")
        g_ex = [ex.batch_gradient(w, Xr[b], Yr[b]) for b in batches]
        rec = {"k": k, "cos_fixed_exact": float(np.mean([_cosine(g, gf) for g, gf in zip(g_ex, G_full)]))}
        for mode in HW_MODES:
            hw = FixedModel(spec, k, fmts, hw_tangent(mode, k))
            g_hw = [hw.batch_gradient(w, Xr[b], Yr[b]) for b in batches]
            key = mode.replace("-", "_")
            rec[f"cos_{key}"] = float(np.mean([_cosine(g, gf) for g, gf in zip(g_hw, G_full)]))
            rec[f"differ_{key}"] = sum(bool(np.any(g != e)) for g, e in zip(g_hw, g_ex)) / len(batches)
        out.append(rec)
    return out


def hw_tangent(mode: str, k: int) -> str:
    """The `FixedModel` tangent of hardware mode `mode` at K: a lane with more sources than the step's
    K + 1 candidates is built with K + 1 of them."""
    org = HW_MODES[mode]
    if org.sources is not None and org.sources > k + 1:
        org = Organisation(parallel=True)
    return org.tangent


def _cosine(a, b) -> float:
    a = np.asarray(a, dtype=np.float64)
    na, nb = np.linalg.norm(a), np.linalg.norm(b)
    return float(a @ b / (na * nb)) if na and nb else 0.0


def train_once(task, mode, k, epochs, fmts, seed, X, Y, X_val, Y_val) -> dict:
    from dpfm.golden.mlp import GoldenTrainer
    from dpfm.golden.tasks import accuracy
    fixed = None if mode.startswith("float") else fmts
    tangent = hw_tangent(mode, k) if mode in HW_MODES else "exact"
    trainer = GoldenTrainer(task.spec, k, lr=task.lr, batch=task.batch, init=task.init, seed=seed,
                            fixed=fixed, tangent=tangent)
    t0 = time.perf_counter()
    hist = trainer.train(X, Y, epochs, X_val, Y_val, progress=False)
    seconds = time.perf_counter() - t0
    rec = {"mode": mode, "k": k, "epochs": epochs, "train_loss": hist["train_loss"][-1],
           "val_loss": hist["val_loss"][-1], "val_curve": hist["val_loss"], "seconds": seconds,
           "s_per_epoch": seconds / epochs}
    if task.classifier:
        rec["val_acc"] = accuracy(trainer.predict(X_val), Y_val)
    if fixed is not None:
        model = trainer._fixed_models[0]  # GoldenTrainer keeps one FixedModel per K
        rec["saturations"] = model.sat.count
        rec["evictions"] = model.evictions
    return rec


def format_table(results: dict) -> str:
    lines = []
    for name, res in results["tasks"].items():
        lines.append(f"\n{name}: {res['epochs']} epochs, lr {res['lr']}, batch {res['batch']}, "
                     f"formats {res['formats']}")
        lines.append(f"{'K':>5} {'cos(serial,full)':>17} {'cos(parallel,full)':>19} {'cos(par-3,full)':>16} "
                     f"{'cos(exact,full)':>16} {'serial != exact':>16} {'parallel != exact':>18} "
                     f"{'par-3 != exact':>15}")
        for f in res["fidelity"]:
            lines.append(f"{f['k']:>5} {f['cos_hw_toper']:>17.4f} {f['cos_hw_parallel']:>19.4f} "
                         f"{f['cos_hw_parallel_3']:>16.4f} {f['cos_fixed_exact']:>16.4f} "
                         f"{f['differ_hw_toper']:>16.0%} {f['differ_hw_parallel']:>18.0%} "
                         f"{f['differ_hw_parallel_3']:>15.0%}")
        acc = res["classifier"]
        head = f"{'mode':<13} {'K':>5} {'train loss':>11} {'val loss':>11}" + (f" {'val acc':>8}" if acc else "")
        lines.append(head + f" {'s/epoch':>8} {'saturations':>12} {'evictions':>12}")
        for r in res["runs"]:
            row = f"{r['mode']:<13} {k_label(r['k']):>5} {r['train_loss']:>11.5g} {r['val_loss']:>11.5g}"
            if acc:
                row += f" {r['val_acc']:>8.3f}"
            row += f" {r['s_per_epoch']:>8.3f} {r.get('saturations', ''):>12} {r.get('evictions', ''):>12}"
            lines.append(row)
    return "\n".join(lines)


def plot(results: dict, path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = results["tasks"]
    fig, axes = plt.subplots(len(tasks), 2, figsize=(11, 3.8 * len(tasks)), squeeze=False)
    for row, (name, res) in zip(axes, tasks.items()):
        ks = results["ks"]
        for mode, style in zip(MODES, ("o-", "D-.", "v-", "s--", "^:")):
            vals = [next(r["val_loss"] for r in res["runs"] if r["mode"] == mode and r["k"] == k) for k in ks]
            row[0].plot(ks, vals, style, label=mode)
        for base, color in zip(BASELINES, ("gray", "black")):
            v = next(r["val_loss"] for r in res["runs"] if r["mode"] == base)
            row[0].axhline(v, color=color, lw=0.8, ls="--", label=f"{base}")
        row[0].set(xlabel="K", ylabel="validation loss", title=f"{name}: after {res['epochs']} epochs")
        row[0].legend(fontsize=8)
        fid = res["fidelity"]
        row[1].plot(ks, [f["cos_hw_toper"] for f in fid], "o-", label="hw-toper")
        row[1].plot(ks, [f["cos_hw_parallel"] for f in fid], "D-.", label="hw-parallel")
        row[1].plot(ks, [f["cos_hw_parallel_3"] for f in fid], "v-", label="hw-parallel-3")
        row[1].plot(ks, [f["cos_fixed_exact"] for f in fid], "s--", label="fixed-exact")
        row[1].set(xlabel="K", ylabel="cosine to full gradient", title=f"{name}: gradient fidelity at init")
        row[1].legend(fontsize=8)
        for ax in row:
            ax.set_xscale("log", base=2)
            ax.set_xticks(ks, [str(k) for k in ks])
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.tight_layout()
    save_figure(fig, path, dpi=120)
