"""Payload layouts shared by the datapath blocks, their fixed-point helpers, and a Python codec for both.

A tangent travels as K *slots* (`valid`, `value` in format t, `id` a weight-id); an empty slot has
`valid = 0` and its other fields are don't-care. Every stream payload in the datapath is built from these
layouts, so one block's output plugs into the next one's input and the testbenches (which only see the
flattened Verilog vector) encode and decode payloads with `pack`/`unpack` from the same definition.

The Amaranth expression builders `shift_round_expr`, `saturate_expr` and `saturate_fast_expr` implement
docs/ARITHMETIC.md section 2 (round half up by an arithmetic shift, symmetric saturation) for the RTL: the
gateware forms of `golden.fixedpoint.shift_round` and `golden.fixedpoint.saturate`, named apart from them
because they return expressions (and a saturation flag), not numbers.
"""

from amaranth.hdl import Cat, Const, Mux, Shape, Value, signed, unsigned
from amaranth.lib import data

from dpfm.golden import dither
from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import Fmt


def _check_signed(fmt: Fmt, what: str):
    if not fmt.signed:
        raise DpfmError(f"{what} format {fmt} is unsigned", f"use a signed format for {what}, e.g. s16.12")


def entry_layout(t_fmt: Fmt, id_bits: int) -> data.StructLayout:
    """One tangent entry as a toper takes it: `value` (raw, format t), `id` (weight-id) and `demoted` (its
    dither flag, docs/ARITHMETIC.md section 3d: it ranks below every entry that is not demoted)."""
    _check_signed(t_fmt, "tangent")
    if id_bits < 1:
        raise DpfmError(f"id width {id_bits} is too small", "use at least 1 bit for weight-ids")
    return data.StructLayout({"value": signed(t_fmt.bits), "id": unsigned(id_bits), "demoted": 1})


def slot_layout(t_fmt: Fmt, id_bits: int) -> data.StructLayout:
    """One tangent slot: an entry's value and id plus `valid` (0 = empty slot). No dither flag: it only
    matters inside one neuron's topers, so the scratch memory and the activations do not store it."""
    entry = entry_layout(t_fmt, id_bits)
    return data.StructLayout({"valid": 1, "value": entry["value"].shape, "id": entry["id"].shape})


def ranked_slot_layout(t_fmt: Fmt, id_bits: int) -> data.StructLayout:
    """A slot with its entry's dither flag `demoted`: a toper cell, or a slot on its way into a merge node."""
    return data.StructLayout({**{name: field.shape for name, field in slot_layout(t_fmt, id_bits)}, "demoted": 1})


def slots_layout(k: int, t_fmt: Fmt, id_bits: int) -> data.ArrayLayout:
    """A pruned tangent: K slots."""
    if k < 1:
        raise DpfmError(f"K={k} is too small", "use K >= 1")
    return data.ArrayLayout(slot_layout(t_fmt, id_bits), k)


def readout_layout(k: int, t_fmt: Fmt, id_bits: int) -> data.StructLayout:
    """A toper's read-out as the parallel lane's merge tree passes it on: the K `slots` and their K dither
    flags `demoted` (bit j for slot j), so every node ranks the entries as the source topers did."""
    return data.StructLayout({"slots": slots_layout(k, t_fmt, id_bits), "demoted": unsigned(k)})


def dual_layout(k: int, x_fmt: Fmt, t_fmt: Fmt, id_bits: int) -> data.StructLayout:
    """A dual number: primal `value` (format x) and its pruned tangent `slots`."""
    _check_signed(x_fmt, "primal")
    return data.StructLayout({"value": signed(x_fmt.bits), "slots": slots_layout(k, t_fmt, id_bits)})


def mac_step_layout(k: int, fmts, id_bits: int) -> data.StructLayout:
    """One MAC step of a neuron: weight `w` (format w) with its weight-id `wid`, input `x` (format x) with
    its tangent `slots`, `last` (this is the neuron's final step, normally the bias with x = 1.0), `frozen`
    (the neuron's layer does not learn: no direct candidate, docs/ARITHMETIC.md section 3e), and the
    neuron's dither `mask` (docs/ARITHMETIC.md section 3d; the same in every step of a neuron, 0 = off). The
    mask travels with each step, so a lane hashes every candidate with its own neuron's mask whatever the
    timing of steps, stalls and neuron boundaries."""
    _check_signed(fmts.w, "weight")
    _check_signed(fmts.x, "primal")
    return data.StructLayout({
        "w": signed(fmts.w.bits),
        "wid": unsigned(id_bits),
        "x": signed(fmts.x.bits),
        "slots": slots_layout(k, fmts.t, id_bits),
        "last": 1,
        "frozen": 1,
        "mask": unsigned(dither.BITS),
    })


# --- fixed point in RTL (docs/ARITHMETIC.md section 2) ---------------------------------------------------

def shift_round_expr(value, shift: int):
    """`value` (signed) with `shift` fewer fraction bits: for shift > 0 round half up,
    `(value + 2**(shift-1)) >> shift` (arithmetic shift); for shift < 0 an exact left shift."""
    if shift > 0:
        return (value + (1 << (shift - 1))) >> shift
    if shift < 0:
        return value << (-shift)
    return value


