"""Row blocks: whole-matrix passes work through a matrix a block of cells at a time.

Temporaries (float64 copies, masks, densified rows, rows read from disk) then scale with the
block, not with the cells: a 1M-cell matrix is processed with the memory of one block beside
the output. Used by ``mv.pp`` (``ROW_BLOCK`` cells) and siVAE's on-disk passes.
"""

from __future__ import annotations

from collections.abc import Iterator

#: Cells per block (8,192 x 2,000 genes in float64 is 131 MB).
ROW_BLOCK = 8192


def row_slices(n_rows: int, block: int | None = None) -> Iterator[slice]:
    """Consecutive slices ``[start, stop)`` covering ``range(n_rows)`` (``ROW_BLOCK`` rows)."""
    block = block or ROW_BLOCK
    for start in range(0, n_rows, block):
        yield slice(start, min(start + block, n_rows))
