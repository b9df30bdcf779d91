"""One training-core configuration: the network, K, number formats and buffer sizes, validated once.

Every width the gateware needs (weight-id bits, address bits, accumulator widths) is derived here so the
core, the board flow and the host agree on them; anything the core cannot build raises `DpfmError` before
Amaranth sees it.
"""

from dataclasses import dataclass, field

from dpfm.golden.contract import regmap
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import HwFormats
from dpfm.golden.contract.net import NetSpec
from dpfm.golden.contract.organisation import Organisation
from dpfm.golden.fixedpoint import quantize
from dpfm.golden.resident import INDEX_BITS, LOSS_BITS
from dpfm.hw.identity import core_identity

#: Usable on-chip RAM bits per board (block RAM only; what the core's memories must fit in).
BOARD_RAM_BITS = {
    "icebreaker": 30 * 4096,     # UP5K: 30 EBR of 4 kbit (yosys does not infer the SPRAMs for these memories)
    "ulx3s-85f": 208 * 18 * 1024,              # ECP5-85: 208 DP16KD of 18 kbit
}


#: Single-port RAMs (words, bits per word, count) per board, where a resident data set goes
#: (`hw.bram.SinglePortRam`): the UP5K's four SB_SPRAM256KA. Elsewhere the data set is block RAM.
BOARD_SPRAMS = {"icebreaker": (1 << 14, 16, 4)}