def saturate_expr(value, fmt: Fmt):
    """`(clamped, saturated)`: `value` clamped to `fmt`'s symmetric range (as `signed(fmt.bits)`), and a
    1-bit flag that is high when the clamp changed it (one saturation event).

    For a signed value and a signed format of n bits (range `[-(2**(n-1) - 1), 2**(n-1) - 1]`) the flags are
    bit tests, not magnitude comparisons (which synthesize to two carry chains): the value is above the
    range when it is non-negative and a bit from n-1 up is set, below it when it is negative and either not
    all those bits are set or it is exactly `-2**(n-1)`. Both clamp limits are then `sign, ~sign * (n-2), 1`.
    """
    value = Value.cast(value)
    n = fmt.bits
    if fmt.signed and value.shape().signed:
        if len(value) < n:      # every value of a narrower signed shape is inside the range
            return value.as_signed(), Const(0, 1)
        sign = value[-1]
        top = value[n - 1:]
        over = ~sign & top.any()
        under = sign & (~top.all() | ~value[:n - 1].any())
        limit = Cat(Const(1, 1), (~sign).replicate(n - 2), sign)
        clamped = Mux(over | under, limit, value[:n])
        return clamped.as_signed(), over | under
    hi = Const(fmt.max_raw, signed(n + 1))
    lo = Const(fmt.min_raw, signed(n + 1))
    over = value > hi
    under = value < lo
    clamped = Mux(over, hi, Mux(under, lo, value))
    return clamped[:n].as_signed(), over | under


def saturate_fast_expr(value, fmt: Fmt):
    """`(clamped, saturated)` exactly as `saturate_expr(value, fmt)` for a signed value and a signed
    format `fmt` (n bits), arranged for a value that comes out of an adder's carry chain, whose top bits are
    its latest: `value` is out of range when its bits from n-1 up are not all equal (then the limit is
    `sign, ~sign * (n-2), 1`), or when it is exactly `-2**(n-1)` (`1, 0 * (n-1)`), whose clamp
    `-2**(n-1) + 1` differs from it in bit 0 only. So bits 1 .. n-1 are selected by the top bits alone and
    only bit 0 and the flag wait for the OR of the low bits (which leave the chain first); `saturate_expr` selects
    every bit by the complete flag, a logic level or two deeper."""
    n = fmt.bits
    if len(value) < n:      # every value of a narrower signed shape is inside the range
        return value.as_signed(), Const(0, 1)
    sign = value[-1]
    top = value[n - 1:]
    out_of_range = top.any() & ~top.all()
    is_min = top.all() & ~value[:n - 1].any()
    clamped = Cat(out_of_range | value[0] | is_min, Mux(out_of_range, Cat((~sign).replicate(n - 2), sign),
                                                         value[1:n]))
    return clamped.as_signed(), out_of_range | is_min


def demoted_expr(ident, mask, direct=None):
    """The dither flag of weight-id `ident` under a neuron's 32-bit `mask` (`golden.dither.demoted`) with hash
    bits `h_b = parity(id & mask[16b : 16b+15]) ^ mask[16b+15]`: both are 1 for an inherited candidate, either
    is for a direct one (`direct`: a 1-bit value; None for a source that never carries one). Only the id's
    low 15 bits are hashed."""
    n = min(len(ident), dither.ID_BITS)
    def hash_bit(b):
        return (ident[:n] & mask[16 * b:16 * b + n]).xor() ^ mask[16 * b + dither.ID_BITS]
    both = hash_bit(0) & hash_bit(1)
    return both if direct is None else Mux(direct, hash_bit(0) | hash_bit(1), both)


def dither_step_expr(state):
    """One step of the dither generator (`golden.dither.step`): a Galois right shift of the 32-bit `state`."""
    return Cat(state[1:], Const(0, 1)) ^ (state[0].replicate(dither.BITS) & dither.TAPS)


# --- Python codec for the flattened Verilog vectors -------------------------------------------------------

def pack(layout, obj) -> int:
    """Encode a Python value into the integer the flattened Verilog port carries.

    `obj` is a dict for a StructLayout (missing fields are 0), a sequence for an ArrayLayout, an int
    otherwise (negative values allowed for signed fields)."""
    if isinstance(layout, data.StructLayout):
        word = 0
        for name, field in layout:
            if name in obj:
                word |= pack(field.shape, obj[name]) << field.offset
        return word
    if isinstance(layout, data.ArrayLayout):
        if len(obj) != layout.length:
            raise ValueError(f"expected {layout.length} elements, got {len(obj)}")
        width = Shape.cast(layout.elem_shape).width
        return sum(pack(layout.elem_shape, item) << (i * width) for i, item in enumerate(obj))
    shape = Shape.cast(layout)
    value = int(obj)
    lo, hi = (-(1 << (shape.width - 1)), (1 << (shape.width - 1)) - 1) if shape.signed else (0, (1 << shape.width) - 1)
    if not lo <= value <= hi:
        raise ValueError(f"{value} does not fit {shape}")
    return value & ((1 << shape.width) - 1)


def unpack(layout, word: int):
    """Decode the integer of a flattened Verilog port: the inverse of `pack` (all fields present)."""
    if isinstance(layout, data.StructLayout):
        return {name: unpack(field.shape, word >> field.offset) for name, field in layout}
    if isinstance(layout, data.ArrayLayout):
        width = Shape.cast(layout.elem_shape).width
        return [unpack(layout.elem_shape, word >> (i * width)) for i in range(layout.length)]
    shape = Shape.cast(layout)
    value = word & ((1 << shape.width) - 1)
    if shape.signed and value >> (shape.width - 1):
        value -= 1 << shape.width
    return value


def slots_to_python(slots) -> list:
    """Decoded slots (list of dicts) -> golden's form: `(value, id)` per valid slot, None per empty one."""
    return [(s["value"], s["id"]) if s["valid"] else None for s in slots]


def slots_from_python(slots) -> list:
    """Golden's form (`(value, id)` or None per slot) -> dicts for `pack`."""
    return [{"valid": 1, "value": s[0], "id": s[1]} if s is not None else {"valid": 0} for s in slots]
