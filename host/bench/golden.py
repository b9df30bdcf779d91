"""`dpfm bench golden`: how fast the golden trainer is, against PyTorch CPU backprop, in the same run.

Measures (a) the wall time of the seed's full sweep (K = 2..64 and full, 250 epochs each, seed-sum) with
all K trained side by side, against the target of 15 s, (b) seconds per epoch of the golden trainer (K=8 and
full, one K per trainer) and of a plain PyTorch loop (torch.nn, same net, initial weights, data, batch size,
SGD and learning rate), and (c) the same on MNIST's 784-16-16-10 at batch 10 over the first `--mnist`
training images (when the cache is there), with K=8 in both tangent layouts (`golden.slots` against the
dense rows) and its target: within 2x of PyTorch. Each group's timings are interleaved and each is the best
of several repeats, so load from other processes affects them alike and least. Writes JSON, prints a table.
"""

import os
import platform
import time

import numpy as np

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import check_writable, write_json
from dpfm.golden.mlp import GoldenTrainer
from dpfm.golden.tasks import get_task
from dpfm.host.torch_reference import torch_mlp

SWEEP_KS = (2, 4, 8, 16, 32, 64, None)
SWEEP_TARGET_S = 15.0
#: MNIST: golden K=8 (slots) per epoch within this factor of PyTorch's (issue 11's target).
MNIST_TARGET_RATIO = 2.0
MNIST_BATCH = 10


def add_arguments(parser) -> None:
    parser.add_argument("--out", metavar="DIR", default=os.path.join("runs", "bench-golden"),
                        help="directory for bench.json (default runs/bench-golden)")
    parser.add_argument("--json", metavar="PATH", help="write the JSON here instead of DIR/bench.json")
    parser.add_argument("--epochs", type=int, default=10, help="epochs per per-epoch measurement (default 10)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats; the best is kept (default 3)")
    parser.add_argument("--mnist", type=int, default=2000, metavar="N",
                        help="MNIST training images per timed epoch (default 2000; 0 skips MNIST)")


def _check(args):
    for name in ("epochs", "repeats"):
        if getattr(args, name) < 1:
            raise DpfmError(f"--{name} must be at least 1, got {getattr(args, name)}", f"e.g. --{name} 3")
    if args.mnist < 0:
        raise DpfmError(f"--mnist must be at least 0, got {args.mnist}", "e.g. --mnist 2000, or 0 to skip MNIST")


