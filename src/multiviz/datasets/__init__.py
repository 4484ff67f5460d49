"""Datasets (``mv.datasets``): simulators with planted ground truth and readers of real files."""

from ._read import m1_patchseq, read_paired
from ._simulate_gene_network import simulate_gene_network
from ._simulate_patchseq import simulate_patchseq
