"""`dpfm bench link`: the host link and the co-simulation, measured.

1. Co-simulation speed: simulated clock cycles per second of wall time and per CPU second of the harness
   process (the second does not depend on how busy the machine is), while the host streams words.
2. Bytes per sample on the wire for training, counted by `host.link.LinkClient` over a real training run,
   and the samples/s a 3 Mbaud UART allows with that traffic (the protocol is half duplex: one command in
   flight, so both directions add up; the core's compute time is excluded).
3. Seed-sum trained through the co-simulated board: wall time, and whether the weights equal
   `GoldenTrainer(fixed=HwFormats(), tangent="toper")` bit for bit.
Writes JSON and prints a table.
"""

import os
import time

import numpy as np

from golden.checkpoint import check_writable, write_json

UART_BAUD = 3_000_000
BITS_PER_BYTE = 10  # 8N1


def add_arguments(parser) -> None:
    parser.add_argument("--out", metavar="DIR", default=os.path.join("runs", "bench-link"),
                        help="directory for bench.json (default runs/bench-link)")
    parser.add_argument("--json", metavar="PATH", help="write the JSON here instead of DIR/bench.json")
    parser.add_argument("--task", default="seed-sum", help="task trained through the co-simulation")
    parser.add_argument("--k", type=int, default=4, help="K of the core (default 4)")
    parser.add_argument("--epochs", type=int, default=5,
                        help="epochs trained through the co-simulation (default 5; the task's full run is "
                             "--epochs 250 for seed-sum)")
    parser.add_argument("--words", type=int, default=20000, help="words streamed for the speed test")


def _stream_words(client, words: int) -> None:
    from hw import regmap
    data = list(range(words))
    base = regmap.address(regmap.REGION_WEIGHTS, 0)
    span = 1 << regmap.REGION_SHIFT
    for start in range(0, words, span):
        client.write(base, data[start:start + span])
    client.read(base, min(words, span))


def run(args) -> int:
    from golden.fixedpoint import HwFormats, quantize
    from golden.net import flatten
    from golden.mlp import GoldenTrainer
    from golden.tasks import get_task
    from hw.config import CoreConfig
    from host.device import Device
    from host.link import LinkClient, SerialPort
    from sim.cosim import Cosim, build, core_slave

    json_path = args.json or os.path.join(args.out, "bench.json")
    check_writable(json_path)
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
        out_b, in_b, commands = (client.stats.bytes_out - before[0], client.stats.bytes_in - before[1],
                                 client.stats.commands - before[2])
        retries = client.stats.retries
        device_raw = device.weights_raw
        device.close()
        train_stats = sim.wait_stats(2)
    golden.train(X, Y, args.epochs, progress=False)
    golden_raw = quantize(flatten(task.spec, golden.weights), config.fmts.w)   # exact: weights are raw / 2**frac
    bit_exact = bool(np.array_equal(device_raw, golden_raw))

    samples = len(X) * args.epochs
    bytes_per_sample = (out_b + in_b) / samples
    result = {
        "task": args.task, "k": args.k, "build_seconds": build_seconds,
        "cosim": {"cycles": speed["cycles"], "wall_seconds": speed["seconds"], "cpu_seconds": speed["cpu_seconds"],
                  "cycles_per_second": speed["cycles"] / speed["seconds"],
                  "cycles_per_cpu_second": speed["cycles"] / max(speed["cpu_seconds"], 1e-9)},
        "wire": {"bytes_to_device_per_sample": out_b / samples, "bytes_from_device_per_sample": in_b / samples,
                 "bytes_per_sample": bytes_per_sample, "commands_per_sample": commands / samples,
                 "uart_baud": UART_BAUD,
                 "uart_bound_samples_per_second": UART_BAUD / BITS_PER_BYTE / bytes_per_sample},
        "train": {"epochs": args.epochs, "samples": samples, "wall_seconds": train_seconds,
                  "simulated_cycles": train_stats["cycles"], "harness_cpu_seconds": train_stats["cpu_seconds"],
                  "retries": retries, "bit_exact_vs_golden_toper": bit_exact},
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
        (f"UART-bound samples/s at {UART_BAUD / 1e6:g} Mbaud", f"{w['uart_bound_samples_per_second']:,.0f}"),
        (f"{args.task}: {args.epochs} epochs through the co-simulation (s)", f"{t['wall_seconds']:.2f}"),
        ("  simulated cycles / harness CPU s", f"{t['simulated_cycles']:,} / {t['harness_cpu_seconds']:.2f}"),
        ("  weights equal golden toper bit for bit", "yes" if bit_exact else "NO"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"wrote {json_path}")
    return 0 if bit_exact else 1
