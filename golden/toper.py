"""The toper's model (docs/ARITHMETIC.md section 3.3): the block `hw.toper.Toper` must equal it bit for bit.

`ToperModel` is written as a plain per-cell loop that reads like the contract. Raw values are Python ints in
format t; a read-out is a list of K *slots*, each `(value, id)` or `None` (an empty cell).

`BatchToper` at the end is the same toper vectorized over many independent rows (samples x neurons) for the
fixed-point trainer; it is tested equal to `ToperModel` and is not a second definition.
"""

import numpy as np

from dpfm.golden.contract.errors import DpfmError
from dpfm.golden.contract.formats import Fmt
from dpfm.golden.fixedpoint import SatCounter, saturate

#: A tangent slot, as the toper reads it out and the lanes pass it on: `(value, id)`, or None when empty.
Slot = tuple[int, int] | None
#: A toper entry with its dither flag (section 3d, 1 = demoted): `(value, id, d)`, or None when empty.
Entry = tuple[int, int, int] | None


def ranks_above(v1: int, id1: int, v2: int, id2: int, d1: int = 0, d2: int = 0) -> bool:
    """The order key (sections 1 and 3d): not demoted first, then `|v1| > |v2|`, then the lower id. Flags
    `d1`, `d2` of 0 (dither off) leave the plain key of section 1."""
    k1, k2 = (not d1, abs(v1)), (not d2, abs(v2))
    return k1 > k2 or (k1 == k2 and id1 < id2)


class ToperModel:
    """K cells `c_0 .. c_{K-1}`; a candidate enters at `c_0` and travels towards `c_{K-1}` (section 3.3).

    At each cell: an empty cell takes the candidate; a cell with the same id merges it (saturating add in
    format t, the cell keeps its position); a candidate that ranks above the cell swaps with it and the
    displaced entry travels on; otherwise the candidate travels on. Whatever leaves the last cell is
    dropped and counted in `evictions`. Because every candidate meets the cells in arrival order,
    inserting candidates one at a time (each travelling to the end first) gives the pipelined result.

    Note the consequence of merging in place: the cells are not always sorted, and a candidate can swap
    into a cell *before* reaching a cell that already holds its id, so an id can occupy two cells. The
    hardware does exactly this, so the model does too.
    """

    def __init__(self, k: int, t_fmt: Fmt, sat: SatCounter | None = None):
        if k < 1:
            raise ValueError(f"a toper needs at least one cell, got k={k}")
        self.k = k
        self.t_fmt = t_fmt
        self.sat = sat
        self.evictions = 0
        self._cells: list[Entry] = [None] * k

    def clear(self) -> None:
        """Empty every cell (start of a neuron). The eviction count keeps running."""
        self._cells = [None] * self.k

    def insert(self, value: int, wid: int, d: int = 0) -> None:
        """Send candidate `(value, wid)` (raw t-format value) with demoted flag `d` (section 3d; the same for
        every candidate of one id in a neuron) through the cells; a zero value is ignored."""
        if value == 0:
            return
        entry = (int(value), int(wid), int(bool(d)))
        for j in range(self.k):
            cell = self._cells[j]
            if cell is None:
                self._cells[j] = entry
                return
            if cell[1] == entry[1]:
                self._cells[j] = (saturate(cell[0] + entry[0], self.t_fmt, self.sat), cell[1], cell[2])
                return
            if ranks_above(entry[0], entry[1], cell[0], cell[1], entry[2], cell[2]):
                self._cells[j], entry = entry, cell
        self.evictions += 1

    def entries(self) -> list[Entry]:
        """Read-out with the flags: `(value, id, d)` per cell in cell order, `None` for an empty cell."""
        return list(self._cells)

    def slots(self) -> list[Slot]:
        """Read-out: `(value, id)` per cell in cell order, `None` for an empty cell."""
        return [None if e is None else e[:2] for e in self._cells]


# ----------------------------------------------------------------------------------------------------------
# Vectorized toper for the trainer: many independent topers (rows) stepped together.

#: Id of an empty cell or an invalid slot in `BatchToper` and trainer arrays: larger than every weight-id
#: (ids must be < 2**32 - 1), so an empty cell `(0, EMPTY_ID)` ranks below every valid entry.
EMPTY_ID = (1 << 32) - 1


