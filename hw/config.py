"""One training-core configuration: the network, K, number formats and buffer sizes, validated once.

Every width the gateware needs (weight-id bits, address bits, accumulator widths) is derived here so the
core, the board flow and the host agree on them; anything the core cannot build raises `DpfmError` before
Amaranth sees it.
"""

import argparse
from dataclasses import dataclass, field

from golden.errors import DpfmError
from golden.fixedpoint import HwFormats, quantize
from golden.net import NetSpec
from golden.toper import check_tangent_mode, parallel_sources
from hw import regmap

#: The MAC lane's toper organisations (docs/ARITHMETIC.md 3.3 / 3b): "serial", "parallel" (K + 1 source
#: topers) or "parallel-S" (S source topers, 2 <= S <= K + 1).
TOPERS = ("serial", "parallel", "parallel-S")


def check_toper(toper: str) -> str:
    """`toper` if it names an organisation of `TOPERS` (its S is checked against K by `CoreConfig`), else
    `DpfmError`."""
    if toper == "serial":
        return toper
    try:
        check_tangent_mode(f"toper-{toper}")
    except DpfmError:
        raise DpfmError(f"unknown toper organisation '{toper}'", f"use one of {', '.join(TOPERS)}") from None
    if toper == "parallel-1":
        raise DpfmError("parallel-1 would be the serial lane", "use --toper serial for one source")
    return toper


def toper_arg(text: str) -> str:
    """argparse type of `--toper` (`check_toper`)."""
    try:
        return check_toper(text)
    except DpfmError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def toper_name(k: int, sources: int | None) -> str:
    """The toper organisation of a lane with `sources` source topers at K = `k` (0 or None: serial)."""
    if not sources:
        return "serial"
    return "parallel" if sources == k + 1 else f"parallel-{sources}"


def toper_for_tangent(tangent: str | None) -> str | None:
    """The toper organisation whose lane computes golden tangent mode `tangent` (None for "exact")."""
    check_tangent_mode(tangent or "toper")
    if tangent in (None, "toper"):
        return "serial"
    return tangent[len("toper-"):] if tangent.startswith("toper-parallel") else None

#: Activations the core has a datapath for (LUT activations plus the identity pass-through).
SUPPORTED_ACTIVATIONS = ("sigmoid", "tanh", "relu", "identity")

#: Usable on-chip RAM bits per board (block RAM only; what the core's memories must fit in).
BOARD_RAM_BITS = {
    "icebreaker": 30 * 4096,     # UP5K: 30 EBR of 4 kbit (yosys does not infer the SPRAMs for these memories)
    "ulx3s-85f": 208 * 18 * 1024,              # ECP5-85: 208 DP16KD of 18 kbit
}


def _bits_for(n: int) -> int:
    """Bits to hold values 0 .. n-1 (at least 1)."""
    return max(1, (n - 1).bit_length())


