"""`dpfm build`: bitstream for a board, with resources, Fmax, cycles per training sample and samples/s."""

from pathlib import Path

from dpfm.golden.contract.files import check_writable, write_json


def register(subparsers):
    from dpfm.boards.targets import TARGETS
    from dpfm.host.options import add_core_arguments
    p = subparsers.add_parser("build", help="build a bitstream for a board and report resources and Fmax",
                              description="Synthesize, place and route the core plus the UART link for a board.")
    p.add_argument("--board", required=True, choices=sorted(TARGETS), help="target board")
    add_core_arguments(p, default_task=None)
    p.add_argument("--build-dir", default=None, help="build directory (default build/<board>)")
    p.add_argument("--program", action="store_true", help="load the bitstream onto a connected board")
    p.add_argument("--json", default=None, help="also write the report as JSON to this path")
    p.set_defaults(func=run)


def run(args) -> int:
    from dpfm.boards.build import build_board
    from dpfm.boards.targets import get_target
    from dpfm.host.options import config_from_args

    from dpfm.sim.core_cycles import measure_cycles

    target = get_target(args.board)
    task = target.default_task if args.task is None else args.task
    cfg = config_from_args(args, task=task)
    if args.json:
        check_writable(args.json)   # a build takes minutes: refuse an unwritable report path first
    build_dir = Path(args.build_dir or Path("build") / args.board)
    report = build_board(args.board, cfg, build_dir, program=args.program)
    cycles = measure_cycles(cfg, task, build_dir / "sim")
    summary = summarize(report, cfg, cycles)
    print(format_summary(summary))
    if args.json:
        write_json(args.json, summary)
    return 0 if report.fits else 1


def summarize(report, cfg, cycles: dict) -> dict:
    """The build report plus the throughput it implies: `cycles` is `sim.core_cycles.measure_cycles`' result
    (one simulated training batch of the task's data, checked bit for bit)."""
    from dpfm.boards.targets import get_target

    per_sample = cycles["train_cycles_per_sample"]
    out = {
        **report.to_json(),
        "sizes": list(cfg.spec.sizes), "k": cfg.k, "lanes": cfg.lanes, "toper": str(cfg.toper),
        "max_batch": cfg.max_batch,
        "baud": get_target(report.board).baud,
        "cycles_per_train_sample": per_sample,
        "ideal_cycles_per_sample": cycles["ideal_cycles_per_sample"],
    }
    if report.fits:
        out["samples_per_s_at_fmax"] = report.fmax_mhz * 1e6 / per_sample
        out["samples_per_s_at_run_clock"] = report.clock_mhz * 1e6 / per_sample
    return out


def format_summary(s: dict) -> str:
    lines = [f"board {s['board']}: net {s['sizes']} K={s['k']} lanes={s['lanes']} toper={s['toper']} "
             f"max_batch={s['max_batch']}"]
    for name, use in s["resources"].items():
        lines.append(f"  {name:<6} {use['used']:>6} / {use['available']:<6} "
                     f"({100 * use['used'] / max(1, use['available']):.0f}%)")
    lines.append(f"  cycles per training sample {s['cycles_per_train_sample']:.1f} "
                 f"(ideal {s['ideal_cycles_per_sample']:.1f}, measured in simulation)")
    if s["fits"]:
        lines += [
            f"  Fmax   {s['fmax_mhz']:.1f} MHz, run clock {s['clock_mhz']:.1f} MHz: timing "
            f"{'met' if s['timing_met'] else 'NOT MET'} ({s['clock_source']})",
            f"  samples/s {s['samples_per_s_at_fmax']:.0f} at Fmax, "
            f"{s['samples_per_s_at_run_clock']:.0f} at the run clock",
        ]
    else:
        lines.append(f"  DOES NOT FIT: {s['error']}")
    if s.get("bitstream"):
        lines.append(f"  bitstream {s['bitstream']}")
    lines.append(f"  UART {s['baud']} baud: train with --backend board --port PORT --baud {s['baud']}")
    return "\n".join(lines)
