"""`dpfm bench resident`: resident training (docs/ARITHMETIC.md 7) against streamed training, side by side.

One co-simulated board (Verilator, the gateware UART link, a core whose data set memory holds the task's
training set) trains the task first streamed, then resident, through the same `host.device.Device`:

1. The core's own cycle counter gives cycles per training sample in both modes: streamed, the last
   CTRL_TRAIN batch (the core's compute bound); resident, the last run, shuffling and batch copies included.
   Samples/s at 12 MHz (the iCEBreaker's oscillator) and at the clock a resident iCEBreaker core runs at
   (its PLL, boards/clocks.py) follow; the resident rate's share of the compute bound is the issue's 90%
   target.
2. The wire: bytes per sample the streamed mode moves (what bounds it at 3 Mbaud), and the bytes of the
   resident data set's one upload; with them, end-to-end samples/s of the task's whole schedule at 12 MHz
   and 3 Mbaud in both modes (the host's polls overlap the core's work and are not counted).
3. PyTorch CPU training at batch 1 on the same network, timed in the same run (`bench.hw`).
4. The co-simulation's speed in the streamed and the resident session (simulated cycles per harness CPU
   second).
5. Bit-exactness: the resident run's weights and losses against `GoldenTrainer(..., resident=...)`.
Writes JSON and prints a table.
"""

import os
import time

import numpy as np

from dpfm.golden.contract import regmap, wire
from dpfm.golden.contract.files import check_writable, write_json

BITS_PER_BYTE = 10  # 8N1
#: The iCEBreaker's run clock, the issue's reference (boards/clocks.py).
CLOCK_HZ = 12e6


def add_arguments(parser) -> None:
    parser.add_argument("--out", metavar="DIR", default=os.path.join("runs", "bench-resident"),
                        help="directory for bench.json (default runs/bench-resident)")
    parser.add_argument("--json", metavar="PATH", help="write the JSON here instead of DIR/bench.json")
    parser.add_argument("--task", default="seed-sum", help="task trained (default seed-sum)")
    parser.add_argument("--k", type=int, default=8, help="K of the core (default 8)")
    parser.add_argument("--epochs", type=int, default=2 * regmap.LOSS_HISTORY,
                        help=f"resident epochs (default {2 * regmap.LOSS_HISTORY}: two runs)")


