"""What a core says about itself: the identity text in its read-only identity block (regmap.REG_IDENT).

A host that trains a core built for other numbers gets wrong weights without any error (another format,
other activations, other layer sizes with the same parameter count), so the core carries a description of
everything that decides what it computes, and the host compares it with the run's before it writes
anything. The description is text, `key=value` items joined by `;`, which a person can read too
(`dpfm info`):

    sizes=4,5,5,1;act=sigmoid,sigmoid,identity;x=s16.12;w=s16.12;t=s16.12;g=s32.24;lr=u16.13;lut_bits=10;
    k=8;toper=serial;last_layer=slots;lanes=1;max_batch=16;resident=0;baud=3000000;src=4f0c2a91

`last_layer` is `exact` for a core whose output layer's gradient is exact (docs/ARITHMETIC.md 3f), else `slots`;
`resident` is the number of samples its resident data set holds (docs/ARITHMETIC.md 7; 0: no resident
training); `src` is a hash of the sources the bitstream was generated from; `baud` is the UART rate of the board top
(0: the core is not behind a UART). The block holds IDENT_WORDS bytes, one per bus word: byte 0 is the text's
length, then the ASCII text; bytes past it read 0 (bytes, the narrowest read path: the UP5K has few logic
cells to spare). The build id (`CoreIdentity.build_id`) is the CRC-32 of the text: same text, same bitstream contents.
"""

import zlib
from dataclasses import dataclass, fields

from dpfm.golden.contract.errors import DpfmError

#: Bytes of the identity block: the length, then the text.
IDENT_WORDS = 256
IDENT_WORD_BITS = 8
MAX_TEXT_BYTES = IDENT_WORDS - 1

#: The items that decide the weights a core trains to, in the text's order; two cores that agree on these
#: train bit for bit alike (the lane count, the buffer size and the link change only speed and capacity).
RESULT_KEYS = ("sizes", "act", "x", "w", "t", "g", "lr", "lut_bits", "k", "toper", "last_layer")
KEYS = RESULT_KEYS + ("lanes", "max_batch", "resident", "baud", "src")


@dataclass(frozen=True)
class CoreIdentity:
    """One core's description; every field is the text's spelling of it (`str`)."""

    sizes: str
    act: str
    x: str
    w: str
    t: str
    g: str
    lr: str
    lut_bits: str
    k: str
    toper: str
    last_layer: str
    lanes: str
    max_batch: str
    resident: str
    baud: str
    src: str

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, str) or not value or not value.isascii() or any(c in value for c in ";= \n"):
                raise DpfmError(f"identity item {f.name}={value!r} is not a plain ASCII word",
                                "this is a bug in the core's configuration")
        if len(self.text()) > MAX_TEXT_BYTES:
            raise DpfmError(f"the core's identity text has {len(self.text())} bytes, the block holds "
                            f"{MAX_TEXT_BYTES}", "use a network with fewer layers")

    def text(self) -> str:
        return ";".join(f"{key}={getattr(self, key)}" for key in KEYS)

    def words(self) -> list[int]:
        """The identity block's contents, `IDENT_WORDS` bytes."""
        words = [len(self.text()), *self.text().encode("ascii")]
        return words + [0] * (IDENT_WORDS - len(words))

    @property
    def build_id(self) -> int:
        return zlib.crc32(self.text().encode("ascii"))

    @classmethod
    def parse(cls, text: str) -> "CoreIdentity":
        items = {}
        for item in text.split(";"):
            key, sep, value = item.partition("=")
            if not sep or key not in KEYS or key in items:
                raise DpfmError(f"the core's identity text is damaged at {item!r}",
                                "program the board with a bitstream of this dpfm, or check the link")
            items[key] = value
        missing = [key for key in KEYS if key not in items]
        if missing:
            raise DpfmError(f"the core's identity text lacks {', '.join(missing)}",
                            "program the board with a bitstream of this dpfm")
        return cls(**items)

    @classmethod
    def from_words(cls, words: list[int]) -> "CoreIdentity":
        """The identity a block's words hold (at least the length and the text)."""
        n = words[0] if words else 0
        if not 0 < n <= MAX_TEXT_BYTES or len(words) < 1 + n or any(not 0 <= w <= 0xFF for w in words[:1 + n]):
            raise DpfmError(f"the core's identity block gives a text length of {n} bytes",
                            "program the board with a bitstream of this dpfm, or check the link")
        data = bytes(words[1:1 + n])
        try:
            return cls.parse(data.decode("ascii"))
        except UnicodeDecodeError:
            raise DpfmError("the core's identity text is not ASCII",
                            "program the board with a bitstream of this dpfm, or check the link") from None

    def differences(self, other: "CoreIdentity", keys=RESULT_KEYS) -> list[tuple[str, str, str]]:
        """`(key, self's value, other's value)` for every item of `keys` where the two differ."""
        return [(key, getattr(self, key), getattr(other, key)) for key in keys
                if getattr(self, key) != getattr(other, key)]
