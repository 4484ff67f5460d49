"""The shared training vocabulary in ``mv.tl.sbnn`` / ``SBNN.train``."""

from __future__ import annotations

from _sbnn_helpers import one_torch_thread, simulated  # noqa: F401

import multiviz as mv


def test_shared_vocabulary_accepted_and_max_epochs_scales_the_schedule():
    m = simulated(n_cells=120, n_genes=60)
    model = mv.tl.sbnn(
        m,
        n_genes=5,
        gene_decoder_epochs=0,
        return_model=True,
        max_epochs=8,  # 50/50/50/100 scaled to 8: 2/2/2/3 (rounded, at least 1 each)
        batch_size=64,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=None,
        early_stopping=False,
        precision=32,
        strategy="auto",
    )
    phases = model.phase_history_["phase"].value_counts().to_dict()
    assert phases == {"pretrain": 2, "frozen": 2, "unfrozen": 2, "pruned": 3}
    assert m.uns["sbnn"]["params"]["max_epochs"] == 8
    assert m.uns["sbnn"]["params"]["batch_size"] == 64