def run(args) -> int:
    from dpfm.boards.clocks import sync_clock
    from dpfm.boards.targets import get_target
    from dpfm.golden.contract.formats import HwFormats
    from dpfm.golden.mlp import GoldenTrainer
    from dpfm.golden.tasks import get_task
    from dpfm.host.bench.hw import torch_samples_per_s
    from dpfm.host.device import Device
    from dpfm.host.link import LinkClient, SerialPort
    from dpfm.hw.config import CoreConfig
    from dpfm.sim.cosim import Cosim, build, core_slave

    json_path = args.json or os.path.join(args.out, "bench.json")
    check_writable(json_path)
    task = get_task(args.task)
    X, Y, _, _ = task.load()
    n = len(X)
    lr = task.lr_for(args.k)
    config = CoreConfig.from_task(args.task, args.k, resident=n)
    resident_hz = sync_clock("icebreaker", config).sync_hz(get_target("icebreaker").platform())
    binary = build(core_slave(config))
    settings = {"lr": lr, "batch": task.batch, "init": task.init, "seed": 0, "dither": True}

    with Cosim(binary) as sim:
        client = LinkClient(SerialPort(sim.url))
        with Device(client, config, **settings) as device:
            before = client.stats.bytes_out + client.stats.bytes_in
            device.train(X, Y, 1, progress=False)
            streamed_bytes = client.stats.bytes_out + client.stats.bytes_in - before
            streamed = device.counters()
        client = LinkClient(SerialPort(sim.url))     # a session of its own: the co-simulation's speed in it
        with Device(client, config, **settings) as device:
            before = client.stats.bytes_out + client.stats.bytes_in
            device._upload_data_set(*(device._quantize(a, "data") for a in (X, Y)))
            upload_bytes = client.stats.bytes_out + client.stats.bytes_in - before
            t0 = time.perf_counter()
            losses = device.train(X, Y, args.epochs, progress=False, resident=regmap.LOSS_HISTORY)["train_loss"]
            resident_seconds = time.perf_counter() - t0
            resident = device.counters()
            device_raw = device.weights_raw
        streamed_session, session = sim.wait_stats(1), sim.wait_stats(2)
    golden = GoldenTrainer(task.spec, args.k, fixed=HwFormats(), tangent="toper", **settings)
    golden_losses = golden.train(X, Y, args.epochs, progress=False, resident=regmap.LOSS_HISTORY)["train_loss"]
    bit_exact = bool(np.array_equal(device_raw, golden._raw[0])) and losses == golden_losses
    torch_rate = torch_samples_per_s(task.spec)

    last_run = args.epochs - (args.epochs - 1) // regmap.LOSS_HISTORY * regmap.LOSS_HISTORY
    streamed_cps = streamed["last_op_cycles"] / streamed["last_op_samples"]
    resident_cps = resident["last_op_cycles"] / (last_run * n)
    bytes_per_sample = streamed_bytes / n
    schedule = task.epochs * n
    uart_bytes_per_s = wire.BAUD / BITS_PER_BYTE
    streamed_e2e = schedule / (schedule * bytes_per_sample / uart_bytes_per_s + schedule * streamed_cps / CLOCK_HZ)
    resident_e2e = schedule / (upload_bytes / uart_bytes_per_s + schedule * resident_cps / CLOCK_HZ)
    result = {
        "task": args.task, "k": args.k, "n_train": n, "batch": task.batch, "clock_mhz": CLOCK_HZ / 1e6,
        "uart_baud": wire.BAUD,
        "streamed": {"cycles_per_sample": streamed_cps, "compute_bound_samples_per_s": CLOCK_HZ / streamed_cps,
                     "bytes_per_sample": bytes_per_sample,
                     "uart_bound_samples_per_s": uart_bytes_per_s / bytes_per_sample,
                     "end_to_end_samples_per_s": streamed_e2e},
        "resident": {"epochs": args.epochs, "cycles_per_sample": resident_cps,
                     "samples_per_s": CLOCK_HZ / resident_cps,
                     "resident_clock_mhz": resident_hz / 1e6,
                     "samples_per_s_at_resident_clock": resident_hz / resident_cps,
                     "share_of_compute_bound": streamed_cps / resident_cps,
                     "upload_bytes": upload_bytes, "upload_seconds": upload_bytes / uart_bytes_per_s,
                     "end_to_end_samples_per_s": resident_e2e, "wall_seconds": resident_seconds,
                     "bit_exact_vs_golden": bit_exact},
        "schedule": {"epochs": task.epochs, "samples": schedule},
        "torch_batch1_samples_per_s": torch_rate,
        "resident_vs_torch": CLOCK_HZ / resident_cps / torch_rate,
        "cosim": {name: {"cycles": stats["cycles"], "cpu_seconds": stats["cpu_seconds"],
                         "cycles_per_cpu_second": stats["cycles"] / max(stats["cpu_seconds"], 1e-9)}
                  for name, stats in (("streamed", streamed_session), ("resident", session))},
    }
    write_json(json_path, result)
    s, r = result["streamed"], result["resident"]
    rows = [
        ("core cycles per training sample: streamed / resident", f"{streamed_cps:.1f} / {resident_cps:.1f}"),
        (f"resident samples/s at {CLOCK_HZ / 1e6:g} MHz (share of the compute bound)",
         f"{r['samples_per_s']:,.0f} ({r['share_of_compute_bound']:.1%})"),
        (f"resident samples/s at the resident iCEBreaker clock, {resident_hz / 1e6:g} MHz",
         f"{resident_hz / resident_cps:,.0f}"),
        (f"streamed: bytes per sample, UART-bound samples/s at {wire.BAUD / 1e6:g} Mbaud",
         f"{bytes_per_sample:.1f}, {s['uart_bound_samples_per_s']:,.0f}"),
        ("resident: data set upload (bytes, s)", f"{upload_bytes:,}, {r['upload_seconds']:.3f}"),
        (f"end to end over {task.epochs} epochs at {CLOCK_HZ / 1e6:g} MHz: streamed / resident (samples/s)",
         f"{streamed_e2e:,.0f} / {resident_e2e:,.0f} ({resident_e2e / streamed_e2e:.1f}x)"),
        ("PyTorch CPU batch 1 (samples/s), resident's multiple of it",
         f"{torch_rate:,.0f}, {result['resident_vs_torch']:.1f}x"),
        ("co-simulation speed, streamed / resident session (cycles/CPU-s)",
         f"{result['cosim']['streamed']['cycles_per_cpu_second']:,.0f} / "
         f"{result['cosim']['resident']['cycles_per_cpu_second']:,.0f}"),
        (f"resident {args.epochs} epochs: weights and losses equal golden", "yes" if bit_exact else "NO"),
    ]
    width = max(len(row[0]) for row in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"wrote {json_path}")
    return 0 if bit_exact else 1
