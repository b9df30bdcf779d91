"""Address map of the training core, shared by the gateware, the testbenches and the host driver.

The core is a word-addressed slave: 16-bit word addresses, 32-bit data. The top two address bits select
a region; the low 14 bits index inside it. Pure Python (no Amaranth import) so every layer can use it.
"""

from dataclasses import dataclass

ADDR_BITS = 16
DATA_BITS = 32
REGION_SHIFT = 14
INDEX_MASK = (1 << REGION_SHIFT) - 1

REGION_REGS = 0     # control and status registers, below
REGION_WEIGHTS = 1  # index = weight-id; raw weight in format w, sign-extended to 32 bits
REGION_SAMPLES = 2  # index = s * (n_in + n_out) + j; j < n_in inputs, then targets; raw format x
REGION_OUTPUTS = 3  # index = s * n_out + o; network outputs of the last run, raw format x (read only)


def address(region: int, index: int) -> int:
    if not 0 <= index <= INDEX_MASK:
        raise ValueError(f"index {index} does not fit a {REGION_SHIFT}-bit region")
    return (region << REGION_SHIFT) | index


def to_word(value):
    """The bus word that carries a signed raw value (a weight, sample or output): two's complement. Works
    elementwise on an int64 array too."""
    return value & ((1 << DATA_BITS) - 1)


def from_word(word):
    """The signed raw value a bus word carries: the inverse of `to_word`. Works elementwise on an int64
    array too."""
    return word - ((word >> (DATA_BITS - 1)) & 1) * (1 << DATA_BITS)


# Registers (REGION_REGS). R = read-only, W = write, RW = read/write.
REG_ID = 0x00            # R: constant CORE_ID
REG_CONFIG0 = 0x01       # R: `Config0` below
REG_CONFIG1 = 0x02       # R: P (number of parameters)
REG_CONFIG2 = 0x03       # R: max samples per batch held on chip
REG_CTRL = 0x04          # W: write CTRL_* bits; each starts an operation (core must be idle)
REG_STATUS = 0x05        # R: STATUS_* bits
REG_N_SAMPLES = 0x06     # RW: samples in the buffer to use (1 .. max)
REG_LR = 0x07            # RW: lr / batch, raw in format lr
REG_CYCLES = 0x08        # R: busy cycles of the last operation (low 32 bits)
REG_SAMPLES_DONE = 0x09  # R: samples processed since reset (wraps)
REG_SATURATIONS = 0x0A   # R: saturation events since reset
REG_EVICTIONS = 0x0B     # R: toper evictions since reset
REG_DITHER = 0x0C        # RW: the dither generator's 32-bit state (docs/ARITHMETIC.md 3d); 0 (reset) = off
REG_LAYER_SIZE0 = 0x10   # R: sizes[0], sizes[1], ... at 0x10 + i (0 past the last)

#: The core's identity: a fixed tag in the high half, the contract revision in the low half. The revision
#: goes up whenever the same register traffic would train differently (2: the dither's direct candidates
#: demoted at 3/4, and the lr format u16.13), so a host refuses a bitstream of another revision.
CORE_TAG = 0xD9F3
CORE_REVISION = 2
CORE_ID = CORE_TAG << 16 | CORE_REVISION

CTRL_TRAIN = 1 << 0      # forward + gradient for every buffered sample, then one SGD update
CTRL_INFER = 1 << 1      # forward only; outputs to REGION_OUTPUTS
CTRL_CLEAR_COUNTERS = 1 << 2

STATUS_BUSY = 1 << 0
STATUS_DONE = 1 << 1     # set when an operation finishes, cleared when the next starts


@dataclass(frozen=True)
class Config0:
    """REG_CONFIG0: `k | n_layers << 8 | lanes << 16 | sources << 24`, one byte each; `sources` is the
    parallel lane's source-toper count, 0 for the serial lane."""

    k: int
    n_layers: int
    lanes: int
    sources: int

    def __post_init__(self):
        for name in ("k", "n_layers", "lanes", "sources"):
            if not 0 <= getattr(self, name) <= 0xFF:
                raise ValueError(f"CONFIG0 field {name}={getattr(self, name)} does not fit a byte")

    def pack(self) -> int:
        return self.k | self.n_layers << 8 | self.lanes << 16 | self.sources << 24

    @classmethod
    def unpack(cls, word: int) -> "Config0":
        return cls(k=word & 0xFF, n_layers=word >> 8 & 0xFF, lanes=word >> 16 & 0xFF, sources=word >> 24 & 0xFF)
