"""`dpfm bench finetune`: the core's cycles per training sample when every layer learns against when only the
last one does (docs/ARITHMETIC.md 3e), measured side by side in one run.

Both are bit-exact simulations of the core's Verilog (sim/tb_core.py against the golden toper model, with
REG_TRAIN_MASK written), one full training batch each. The frozen layers' share of the MAC steps is what
their primal pass still costs at one step per cycle; what freezing removes is their tangent work (the
direct candidates, and every slot they would have carried into the layers above).
"""

import tempfile
from pathlib import Path

from dpfm.golden.contract.files import check_writable, write_json
from dpfm.hw.config import CoreConfig
from dpfm.sim.core_cycles import measure_cycles

#: (task, K, lanes, toper) measured by default: the iCEBreaker's seed-sum core, the ECP5's digits cores.
DEFAULT_CONFIGS = [("seed-sum", 8, 1, "serial"), ("digits", 8, 1, "serial"), ("digits", 8, 1, "parallel-3")]


def bench_config(task: str, k: int, lanes: int, toper: str, work: Path) -> dict:
    cfg = CoreConfig.from_task(task, k, max_batch=16, lanes=lanes, toper=toper)
    spec = cfg.spec
    last = spec.n_layers - 1
    steps = [spec.layer_shape(l)[0] * (spec.layer_shape(l)[1] + 1) for l in range(spec.n_layers)]
    name = f"{task}_k{k}_l{lanes}_{toper}"
    every = measure_cycles(cfg, task, work / f"{name}_all")
    tuned = measure_cycles(cfg, task, work / f"{name}_last", train_layers=(last,))
    all_c, last_c = every["train_cycles_per_sample"], tuned["train_cycles_per_sample"]
    return {"task": task, "sizes": list(spec.sizes), "k": k, "lanes": lanes, "toper": toper,
            "ideal_cycles_per_sample": every["ideal_cycles_per_sample"],
            "all_layers_cycles_per_sample": all_c, "last_layer_cycles_per_sample": last_c,
            "reduction": 1.0 - last_c / all_c, "frozen_mac_share": sum(steps[:last]) / sum(steps),
            "tangent_cycles_all": all_c - every["ideal_cycles_per_sample"],
            "tangent_cycles_last": last_c - every["ideal_cycles_per_sample"]}


def format_table(rows: list) -> str:
    head = (f"{'task':<9} {'K':>2} {'toper':<10} {'ideal':>7} {'all layers':>10} {'last only':>9} "
            f"{'reduction':>9} {'frozen MAC share':>16}")
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['task']:<9} {r['k']:>2} {r['toper']:<10} {r['ideal_cycles_per_sample']:>7.1f} "
                     f"{r['all_layers_cycles_per_sample']:>10.1f} {r['last_layer_cycles_per_sample']:>9.1f} "
                     f"{r['reduction']:>9.1%} {r['frozen_mac_share']:>16.1%}")
    return "\n".join(lines)


def add_arguments(parser) -> None:
    parser.add_argument("--config", action="append", default=None, metavar="TASK:K:LANES:TOPER",
                        help="a configuration to measure (repeatable); default: "
                             + ", ".join(":".join(map(str, c)) for c in DEFAULT_CONFIGS))
    parser.add_argument("--work-dir", default=None, help="where the simulations go (default: a temp dir)")
    parser.add_argument("--json", default="bench_finetune.json", help="JSON output path")


def _parse_config(text: str) -> tuple:
    from dpfm.golden.contract.errors import DpfmError
    from dpfm.golden.contract.organisation import Organisation
    try:
        task, k, lanes, toper = text.split(":")
        Organisation.parse(toper)
        return task, int(k), int(lanes), toper
    except (ValueError, DpfmError):
        raise DpfmError(f"cannot read configuration '{text}'", "write TASK:K:LANES:TOPER, e.g. digits:8:1:serial") \
            from None


def run(args) -> int:
    configs = [_parse_config(c) for c in args.config] if args.config else DEFAULT_CONFIGS
    check_writable(args.json)
    with tempfile.TemporaryDirectory(prefix="dpfm_bench_finetune_") as tmp:
        work = Path(args.work_dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        rows = []
        for config in configs:
            rows.append(bench_config(*config, work))
            write_json(args.json, rows)
    print(format_table(rows))
    print(f"wrote {args.json}")
    return 0
