"""Real CITE-seq cells shipped with the package (no download needed)."""

from __future__ import annotations

from importlib.resources import as_file, files

from mudata import MuData

from ._read import read_paired

PBMC_FILE = "pbmc_10k_protein_v3_200cells_fixture.h5mu"
PBMC_ATTRIBUTION = (
    "PBMC CITE-seq data: 10x Genomics pbmc_10k_protein_v3 (CC BY 4.0), 200-cell subsample "
    "by the scvi-tools developers (BSD-3-Clause)"
)


def pbmc10k_cite_200() -> MuData:
    """200 human blood cells with RNA and 14 surface proteins (CITE-seq), shipped with multiviz.

    A subsample of the 10x Genomics "10k PBMCs, gene expression and cell surface protein"
    dataset (Chromium v3, TotalSeq-B; CC BY 4.0) made by the scvi-tools developers for their
    tests (BSD-3-Clause); see ``multiviz/datasets/data/README.md`` for the attribution.
    ``"rna"`` holds raw UMI counts of 16,727 genes (int32 CSR), ``"protein"`` raw ADT counts
    of CD3, CD4, CD8a, CD14, CD15, CD16, CD56, CD19, CD25, CD45RA, CD45RO, PD-1, TIGIT and
    CD127 (names end in ``_TotalSeqB``). There are no cell-type labels. Read from the
    installed package, so it works offline; each call returns a fresh object.

    Returns
    -------
    MuData with modalities ``"rna"`` and ``"protein"``; provenance in ``uns["provenance"]``.

    Examples
    --------
    >>> import multiviz as mv
    >>> mdata = mv.datasets.pbmc10k_cite_200()
    >>> mdata["rna"].shape, mdata["protein"].shape
    ((200, 16727), (200, 14))
    >>> mv.pp.prepare_paired(mdata, y="protein", n_top_genes=500)  # CLR on the ADT counts
    """
    with as_file(files("multiviz.datasets") / "data" / PBMC_FILE) as path:
        return read_paired(path, x="rna", y="protein")