def _best_per_epoch(fns: dict, epochs: int, repeats: int) -> dict:
    """Seconds per epoch of each function, the best of `repeats` interleaved rounds after one warm-up."""
    for fn in fns.values():  # warm-up: imports, caches, allocator
        fn()
    best = {name: float("inf") for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            best[name] = min(best[name], _per_epoch(fn, epochs))
    return best


def _mnist_timings(images: int, repeats: int):
    """Per-epoch seconds on the first `images` MNIST training images (batch 10), or None with the reason."""
    from dpfm.golden.tasks import with_overrides
    try:
        task = with_overrides(get_task("mnist"), batch=MNIST_BATCH, momentum=0.0)
        X, Y, _, _ = task.load()
    except DpfmError as exc:
        return None, f"skipped: {exc}"
    X, Y = X[:images], Y[:images]
    golden = {name: GoldenTrainer(task.spec, k, lr=task.lr, batch=task.batch, init=task.init, layout=layout,
                                  dither=True)
              for name, k, layout in (("golden K=8 (slots)", 8, "slots"), ("golden K=8 (dense)", 8, "dense"),
                                      ("golden full", None, "dense"))}
    fns = {name: (lambda t=t: t.train(X, Y, 1, progress=False)) for name, t in golden.items()}
    torch_epoch, _ = _torch_epoch_timer(task, golden["golden full"].weights, X, Y)
    if torch_epoch is not None:
        fns["pytorch backprop"] = torch_epoch
    return _best_per_epoch(fns, 1, repeats), f"first {len(X)} training images, batch {task.batch}, dither on"


def _torch_epoch_timer(task, layers, X, Y):
    """A function running one PyTorch epoch (returning its mean loss), or None without torch."""
    try:
        import torch
    except ImportError:
        return None, None
    torch.set_num_threads(1)  # tiny matrices: extra threads only add synchronisation
    net = torch_mlp(task.spec, layers)
    opt = torch.optim.SGD(net.parameters(), lr=task.lr)
    loss_fn = torch.nn.MSELoss()
    Xt = torch.from_numpy(X.astype(np.float32))
    Yt = torch.from_numpy(Y.astype(np.float32))
    rng = np.random.default_rng(0)

    def epoch():
        order = torch.from_numpy(rng.permutation(len(X)))
        total = 0.0
        for start in range(0, len(X), task.batch):
            idx = order[start:start + task.batch]
            opt.zero_grad()
            loss = loss_fn(net(Xt[idx]), Yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        return total / len(X)

    return epoch, {"version": torch.__version__, "threads": torch.get_num_threads(), "dtype": "float32"}


def _per_epoch(fn, epochs) -> float:
    start = time.perf_counter()
    for _ in range(epochs):
        fn()
    return (time.perf_counter() - start) / epochs


def run(args) -> int:
    _check(args)
    json_path = args.json or os.path.join(args.out, "bench.json")
    check_writable(json_path)
    task = get_task("seed-sum")
    X, Y, X_val, Y_val = task.load()
    load_start = os.getloadavg()[0]  # other processes on a shared machine skew timings; record how busy it was

    # (a) the full sweep, all K side by side
    sweeper = GoldenTrainer(task.spec, list(SWEEP_KS), lr=task.lr, batch=task.batch)
    start = time.perf_counter()
    sweeper.train(X, Y, task.epochs, X_val, Y_val, progress=False)
    sweep_s = time.perf_counter() - start
    final = dict(zip(["full" if k is None else str(k) for k in SWEEP_KS], sweeper.history["train_loss"][-1]))

    # (b) per-epoch timings, interleaved
    golden = {name: GoldenTrainer(task.spec, k, lr=task.lr, batch=task.batch) for name, k in
              (("golden K=8", 8), ("golden full", None))}
    fns = {name: (lambda t=t: t.train(X, Y, 1, progress=False)) for name, t in golden.items()}
    torch_epoch, torch_info = _torch_epoch_timer(task, golden["golden full"].weights, X, Y)
    if torch_epoch is not None:
        fns["pytorch backprop"] = torch_epoch
    best = _best_per_epoch(fns, args.epochs, args.repeats)
    mnist, mnist_note = _mnist_timings(args.mnist, args.repeats) if args.mnist else (None, "skipped: --mnist 0")

    torch_s = best.get("pytorch backprop")
    result = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpus": os.cpu_count(), "numpy": np.__version__,
                    "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]}},
        "sweep": {"task": task.name, "ks": ["full" if k is None else k for k in SWEEP_KS], "epochs": task.epochs,
                  "seconds": sweep_s, "target_seconds": SWEEP_TARGET_S, "meets_target": sweep_s < SWEEP_TARGET_S,
                  "final_train_loss": final},
        "per_epoch_seconds": {name: s for name, s in best.items()},
        "ratio_to_pytorch": _ratios(best),
        "pytorch": torch_info if torch_info is not None else "not installed: column skipped",
        "mnist": _mnist_result(mnist, mnist_note),
        "measurement": f"best of {args.repeats} x {args.epochs} epochs, interleaved, after one warm-up epoch",
    }

    print(f"golden sweep (seed-sum, K={','.join(str(k) for k in result['sweep']['ks'])}, "
          f"{task.epochs} epochs): {sweep_s:.2f} s (target < {SWEEP_TARGET_S:.0f} s: "
          f"{'met' if result['sweep']['meets_target'] else 'MISSED'})")
    print(f"machine load average (1 min): {load_start:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    if torch_s is None:
        print("PyTorch is not installed: the PyTorch column is skipped")
    _print_table(best)
    print(f"MNIST 784-16-16-10: {mnist_note}")
    if mnist is not None:
        _print_table(mnist)
        ratio = result["mnist"]["ratio_to_pytorch"]
        if ratio is not None:
            print(f"golden K=8 (slots) is {ratio['golden K=8 (slots)']:.1f}x PyTorch (target < "
                  f"{MNIST_TARGET_RATIO:.0f}x: {'met' if result['mnist']['meets_target'] else 'MISSED'})")
    write_json(json_path, result)
    print(f"wrote {json_path}")
    return 0


def _ratios(best: dict):
    """Each golden trainer's time over PyTorch's, or None without PyTorch."""
    torch_s = best.get("pytorch backprop")
    return None if torch_s is None else {n: s / torch_s for n, s in best.items() if n != "pytorch backprop"}


def _mnist_result(best, note):
    if best is None:
        return {"note": note}
    ratio = _ratios(best)
    return {"note": note, "per_epoch_seconds": best, "ratio_to_pytorch": ratio,
            "target_ratio": MNIST_TARGET_RATIO,
            "meets_target": None if ratio is None else ratio["golden K=8 (slots)"] < MNIST_TARGET_RATIO}


def _print_table(best: dict) -> None:
    torch_s = best.get("pytorch backprop")
    print(f"{'trainer':<20} {'s/epoch':>9} {'x PyTorch':>10}")
    for name, s in best.items():
        ratio = "-" if torch_s is None else f"{s / torch_s:.2f}"
        print(f"{name:<20} {s:>9.4f} {ratio:>10}")
