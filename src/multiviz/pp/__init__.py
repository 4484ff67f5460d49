"""Preprocessing recipes (``mv.pp``)."""

from ._gene_selection import detection_gene_selection
from ._prepare_paired import prepare_paired
from ._zscore import apply_zscore, fit_zscore
