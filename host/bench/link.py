"""`dpfm bench link`: the host link and the co-simulation, measured.

1. Co-simulation speed: simulated clock cycles per second of wall time and per CPU second of the harness
   process (the second does not depend on how busy the machine is), while the host streams words.
2. Bytes per sample on the wire for training, counted by `host.link.LinkClient` over a real training run,
   and the samples/s a 3 Mbaud UART allows with that traffic (the protocol is half duplex: one command in
   flight, so both directions add up; the core's compute time is excluded).
3. Seed-sum trained through the co-simulated board: wall time, and whether the weights equal
   `GoldenTrainer(fixed=HwFormats(), tangent="toper")` bit for bit.
4. The same run over the bus transport (the core's word bus over a socket, golden/contract/bus_socket.py:
   what a PCIe BAR gives, docs/PCIE.md): wall time and co-simulation speed side by side with the UART run,
   and bit-exactness.
5. Beside the UART bound, the compute bound: the core's own cycle counter for the last training batch
   gives cycles per sample; samples/s = clock / cycles at nextpnr's Fmax from a `dpfm build --json` report
   (`--report`), and at the board clocks.
Writes JSON and prints a table.
"""

import os
import time

import numpy as np

from dpfm.golden.contract import wire
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.files import check_writable, write_json

BITS_PER_BYTE = 10  # 8N1


def add_arguments(parser) -> None:
    parser.add_argument("--out", metavar="DIR", default=os.path.join("runs", "bench-link"),
                        help="directory for bench.json (default runs/bench-link)")
    parser.add_argument("--json", metavar="PATH", help="write the JSON here instead of DIR/bench.json")
    parser.add_argument("--task", default="seed-sum", help="task trained through the co-simulation")
    parser.add_argument("--k", type=int, default=8, help="K of the core (default 8)")
    parser.add_argument("--epochs", type=int, default=5,
                        help="epochs trained through the co-simulation (default 5; the task's full run is "
                             "--epochs 250 for seed-sum)")
    parser.add_argument("--words", type=int, default=20000, help="words streamed for the speed test")
    parser.add_argument("--report", metavar="PATH",
                        help="a `dpfm build --json` report of the same configuration, for the compute bound at Fmax")


def board_clocks_mhz() -> list[float]:
    """The clocks the board tops run the core at (boards/clocks.py): iCEBreaker 12 MHz, ULX3S 45 MHz."""
    from dpfm.boards.clocks import sync_clock
    from dpfm.boards.targets import TARGETS
    return sorted({sync_clock(name).sync_hz(t.platform()) / 1e6 for name, t in TARGETS.items()})


