"""`dpfm info`: what the core behind a serial port was built for (its identity block), and where it stands: its
counters, status, dither state and train mask (what `dpfm train --attach` takes over)."""

from dpfm.golden.contract import regmap as R
from dpfm.golden.contract import wire
from dpfm.golden.contract.files import check_writable, write_json


def register(subparsers):
    p = subparsers.add_parser("info", help="show what the core on a board (or co-simulation) was built for",
                              description=__doc__)
    p.add_argument("--port", required=True, help="serial port of the board, or the url `dpfm sim serve` prints")
    p.add_argument("--baud", type=int, default=wire.BAUD, help="UART rate of the bitstream (default %(default)s)")
    p.add_argument("--json", metavar="PATH", help="also write the description as JSON")
    p.set_defaults(func=run)


def run(args) -> int:
    from dpfm.host.core_identity import read_core_id, read_identity
    from dpfm.host.link import LinkClient, SerialPort
    from dpfm.hw.identity import source_hash

    if args.json:
        check_writable(args.json)
    with LinkClient(SerialPort(args.port, args.baud)) as client:
        core_id = read_core_id(client)
        identity = read_identity(client)
        counters = {name: client.read(R.address(R.REGION_REGS, reg), 1)[0] for name, reg in (
            ("samples_done", R.REG_SAMPLES_DONE), ("saturations", R.REG_SATURATIONS),
            ("evictions", R.REG_EVICTIONS), ("dither_state", R.REG_DITHER), ("status", R.REG_STATUS),
            ("train_mask", R.REG_TRAIN_MASK))}
    info = {"port": args.port, "core_id": f"{core_id:#010x}", "contract_revision": core_id & 0xFFFF,
            "build_id": f"{identity.build_id:08x}", **vars(identity),
            "same_sources_as_host": identity.src == source_hash(), "counters": counters}
    print(format_info(info))
    if args.json:
        write_json(args.json, info)
    return 0


def format_info(info: dict) -> str:
    sources = "this dpfm's" if info["same_sources_as_host"] else "other sources than this dpfm's"
    lines = [f"dpfm core on {info['port']}: id {info['core_id']} (contract revision {info['contract_revision']}), "
             f"build {info['build_id']}, built from {sources} (src {info['src']})",
             f"  network  {info['sizes']}  activations {info['act']}",
             f"  formats  x={info['x']} w={info['w']} t={info['t']} g={info['g']} lr={info['lr']} "
             f"lut_bits={info['lut_bits']}",
             f"  K={info['k']}  toper {info['toper']}  lanes {info['lanes']}  max_batch {info['max_batch']}  "
             f"UART {info['baud']} baud",
             "  counters " + "  ".join(f"{name} {value}" for name, value in info["counters"].items())]
    return "\n".join(lines)