def spram_count(board: str, width: int, depth: int) -> int:
    """SPRAMs of `board` that `depth` words of `width` bits take: 16-bit columns times 16K-word rows."""
    words, bits, _ = BOARD_SPRAMS[board]
    return -(-width // bits) * -(-depth // words)


def bits_for(n: int) -> int:
    """Bits to hold values 0 .. n-1 (at least 1): an index, or the address of a memory of n words."""
    return max(1, (n - 1).bit_length())


def order_bits(cfg) -> int:
    """Bits of one entry of a resident core's order memory: a sample index (docs/ARITHMETIC.md 7)."""
    return bits_for(cfg.resident)


@dataclass(frozen=True)
class CoreConfig:
    """A validated training-core configuration.

    `max_batch` is the number of samples the on-chip buffer holds (one CTRL_TRAIN uses up to that many);
    `lanes` is the number of neurons computed in parallel; `toper` (an `Organisation`, or its `--toper`
    spelling) is serial (one multiplier and one toper per lane, a MAC step costs 1 + valid slots cycles),
    parallel (K + 1 multipliers, K + 1 source topers and a merge tree per lane, one cycle per MAC step) or
    parallel-S (S source topers, so a step's K + 1
    candidates take ceil(candidates / S) cycles: most of the parallel lane's speed for a fraction of its
    topers). `exact_last`: the output layer's gradient is exact (docs/ARITHMETIC.md 3f), its neurons form
    no direct candidates and the gradient unit adds their direct entries. `resident`: the samples the core's
    data set memory holds for resident training (docs/ARITHMETIC.md 7); 0 builds no resident training.
    """

    spec: NetSpec
    k: int
    fmts: HwFormats = field(default_factory=HwFormats)
    max_batch: int = 16
    lanes: int = 1
    toper: Organisation | str = Organisation()
    exact_last: bool = False
    resident: int = 0

    def __post_init__(self):
        spec = self.spec
        if not isinstance(self.k, int) or self.k < 1:
            raise DpfmError(f"the core needs K >= 1 tangent slots, got K={self.k}",
                            "pass --k 1 or more (K=full is only available in the golden model)")
        if self.k > 255:
            raise DpfmError(f"K={self.k} is more than the core supports", "use K <= 255")
        if not isinstance(self.exact_last, bool):
            raise DpfmError(f"exact_last must be True or False, got {self.exact_last!r}", "use --exact-last on|off")
        if isinstance(self.resident, bool) or not isinstance(self.resident, int) or \
                not 0 <= self.resident <= 1 << INDEX_BITS:
            raise DpfmError(f"a resident data set of {self.resident!r} samples is not buildable",
                            f"use --resident-samples 0 (off) .. {1 << INDEX_BITS}")
        if isinstance(self.toper, str):
            object.__setattr__(self, "toper", Organisation.parse(self.toper))
        if self.sources == 1:
            raise DpfmError("parallel-1 would be the serial lane", "use --toper serial for one source")
        if (self.sources or 0) > 255:
            raise DpfmError(f"toper '{self.toper}' has {self.sources} source topers at K={self.k}, more than "
                            "the core supports", "use parallel-S with S <= 255")
        if spec.loss != "mse":
            raise DpfmError(f"the core implements the MSE loss only, the network uses '{spec.loss}'",
                            "train with --loss mse on hardware")
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
        core_identity(self)   # its description must fit the identity block

    # --- derived widths -------------------------------------------------------------------------------

    @property
    def tangent(self) -> str:
        """The `golden.fixed_mlp.FixedModel` tangent mode this core computes bit for bit."""
        return self.toper.tangent

    @property
    def parallel(self) -> bool:
        """The lanes are parallel lanes (docs/ARITHMETIC.md 3b)."""
        return self.toper.parallel

    @property
    def sources(self) -> int | None:
        """Source topers per parallel lane (None for the serial lane)."""
        return self.toper.sources_at(self.k)

    @property
    def n_params(self) -> int:
        return self.spec.n_params

    @property
    def id_bits(self) -> int:
        """Bits of a weight-id (0 .. P-1)."""
        return bits_for(self.spec.n_params)

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
                + (spec.layer_shape(spec.n_layers - 1)[1] * f.x.bits if self.exact_last else 0)
                + lut_kinds * 2 * (1 << f.lut_bits) * f.x.bits
                + self.single_port_bits()
                + (regmap.LOSS_HISTORY * LOSS_BITS if self.resident else 0))

    def single_port_memories(self) -> list[tuple[int, int]]:
        """`(bits per word, words)` of the memories a resident core builds as `hw.bram.SinglePortRam` (the
        SPRAMs on the UP5K): the data set and the order memory (docs/ARITHMETIC.md 7)."""
        if not self.resident:
            return []
        return [(self.fmts.x.bits, self.resident * self.sample_words), (order_bits(self), self.resident)]

    def single_port_bits(self) -> int:
        return sum(bits * words for bits, words in self.single_port_memories())

    def check_fits(self, board: str) -> None:
        """Raise `DpfmError` if the memories cannot fit `board`'s block RAM (a lower bound: block granularity
        can need more, which the build then reports)."""
        if board not in BOARD_RAM_BITS:
            raise DpfmError(f"unknown board '{board}'", f"use one of {', '.join(BOARD_RAM_BITS)}")
        need, have = self.memory_bits(), BOARD_RAM_BITS[board]
        if board in BOARD_SPRAMS and self.resident:   # the data set and the order go to the SPRAMs
            sprams = sum(spram_count(board, bits, words) for bits, words in self.single_port_memories())
            if sprams > BOARD_SPRAMS[board][2]:
                raise DpfmError(f"a resident data set of {self.resident} samples needs {sprams} SPRAMs, {board} "
                                f"has {BOARD_SPRAMS[board][2]}", "lower --resident-samples")
            need -= self.single_port_bits()
        if need > have:
            raise DpfmError(f"the core needs at least {need} RAM bits, {board} has {have}",
                            "lower max_batch, K or the network size")

    @classmethod
    def from_task(cls, name: str, k: int, fmts: HwFormats | None = None, max_batch: int = 16,
                  lanes: int = 1, toper: Organisation | str = Organisation(), exact_last: bool = False,
                  resident: int = 0) -> "CoreConfig":
        """The configuration for a named task of `golden.tasks` (its network shape)."""
        from dpfm.golden.tasks import get_task
        return cls(spec=get_task(name).spec, k=k, fmts=fmts or HwFormats(), max_batch=max_batch, lanes=lanes,
                   toper=toper, exact_last=exact_last, resident=resident)
