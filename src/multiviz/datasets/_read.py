"""Readers for paired single-cell files (``.h5mu``), with validation."""

from __future__ import annotations

import warnings
from pathlib import Path

import h5py
import mudata as md
from mudata import MuData

from .._validate import InputError, check_counts, check_paired, check_str, resolve_target


def _check_h5mu(path: Path) -> None:
    """Raise one clear :class:`InputError` if ``path`` is not a readable MuData file."""
    try:
        with h5py.File(path, "r") as f:
            has_mod = "mod" in f
            kind = f.attrs.get("encoding-type", "")
            kind = kind.decode() if isinstance(kind, bytes) else str(kind)
            looks_anndata = kind == "anndata" or ("X" in f and "obs" in f and not has_mod)
    except OSError as err:
        raise InputError(
            f"`path={str(path)!r}` is not a readable HDF5 file: it is truncated, corrupted or "
            f"not an .h5mu at all ({err}). Re-download or re-write it "
            "(`mdata.write_h5mu(path)`)."
        ) from None
    if not has_mod:
        hint = (
            "it looks like an AnnData (.h5ad) file renamed to .h5mu: read it with "
            "`anndata.read_h5ad(path)` and pair the modalities with "
            "`mudata.MuData({'rna': rna, 'protein': protein})`"
            if looks_anndata
            else "write MuData files with `mdata.write_h5mu(path)`"
        )
        raise InputError(
            f"`path={str(path)!r}` is an HDF5 file but not a MuData file (no 'mod' group); {hint}."
        )


def read_paired(path: str | Path, *, x: str = "rna", y: str | None = None) -> MuData:
    """Read a paired ``.h5mu`` file and check it is usable by multiviz.

    Checks that the file is a readable MuData file (a truncated or corrupted file, or an
    ``.h5ad`` renamed to ``.h5mu``, gives one :class:`~multiviz.InputError` naming the file
    and the problem), that the RNA modality ``x`` holds raw counts, that a target modality
    ``y`` exists (``"ephys"``, else ``"protein"``, unless named) and that both hold the same
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

    Examples
    --------
    >>> import multiviz as mv
    >>> mdata = mv.datasets.read_paired("m1_patchseq_scala2021.h5mu")  # doctest: +SKIP
    >>> mdata = mv.datasets.read_paired("pbmc.h5mu", y="protein")  # doctest: +SKIP
    """
    if not isinstance(path, str | Path):
        raise InputError(f"`path` must be a file path (str or Path), got {type(path).__name__}.")
    check_str(x, "x")
    check_str(y, "y", optional=True)
    path = Path(path)
    if not path.exists():
        raise InputError(f"`path={str(path)!r}` does not exist.")
    if not path.is_file():
        raise InputError(f"`path={str(path)!r}` is a directory, not an .h5mu file.")
    if path.suffix != ".h5mu":
        hint = (
            " For an AnnData file use `anndata.read_h5ad` and build a MuData with "
            "`mudata.MuData({'rna': rna, 'ephys': ephys})`."
            if path.suffix == ".h5ad"
            else ""
        )
        raise InputError(f"`path` must be an .h5mu file (MuData), got {path.name!r}.{hint}")
    _check_h5mu(path)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module="mudata")
            mdata = md.read_h5mu(path)
    except Exception as err:  # noqa: BLE001 - any reader failure is the file's problem
        raise InputError(
            f"`path={str(path)!r}` could not be read as MuData: the file is damaged or was "
            f"not written by mudata ({type(err).__name__}: {err})."
        ) from None
    try:
        y = resolve_target(mdata, y)
        check_paired(mdata, [x, y], ["`x`", "`y`"])
        check_counts(mdata.mod[x].X, f"mdata[{x!r}].X")
    except InputError as err:
        raise InputError(f"{path.name}: {err}") from None
    return mdata


M1_FILE = "m1_patchseq_scala2021.h5mu"


def shared_data_file(name: str | Path) -> Path:
    """``name`` as given if it exists, else the same file in the project's shared data folder.

    Looked for, in order: ``name`` itself (absolute, or relative to the working directory),
    ``$MULTIVIZ_SHARED_DATA/<name>``, and ``../shared/data/<name>`` beside the working
    directory (the project's layout). A missing file is an :class:`InputError` listing
    every place tried.
    """
    path = Path(name).expanduser()
    tried = [path]
    if not path.is_absolute() and len(path.parts) == 1:
        import os

        env = os.environ.get("MULTIVIZ_SHARED_DATA")
        tried += ([Path(env).expanduser() / path] if env else []) + [
            Path.cwd().parent / "shared" / "data" / path
        ]
    for candidate in tried:
        if candidate.exists():
            return candidate
    raise InputError(
        f"{str(name)!r} was not found; looked in: {', '.join(str(p) for p in tried)}. Pass the "
        "file's full path, or set MULTIVIZ_SHARED_DATA to the folder that holds it."
    )


def m1_patchseq(path: str | Path = M1_FILE) -> MuData:
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
        Path to ``m1_patchseq_scala2021.h5mu`` (the default name is also looked for in
        ``$MULTIVIZ_SHARED_DATA`` and in ``../shared/data/`` beside the working directory).

    Returns
    -------
    MuData with ``"rna"`` (raw counts) and ``"ephys"`` (raw features).

    Examples
    --------
    >>> import multiviz as mv
    >>> mdata = mv.datasets.m1_patchseq("m1_patchseq_scala2021.h5mu")  # doctest: +SKIP
    >>> mv.pp.prepare_paired(mdata, exclude_genes=None)  # doctest: +SKIP
    """
    mdata = read_paired(shared_data_file(path), x="rna", y="ephys")
    if mdata.n_obs != 1213 or mdata.mod["ephys"].n_vars != 16:
        raise InputError(
            f"`path` does not look like the M1 file (expected 1213 cells × 16 ephys features, got "
            f"{mdata.n_obs} × {mdata.mod['ephys'].n_vars})."
        )
    return mdata
