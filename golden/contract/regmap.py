"""Address map of the training core, shared by the gateware, the testbenches and the host driver.

The core is a word-addressed slave: 16-bit word addresses, 32-bit data. The top two address bits select
a region; the low 14 bits index inside it. Pure Python (no Amaranth import) so every layer can use it.
"""

ADDR_BITS = 16
DATA_BITS = 32
REGION_SHIFT = 14
INDEX_MASK = (1 << REGION_SHIFT) - 1

REGION_REGS = 0     # control and status registers, below
REGION_WEIGHTS = 1  # index = weight-id; raw weight in format w, sign-extended to 32 bits
REGION_SAMPLES = 2  # index = s * (n_in + n_out) + j; j < n_in inputs, then targets; raw format x
                    # (REG_DATA_PAGE p >= 1: the resident data set's word (p - 1) * 2**14 + index instead)
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
# 0x01 .. 0x03 read 0 (the identity block describes the configuration)
REG_CTRL = 0x04          # W: write CTRL_* bits; each starts an operation (core must be idle)
REG_STATUS = 0x05        # R: STATUS_* bits
REG_N_SAMPLES = 0x06     # RW: samples in the buffer to use (1 .. max)
REG_LR = 0x07            # RW: lr / batch, raw in format lr
REG_CYCLES = 0x08        # R: busy cycles of the last operation (low 32 bits)
REG_SAMPLES_DONE = 0x09  # R: samples processed since reset (wraps)
REG_SATURATIONS = 0x0A   # R: saturation events since reset
REG_EVICTIONS = 0x0B     # R: toper evictions since reset
REG_DITHER = 0x0C        # RW: the dither generator's 32-bit state (docs/ARITHMETIC.md 3d); 0 (reset) = off
REG_TRAIN_MASK = 0x0D    # RW: bit l set = layer l learns (docs/ARITHMETIC.md 3e); reset: every layer learns
REG_IDENT = 0x100        # R: the identity block (golden/contract/identity.py), IDENT_WORDS bytes at 0x100 + i
# Resident training (docs/ARITHMETIC.md 7), on a core whose identity has resident > 0 (elsewhere they read 0):
REG_N_DATA = 0x0E        # RW: samples of the resident data set (1 .. the identity's resident)
REG_EPOCHS = 0x0F        # RW: epochs a CTRL_RESIDENT run trains (1 .. LOSS_HISTORY)
REG_LR_TAIL = 0x10       # RW: lr / (N_DATA mod N_SAMPLES), raw in format lr: the last, shorter batch's step
REG_SHUFFLE = 0x11       # RW: the shuffle generator's 32-bit state (section 7)
REG_DATA_PAGE = 0x12     # RW: 0 (reset) = REGION_SAMPLES is the batch buffer; p >= 1 = the data set, page p - 1
REG_EPOCHS_DONE = 0x13   # R: epochs the current (or last) CTRL_RESIDENT run has finished
REG_LOSS = 0x200         # R: epoch e's loss sum at 0x200 + 2e (low word) and 0x201 + 2e (high word)
#: Epochs a run can keep the loss of (the loss memory's depth); a longer training is several runs.
LOSS_HISTORY = 64
#: Words of the data set one page of REGION_SAMPLES shows.
DATA_PAGE_WORDS = 1 << REGION_SHIFT

#: The core's id: a fixed tag in the high half, the contract revision in the low half. The revision goes up
#: whenever the same register traffic would train differently or the register map changes (2: the dither's
#: direct candidates demoted at 3/4, and the lr format u16.13; 3: the identity block replaced the configuration
#: and layer-size registers; 4: the activation moves along the table's slope from the bin centre to z; 5: the
#: train mask REG_TRAIN_MASK), so a host refuses a bitstream of another revision before it reads anything else.
CORE_TAG = 0xD9F3
CORE_REVISION = 5
CORE_ID = CORE_TAG << 16 | CORE_REVISION

CTRL_TRAIN = 1 << 0      # forward + gradient for every buffered sample, then one SGD update
CTRL_INFER = 1 << 1      # forward only; outputs to REGION_OUTPUTS
CTRL_CLEAR_COUNTERS = 1 << 2
CTRL_RESIDENT = 1 << 3   # EPOCHS epochs over the resident data set, in batches of N_SAMPLES (section 7)

STATUS_BUSY = 1 << 0
STATUS_DONE = 1 << 1     # set when an operation finishes, cleared when the next starts