class BatchToper:
    """`rows` independent `ToperModel`s of K cells held as `(rows, K)` arrays `values`, `ids`; empty cells are
    `(0, EMPTY_ID)`.

    One insertion is computed for all cells at once. Until the candidate is consumed, the entry that
    travels out of cell j is the lower-ranked of (the entry that travelled in, the cell's entry) - a swap
    keeps the higher one in the cell - so the entry arriving at cell j is the lowest-ranked of
    (candidate, c_0 .. c_{j-1}): a running minimum of the order key. The insertion stops at the first cell
    that is empty or holds the arriving entry's id (place / merge); cells before it keep the higher-ranked
    of (arriving entry, cell entry), cells after it are untouched, and with no stop the minimum leaves the
    last cell (an eviction). Equal keys only occur between entries with equal ids, which stop there, so
    the minimum is unambiguous. `tests/golden/test_toper_model.py` checks every row equals `ToperModel`.
    """

    ID_BITS = 32

    @classmethod
    def check_fits(cls, k: int, t_fmt: Fmt) -> None:
        """The rank key (not demoted, |v|, id, cell position) must fit an int64."""
        if t_fmt.bits + cls.ID_BITS + (k + 1).bit_length() > 62:
            raise DpfmError(f"toper key of t format {t_fmt} with K={k} does not fit 64 bits",
                            "use a t format of at most 24 bits and K <= 64")

    def __init__(self, rows: int, k: int, t_fmt: Fmt, sat: SatCounter | None = None):
        self.check_fits(k, t_fmt)
        self.k = k
        self.t_fmt = t_fmt
        self.sat = sat
        self.evictions = 0
        self.values = np.zeros((rows, k), dtype=np.int64)
        self.ids = np.full((rows, k), EMPTY_ID, dtype=np.int64)
        self.flags = np.zeros((rows, k), dtype=np.int64)
        self._row = np.arange(rows)[:, None]
        self._pos = np.arange(k + 1)
        self._cell = np.arange(k)

    def _key(self, values, flags):
        """The magnitude part of the order key: `|v|`, plus one bit above it unless demoted (section 3d)."""
        return np.abs(values) + ((1 - flags) << (self.t_fmt.bits - 1))

    def insert_all(self, values: np.ndarray, wids: np.ndarray, flags: np.ndarray | None = None) -> None:
        """Insert candidates `(values[r, n], wids[r, n])` with demoted flags `flags[r, n]` (None: all 0) in
        column order n = 0, 1, ... into every row.

        Shortcut: when the topers are empty and no row has a repeated id among its non-zero candidates,
        nothing ever merges, every insertion keeps the cells sorted, and the result is each row's top K by
        the order key, in rank order (the property `test_distinct_ids_give_exact_top_k` checks on `ToperModel`).
        That is computed with one sort; otherwise the candidates go in one column at a time.
        """
        values = np.asarray(values, dtype=np.int64)
        wids = np.asarray(wids, dtype=np.int64)
        flags = np.zeros_like(values) if flags is None else np.asarray(flags, dtype=np.int64)
        n = values.shape[1]
        nonzero = values != 0
        # zero candidates get distinct negative ids so they never look like repeats
        tagged = np.sort(np.where(nonzero, wids, -1 - np.arange(n)), axis=1)
        if np.all(self.ids == EMPTY_ID) and not np.any(tagged[:, 1:] == tagged[:, :-1]):
            rank = np.where(nonzero, (self._key(values, flags) << self.ID_BITS) + (EMPTY_ID - wids), -1)
            top = np.argsort(-rank, axis=1, kind="stable")[:, :self.k]
            kept = np.take_along_axis(nonzero, top, axis=1)
            width = top.shape[1]
            self.values[:, :width] = np.where(kept, np.take_along_axis(values, top, axis=1), 0)
            self.ids[:, :width] = np.where(kept, np.take_along_axis(wids, top, axis=1), EMPTY_ID)
            self.flags[:, :width] = np.where(kept, np.take_along_axis(flags, top, axis=1), 0)
            self.evictions += int(np.sum(np.maximum(np.count_nonzero(nonzero, axis=1) - self.k, 0)))
            return
        for col in range(n):
            self.insert(values[:, col], wids[:, col], flags[:, col])

    def insert(self, values: np.ndarray, wids: np.ndarray, flags: np.ndarray | None = None) -> None:
        """Insert one candidate per row (`values[r]`, `wids[r]`, demoted flag `flags[r]`); rows whose value is
        0 insert nothing."""
        k, V, I, H = self.k, self.values, self.ids, self.flags
        values = np.asarray(values, dtype=np.int64)
        flags = np.zeros_like(values) if flags is None else np.asarray(flags, dtype=np.int64)
        seq_v = np.concatenate([values[:, None], V], axis=1)
        seq_id = np.concatenate([np.asarray(wids, dtype=np.int64)[:, None], I], axis=1)
        seq_h = np.concatenate([flags[:, None], H], axis=1)
        # rank: the key (not demoted, |v|) in the high bits, then the id inverted (lower id ranks higher); an
        # empty cell ranks 0, below every entry (its key is not looked at). The position in the lowest digit
        # makes the running minimum say where the travelling entry came from.
        rank = np.where(seq_id == EMPTY_ID, 0, (self._key(seq_v, seq_h) << self.ID_BITS) + (EMPTY_ID - seq_id))
        pos = np.minimum.accumulate(rank * (k + 1) + self._pos, axis=1) % (k + 1)
        arr_v, arr_id = seq_v[self._row, pos[:, :k]], seq_id[self._row, pos[:, :k]]
        arr_h = seq_h[self._row, pos[:, :k]]
        cell_empty = I == EMPTY_ID
        stop = cell_empty | (arr_id == I)
        stopped = stop.any(axis=1)
        skip = values == 0
        first = np.where(skip, -1, np.where(stopped, stop.argmax(axis=1), k))[:, None]
        swapped = (self._cell < first) & (pos[:, 1:] == self._cell + 1)  # the cell's old entry travels on
        at_first = self._cell == first
        place = at_first & cell_empty
        merge = at_first & ~cell_empty
        merged = V + arr_v
        clipped = np.minimum(np.maximum(merged, self.t_fmt.min_raw), self.t_fmt.max_raw)
        if self.sat is not None:
            self.sat.count += int(np.count_nonzero(merge & (clipped != merged)))
        take = swapped | place
        self.values = np.where(merge, clipped, np.where(take, arr_v, V))
        self.ids = np.where(take, arr_id, I)
        self.flags = np.where(take, arr_h, H)
        self.evictions += int(np.count_nonzero(~stopped & ~skip))