@dataclass(frozen=True)
class CoreConfig:
    """A validated training-core configuration.

    `max_batch` is the number of samples the on-chip buffer holds (one CTRL_TRAIN uses up to that many);
    `lanes` is the number of neurons computed in parallel; `toper` is "serial" (one multiplier and one toper
    per lane, a MAC step costs 1 + valid slots cycles), "parallel" (K + 1 multipliers, K + 1 source topers
    and a merge tree per lane, one cycle per MAC step) or "parallel-S" (S source topers, so a step's K + 1
    candidates take ceil(candidates / S) cycles: most of the parallel lane's speed for a fraction of its
    topers).
    """

    spec: NetSpec
    k: int
    fmts: HwFormats = field(default_factory=HwFormats)
    max_batch: int = 16
    lanes: int = 1
    toper: str = "serial"

    def __post_init__(self):
        spec = self.spec
        if not isinstance(self.k, int) or self.k < 1:
            raise DpfmError(f"the core needs K >= 1 tangent slots, got K={self.k}",
                            "pass --k 1 or more (K=full is only available in the golden model)")
        if self.k > 255:
            raise DpfmError(f"K={self.k} does not fit the CONFIG0 register", "use K <= 255")
        check_toper(self.toper)
        if (self.sources or 0) > 255:
            raise DpfmError(f"toper '{self.toper}' has {self.sources} source topers at K={self.k}, more than "
                            "CONFIG0 holds", "use parallel-S with S <= 255")
        if spec.loss != "mse":
            raise DpfmError(f"the core implements the MSE loss only, the network uses '{spec.loss}'",
                            "train with --loss mse on hardware")
        for a in spec.activations:
            if a not in SUPPORTED_ACTIVATIONS:
                raise DpfmError(f"the core has no datapath for activation '{a}'",
                                f"use one of {', '.join(SUPPORTED_ACTIVATIONS)}")
        if not isinstance(self.lanes, int) or not 1 <= self.lanes <= min(255, max(spec.sizes[1:])):
            raise DpfmError(f"lanes={self.lanes} does not fit a network whose widest layer has "
                            f"{max(spec.sizes[1:])} units", "use 1 <= lanes <= the widest layer")
        if not 1 <= self.max_batch:
            raise DpfmError(f"max_batch must be >= 1, got {self.max_batch}", "use a positive batch buffer size")
        if spec.n_layers > 15 or max(spec.sizes) > 0xFFFF:
            raise DpfmError(f"network {list(spec.sizes)} does not fit the layer-size registers",
                            "use at most 15 layers of at most 65535 units")
        limit = regmap.INDEX_MASK + 1
        if spec.n_params > limit:
            raise DpfmError(f"{spec.n_params} parameters exceed the {limit}-word weight region",
                            "use a smaller network")
        for what, words in (("sample", self.max_batch * (spec.n_inputs + spec.n_outputs)),
                            ("output", self.max_batch * spec.n_outputs)):
            if words > limit:
                raise DpfmError(f"max_batch={self.max_batch} needs {words} {what} words, more than the "
                                f"{limit}-word region", "use a smaller max_batch")
        if max(self.fmts.w.bits, self.fmts.x.bits, self.fmts.lr.bits) > regmap.DATA_BITS:
            raise DpfmError("weights, samples and lr must fit a 32-bit bus word", "use formats of at most 32 bits")

    # --- derived widths -------------------------------------------------------------------------------

    @property
    def tangent(self) -> str:
        """The `golden.fixed_mlp.FixedModel` tangent mode this core computes bit for bit."""
        return "toper" if self.toper == "serial" else f"toper-{self.toper}"

    @property
    def parallel(self) -> bool:
        """The lanes are parallel lanes (docs/ARITHMETIC.md 3b)."""
        return self.toper != "serial"

    @property
    def sources(self) -> int | None:
        """Source topers per parallel lane (None for the serial lane)."""
        return parallel_sources(self.tangent, self.k)

    @property
    def config0(self) -> int:
        """The CONFIG0 register (hw/regmap.py): what the host checks before it trusts the core."""
        return self.k | (self.spec.n_layers << 8) | (self.lanes << 16) | ((self.sources or 0) << 24)

    @property
    def n_params(self) -> int:
        return self.spec.n_params

    @property
    def id_bits(self) -> int:
        """Bits of a weight-id (0 .. P-1)."""
        return _bits_for(self.spec.n_params)

    @property
    def max_width(self) -> int:
        """Widest layer output (units per scratch bank)."""
        return max(self.spec.sizes[1:])

    @property
    def sample_words(self) -> int:
        return self.spec.n_inputs + self.spec.n_outputs

    @property
    def delta_scale_raw(self) -> int:
        """`c = quantize(2 / n_out, x)` of the MSE gradient (docs/ARITHMETIC.md 3.5)."""
        return int(quantize(2.0 / self.spec.n_outputs, self.fmts.x))

    @property
    def macs_per_sample(self) -> int:
        """MAC steps of one forward pass (bias steps included): the work the lanes share."""
        return sum(o * (i + 1) for o, i in (self.spec.layer_shape(l) for l in range(self.spec.n_layers)))

    def memory_bits(self) -> int:
        """On-chip RAM bits of the core's memories (weights, gradients, samples, outputs, scratch, LUTs)."""
        f = self.fmts
        spec = self.spec
        slot = f.t.bits + self.id_bits + 1
        lut_kinds = len({a for a in spec.activations if a != "identity"})
        return (spec.n_params * (f.w.bits * (self.lanes + 1) + f.g.bits)  # W copies (+ bus port) and G
                + self.max_batch * self.sample_words * f.x.bits
                + self.max_batch * spec.n_outputs * f.x.bits
                + 2 * self.max_width * (f.x.bits + self.k * slot)
                + lut_kinds * 2 * (1 << f.lut_bits) * f.x.bits)

    def check_fits(self, board: str) -> None:
        """Raise `DpfmError` if the memories cannot fit `board`'s block RAM (a lower bound: block granularity
        can need more, which the build then reports)."""
        if board not in BOARD_RAM_BITS:
            raise DpfmError(f"unknown board '{board}'", f"use one of {', '.join(BOARD_RAM_BITS)}")
        need, have = self.memory_bits(), BOARD_RAM_BITS[board]
        if need > have:
            raise DpfmError(f"the core needs at least {need} RAM bits, {board} has {have}",
                            "lower max_batch, K or the network size")

    @classmethod
    def from_task(cls, name: str, k: int, fmts: HwFormats | None = None, max_batch: int = 16,
                  lanes: int = 1, toper: str = "serial") -> "CoreConfig":
        """The configuration for a named task of `golden.tasks` (its network shape)."""
        from golden.tasks import get_task
        task = get_task(name)
        spec = task.spec if hasattr(task, "spec") else task[0]
        return cls(spec=spec, k=k, fmts=fmts or HwFormats(), max_batch=max_batch, lanes=lanes, toper=toper)


def add_core_arguments(parser, default_task: str | None = "seed-sum", default_k: int = 8) -> None:
    """The options that pick a core configuration (shared by `dpfm verilog`, `dpfm build`, `dpfm bench hw`)."""
    parser.add_argument("--task", default=default_task, help="task whose network the core is built for")
    parser.add_argument("--k", type=int, default=default_k, help="tangent slots K (toper size)")
    parser.add_argument("--max-batch", type=int, default=16, help="samples held on chip per operation")
    parser.add_argument("--lanes", type=int, default=1, help="MAC lanes (neurons of a layer in parallel)")
    parser.add_argument("--toper", type=toper_arg, default="serial", metavar="{serial,parallel,parallel-S}",
                        help="serial: one multiplier and toper per lane; parallel: K+1 of each and a merge tree, "
                             "one cycle per MAC step; parallel-S: S source topers, ceil(candidates/S) cycles "
                             "per MAC step (default: %(default)s)")
    parser.add_argument("--formats", default="", help="number formats, e.g. x=s16.12,t=s16.12 (default: contract)")


def config_from_args(args, task: str | None = None) -> CoreConfig:
    """The `CoreConfig` the `add_core_arguments` options describe (`task` overrides `args.task`)."""
    return CoreConfig.from_task(task or args.task, args.k, HwFormats.parse(args.formats), args.max_batch,
                                args.lanes, args.toper)