def _read_report(path):
    """The `dpfm build --json` report named by --report, or None."""
    if path is None:
        return None
    import json
    try:
        report = json.loads(open(path).read())
        float(report["fmax_mhz"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DpfmError(f"cannot read build report {path}: {exc}",
                        "pass the file written by `dpfm build --board ... --json PATH` for a design that fits") from None
    return report


def _stream_words(client, words: int) -> None:
    from dpfm.golden.contract import regmap
    data = list(range(words))
    base = regmap.address(regmap.REGION_WEIGHTS, 0)
    span = 1 << regmap.REGION_SHIFT
    for start in range(0, words, span):
        client.write(base, data[start:start + span])
    client.read(base, min(words, span))


def run(args) -> int:
    from dpfm.golden.contract.formats import HwFormats
    from dpfm.golden.fixedpoint import quantize
    from dpfm.golden.contract.net import flatten
    from dpfm.golden.mlp import GoldenTrainer
    from dpfm.golden.tasks import get_task
    from dpfm.hw.config import CoreConfig
    from dpfm.host.bus_link import BusClient
    from dpfm.host.device import Device
    from dpfm.host.link import LinkClient, SerialPort
    from dpfm.sim.cosim import Cosim, build, core_slave

    json_path = args.json or os.path.join(args.out, "bench.json")
    check_writable(json_path)
    report = _read_report(args.report)
    task = get_task(args.task)
    X, Y, _, _ = task.load()
    config = CoreConfig.from_task(args.task, args.k)
    t0 = time.perf_counter()
    binary = build(core_slave(config))
    build_seconds = time.perf_counter() - t0

    with Cosim(binary) as sim:
        with LinkClient(SerialPort(sim.url)) as client:
            _stream_words(client, args.words)
        speed = sim.wait_stats(1)

        client = LinkClient(SerialPort(sim.url))
        device = Device(client, config, lr=task.lr, batch=task.batch, init=task.init, seed=0)
        golden = GoldenTrainer(task.spec, args.k, lr=task.lr, batch=task.batch, init=task.init, seed=0,
                               fixed=HwFormats(), tangent="toper")
        before = (client.stats.bytes_out, client.stats.bytes_in, client.stats.commands)
        t0 = time.perf_counter()
        device.train(X, Y, args.epochs, progress=False)
        train_seconds = time.perf_counter() - t0
        counters = device.counters()
        out_b, in_b, commands = (client.stats.bytes_out - before[0], client.stats.bytes_in - before[1],
                                 client.stats.commands - before[2])
        retries = client.stats.retries
        device_raw = device.weights_raw
        device.close()
        train_stats = sim.wait_stats(2)
    with Cosim(build(core_slave(config), "bus")) as sim:
        bus = BusClient(sim.address)
        device = Device(bus, config, lr=task.lr, batch=task.batch, init=task.init, seed=0)
        opened = dict(bus.stats)
        t0 = time.perf_counter()
        device.train(X, Y, args.epochs, progress=False)
        bus_seconds = time.perf_counter() - t0
        accesses = {name: (bus.stats[name] - opened[name]) / (len(X) * args.epochs) for name in bus.stats}
        bus_raw = device.weights_raw
        device.close()
        bus_stats = sim.wait_stats(1)
    golden.train(X, Y, args.epochs, progress=False)
    golden_raw = quantize(flatten(task.spec, golden.weights), config.fmts.w)   # exact: weights are raw / 2**frac
    bit_exact = bool(np.array_equal(device_raw, golden_raw)) and bool(np.array_equal(bus_raw, golden_raw))

    samples = len(X) * args.epochs
    bytes_per_sample = (out_b + in_b) / samples
    cycles_per_sample = counters["last_op_cycles"] / max(counters["last_op_samples"], 1)
    compute = {"cycles_per_train_sample": cycles_per_sample,
               "samples_per_second_at_clock_mhz": {f"{mhz:g}": mhz * 1e6 / cycles_per_sample
                                                   for mhz in board_clocks_mhz()}}
    if report is not None:
        compute["fmax_mhz"] = report["fmax_mhz"]
        compute["samples_per_second_at_fmax"] = report["fmax_mhz"] * 1e6 / cycles_per_sample
    result = {
        "task": args.task, "k": args.k, "build_seconds": build_seconds,
        "cosim": {"cycles": speed["cycles"], "wall_seconds": speed["seconds"], "cpu_seconds": speed["cpu_seconds"],
                  "cycles_per_second": speed["cycles"] / speed["seconds"],
                  "cycles_per_cpu_second": speed["cycles"] / max(speed["cpu_seconds"], 1e-9)},
        "wire": {"bytes_to_device_per_sample": out_b / samples, "bytes_from_device_per_sample": in_b / samples,
                 "bytes_per_sample": bytes_per_sample, "commands_per_sample": commands / samples,
                 "uart_baud": wire.BAUD,
                 "uart_bound_samples_per_second": wire.BAUD / BITS_PER_BYTE / bytes_per_sample},
        "train": {"epochs": args.epochs, "samples": samples, "wall_seconds": train_seconds,
                  "simulated_cycles": train_stats["cycles"], "harness_cpu_seconds": train_stats["cpu_seconds"],
                  "cycles_per_cpu_second": train_stats["cycles"] / max(train_stats["cpu_seconds"], 1e-9),
                  "retries": retries, "bit_exact_vs_golden_toper": bit_exact},
        "bus": {"wall_seconds": bus_seconds, "samples_per_second": samples / bus_seconds,
                "simulated_cycles": bus_stats["cycles"], "harness_cpu_seconds": bus_stats["cpu_seconds"],
                "cycles_per_cpu_second": bus_stats["cycles"] / max(bus_stats["cpu_seconds"], 1e-9),
                "cycles_per_second": bus_stats["cycles"] / max(bus_stats["seconds"], 1e-9),
                "speedup_vs_uart_wall": train_seconds / bus_seconds,
                "per_sample": accesses,
                "bit_exact_vs_golden_toper": bool(np.array_equal(bus_raw, golden_raw))},
        "compute": compute,
    }
    write_json(json_path, result)
    c, w, t = result["cosim"], result["wire"], result["train"]
    rows = [
        ("co-simulation build or cache look-up (s)", f"{build_seconds:.1f}"),
        ("co-simulation speed (cycles/s wall)", f"{c['cycles_per_second']:,.0f}"),
        ("co-simulation speed (cycles/CPU-s)", f"{c['cycles_per_cpu_second']:,.0f}"),
        ("bytes per training sample (to + from)", f"{w['bytes_to_device_per_sample']:.1f} + "
                                                  f"{w['bytes_from_device_per_sample']:.1f}"),
        ("commands per training sample", f"{w['commands_per_sample']:.2f}"),
        (f"UART-bound samples/s at {wire.BAUD / 1e6:g} Mbaud", f"{w['uart_bound_samples_per_second']:,.0f}"),
        ("core cycles per training sample (co-simulated)", f"{cycles_per_sample:.1f}"),
        *((f"compute-bound samples/s at {mhz} MHz", f"{v:,.0f}")
          for mhz, v in compute["samples_per_second_at_clock_mhz"].items()),
        *([(f"compute-bound samples/s at Fmax {report['fmax_mhz']:.1f} MHz",
            f"{compute['samples_per_second_at_fmax']:,.0f}")] if report is not None else
          [("compute-bound samples/s at Fmax", "pass --report (a dpfm build --json output)")]),
        (f"{args.task}: {args.epochs} epochs through the co-simulation (s)", f"{t['wall_seconds']:.2f}"),
        ("  simulated cycles / harness CPU s", f"{t['simulated_cycles']:,} / {t['harness_cpu_seconds']:.2f}"),
        ("  co-simulation speed while training (cycles/CPU-s)", f"{t['cycles_per_cpu_second']:,.0f}"),
        ("  weights equal golden toper bit for bit", "yes" if np.array_equal(device_raw, golden_raw) else "NO"),
        ("the same over the bus transport (s)", f"{bus_seconds:.2f} ({train_seconds / bus_seconds:.1f}x faster)"),
        ("  simulated cycles / harness CPU s", f"{bus_stats['cycles']:,} / {bus_stats['cpu_seconds']:.2f}"),
        ("  co-simulation speed (cycles/s wall, cycles/CPU-s)",
         f"{result['bus']['cycles_per_second']:,.0f}, {result['bus']['cycles_per_cpu_second']:,.0f}"),
        ("  per training sample: read requests / words, write requests / words",
         f"{accesses['read_requests']:.2f} / {accesses['words_read']:.2f}, "
         f"{accesses['write_requests']:.2f} / {accesses['words_written']:.2f}"),
        ("  weights equal golden toper bit for bit", "yes" if result["bus"]["bit_exact_vs_golden_toper"] else "NO"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"wrote {json_path}")
    return 0 if bit_exact else 1
