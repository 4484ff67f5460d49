"""Readers for paired single-cell files (``.h5mu``), with validation."""

from __future__ import annotations

from pathlib import Path

import mudata as md
from mudata import MuData

from .._validate import InputError, check_counts, check_paired, resolve_target


def read_paired(path: str | Path, *, x: str = "rna", y: str | None = None) -> MuData:
    """Read a paired ``.h5mu`` file and check it is usable by multiviz.

    Checks that the RNA modality ``x`` holds raw counts, that a target modality ``y``
    exists (``"ephys"``, else ``"protein"``, unless named) and that both hold the same
    cells in the same order.

    Parameters
    ----------
    path
        Path to an ``.h5mu`` file.
    x
        RNA modality (raw counts).
    y
        Target modality; default ``"ephys"``, else ``"protein"``.

    Returns
    -------
    The MuData, in memory.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"`path={str(path)!r}` does not exist.")
    if path.suffix != ".h5mu":
        raise InputError(f"`path` must be an .h5mu file (MuData), got {path.name!r}.")
    mdata = md.read_h5mu(path)
    y = resolve_target(mdata, y)
    check_paired(mdata, [x, y], ["`x`", "`y`"])
    check_counts(mdata.mod[x].X, f"mdata[{x!r}].X")
    return mdata


def m1_patchseq(path: str | Path) -> MuData:
    """The M1 Patch-seq data of the sBNN paper (Scala et al. 2021, Nature 598:144).

    1213 neurons from mouse primary motor cortex: raw exon read counts of the 1000 genes
    sBNN selected (``"rna"``) and 16 electrophysiological features (``"ephys"``), with
    cell metadata (``rna_family``, ``rna_type`` …) in ``obs``. The file is the
    ``m1_patchseq_scala2021.h5mu`` of the project's shared data, rebuilt from
    berenslab/sBNN and berenslab/mini-atlas (see the data README for provenance). Nothing
    is downloaded: pass the path of your copy.

    Parameters
    ----------
    path
        Path to ``m1_patchseq_scala2021.h5mu``.
    """
    mdata = read_paired(path, x="rna", y="ephys")
    if mdata.n_obs != 1213 or mdata.mod["ephys"].n_vars != 16:
        raise InputError(
            f"`path` does not look like the M1 file (expected 1213 cells × 16 ephys features, got "
            f"{mdata.n_obs} × {mdata.mod['ephys'].n_vars})."
        )
    return mdata
