"""Inference of a trained :class:`SBNN`: its own cells, new cells, and loading."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
from mudata import MuData
from scvi import REGISTRY_KEYS

from ..._validate import InputError
from .._save import ModelFilesMixin

if TYPE_CHECKING:
    from .._save import SavedModel

Y_KEY = "Y"


class SBNNInferenceMixin(ModelFilesMixin):
    """Latent, predictions, saving and loading for :class:`SBNN` (scvi-tools conventions)."""

    @classmethod
    def _adata_for_load(cls, adata: MuData | None, saved: SavedModel) -> MuData | None:
        """The model's own MuData rebuilt from the user's (see :meth:`SBNN.load`).

        A model trained by :func:`multiviz.tl.sbnn` was set up on an internal copy of the
        data; the user's object (the one it was trained on, e.g. after
        ``write_h5mu``/``read_h5mu``) gives that copy again, genes and target features
        matched by name.
        """
        if isinstance(adata, MuData):
            prep = saved.attr.get("preprocessing_")
            setup = saved.attr["registry_"].get("setup_args", {})
            if prep and not (setup.get("x") in adata.mod and setup.get("y") in adata.mod):
                from ._query import internal_from_user

                return internal_from_user(adata, prep)
        return adata

    # ------------------------------------------------------------- inference
    @property
    def selected_genes(self) -> pd.Index:
        """Names of the genes kept after pruning (all input genes before)."""
        names = self.adata_manager.get_state_registry(REGISTRY_KEYS.X_KEY).column_names
        return pd.Index(np.asarray(names)[self.module.gene_index.cpu().numpy()])

    def _is_own(self, mdata) -> bool:
        return mdata is None or mdata is self.adata

    @torch.inference_mode()
    def _new_cells(self, mdata, indices, what: str) -> np.ndarray:
        """Latent / predictions for cells of another object (training preprocessing)."""
        from ._query import new_cell_inputs

        if what == "x_hat" and self.module.gene_decoder is None:
            raise InputError("This model has no gene decoder (train with gene_decoder_epochs > 0).")
        X = new_cell_inputs(mdata, self.selected_genes, self.preprocessing_, "SBNN")
        if indices is not None:
            X = X[np.asarray(indices)]
        module = self.module
        module.eval()
        dev = module.first.weight.device
        out = []
        for start in range(0, X.shape[0], 4096):
            z = module.encode(torch.as_tensor(X[start : start + 4096], device=dev))
            out.append((z if what == "z" else module.generative(z)[what]).cpu())
        return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)

    @torch.inference_mode()
    def _run(self, mdata, indices, batch_size, what: str) -> np.ndarray:
        self._check_if_trained(warn=False)
        if not self._is_own(mdata):
            return self._new_cells(mdata, indices, what)
        mdata = self._validate_anndata(mdata)
        dl = self._make_data_loader(adata=mdata, indices=indices, batch_size=batch_size)
        out = []
        self.module.eval()
        for tensors in dl:
            inf = self.module.inference(**self.module._get_inference_input(tensors))
            if what == "z":
                out.append(inf["z"].cpu())
                continue
            gen = self.module.generative(inf["z"])
            if what == "x_hat" and "x_hat" not in gen:
                raise InputError(
                    "This model has no gene decoder (train with gene_decoder_epochs > 0)."
                )
            out.append(gen[what].cpu())
        return torch.cat(out).numpy()

    def get_latent_representation(
        self,
        mdata: MuData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int = 1024,
    ) -> np.ndarray:
        """Bottleneck activations, ``(n_cells, n_latent)``.

        ``mdata`` may hold new cells: they get the training preprocessing (see
        :func:`multiviz.tl.project`), genes matched by name; a missing gene is an error.
        """
        return self._run(mdata, indices, batch_size, "z")

    def predict(
        self,
        mdata: MuData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int = 1024,
        *,
        genes: bool = False,
    ) -> pd.DataFrame:
        """Predicted targets, or with ``genes=True`` the reconstructed selected genes.

        Values are on the scale the model was trained on (z-scores after
        :func:`multiviz.pp.prepare_paired`).
        """
        what = "x_hat" if genes else "y_hat"
        values = self._run(mdata, indices, batch_size, what)
        if self._is_own(mdata):
            ad = self._validate_anndata(mdata)
            names = ad.obs_names
        else:
            names = mdata.mod[(self.preprocessing_ or {}).get("x", "rna")].obs_names
        obs_names = names if indices is None else names[np.asarray(indices)]
        if genes:
            cols = self.selected_genes
        else:
            cols = self.adata_manager.get_state_registry(Y_KEY).column_names
        return pd.DataFrame(values, index=obs_names, columns=pd.Index(cols))

    def _validate_anndata(self, adata=None, copy_if_view: bool = True):
        if adata is None:
            return self.adata
        return super()._validate_anndata(adata, copy_if_view=copy_if_view)
