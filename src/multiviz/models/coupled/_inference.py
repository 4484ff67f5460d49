"""Inference side of :class:`~multiviz.models.CoupledAutoencoder`: latents, decoding, load.

Kept apart from the training code (``_model.py``). New cells go through the same path as
the training cells: a stack built from the user's MuData with the features matched to the
training features *by name* (extra features ignored, missing ones an error), encoded in
evaluation mode (no dropout or noise; latent batch norm from its running statistics), so
projecting the training cells reproduces the stored latents exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from anndata import AnnData
from mudata import MuData

from ..._validate import InputError, check_int
from .._save import ModelFilesMixin, SavedModel
from ._data import STACK_KEY, batcher_of, stack_mudata

__all__ = ["CoupledInferenceMixin"]


class CoupledInferenceMixin(ModelFilesMixin):
    """Latents of (new) cells, decoding and cross-modal prediction, ``load`` onto a MuData."""

    def _feature_names(self) -> dict[str, np.ndarray]:
        """Training feature names per modality (the stack's ``mod:name`` with ``mod:`` cut)."""
        out, start = {}, 0
        names = np.asarray(self.adata.var_names.astype(str))
        info = self.adata.uns[STACK_KEY]
        for mod, n in zip(info["modalities"], info["n_vars"]):
            out[mod] = np.array([v[len(mod) + 1 :] for v in names[start : start + int(n)]])
            start += int(n)
        return out

    def _stack_for(self, adata: MuData | AnnData | None, arg: str = "adata") -> AnnData:
        if adata is None or adata is self.adata:
            return self.adata
        if not isinstance(adata, MuData):
            raise InputError(
                f"`{arg}` must be a MuData with the modalities {self.modalities} (new cells "
                f"may lack some of them), got {type(adata).__name__}."
            )
        info = self.adata.uns[STACK_KEY]
        layers = {m: (layer or None) for m, layer in info["layers"].items()}
        return stack_mudata(adata, info["modalities"], layers, var_names=self._feature_names())

    @torch.inference_mode()
    def _encode(self, stack: AnnData, batch_size: int) -> list[np.ndarray]:
        was_training = self.module.training
        self.module.eval()
        batcher = batcher_of(stack)
        out = [[] for _ in self.modalities]
        for start in range(0, batcher.n_obs, batch_size):
            idx = np.arange(start, min(start + batch_size, batcher.n_obs))
            b = batcher.batch(idx, self.device)
            for k, z in enumerate(self.module.inference(b["X"], b["presence"])["z"]):
                out[k].append(z.cpu().numpy())
        self.module.train(was_training)
        presence = batcher.presence > 0.5
        lat = []
        for k in range(len(self.modalities)):
            z = np.concatenate(out[k]).astype(np.float32)
            z[~presence[:, k]] = np.nan
            lat.append(z)
        return lat

    def get_latent_representation(
        self, adata: MuData | None = None, *, batch_size: int = 1024
    ) -> dict[str, np.ndarray]:
        """Per-modality latents ``{modality: cells x n_latent}``, NaN rows where a cell lacks it.

        Parameters
        ----------
        adata
            A MuData of new (or the training) cells; default the training data. Features
            are matched to the training features by name (extra ones are ignored, a missing
            one raises :class:`~multiviz.InputError`); preprocess the new cells as the
            training cells were (e.g. z-score with the training statistics).
        batch_size
            Cells encoded at once.

        Returns
        -------
        ``{modality: latents}``; rows follow the cells of ``adata`` present in at least one
        coupled modality, in ``adata.obs_names`` order (:meth:`obs_names_for`).

        Examples
        --------
        >>> z = model.get_latent_representation(new_mdata)["ephys"]
        """
        self._check_if_trained(warn=False)
        check_int(batch_size, "batch_size")
        stack = self._stack_for(adata)
        return dict(zip(self.modalities, self._encode(stack, batch_size)))

    def obs_names_for(self, adata: MuData | None = None):
        """Cell names of the rows returned by :meth:`get_latent_representation`."""
        return self._stack_for(adata).obs_names

    @torch.inference_mode()
    def decode(self, z: np.ndarray, target: str, *, batch_size: int = 1024) -> np.ndarray:
        """Decode latents with the decoder of ``target`` (NaN rows stay NaN)."""
        if target not in self.modalities:
            raise InputError(f"`target={target!r}` is not one of {self.modalities}.")
        was_training = self.module.training
        self.module.eval()
        k = self.modalities.index(target)
        z = np.asarray(z, dtype=np.float32)
        if z.ndim != 2 or z.shape[1] != self.module.n_latent:
            raise InputError(f"`z` must have shape (cells, {self.module.n_latent}), got {z.shape}.")
        ok = ~np.isnan(z).any(axis=1)
        out = np.full((z.shape[0], self.module.n_vars[k]), np.nan, dtype=np.float32)
        zz = z[ok]
        parts = []
        for start in range(0, zz.shape[0], batch_size):
            t = torch.as_tensor(zz[start : start + batch_size], device=self.device)
            parts.append(self.module.decode(t, k).cpu().numpy())
        if parts:
            out[ok] = np.concatenate(parts)
        self.module.train(was_training)
        return out

    def predict(
        self,
        adata: MuData | None = None,
        *,
        source: str,
        target: str,
        batch_size: int = 1024,
    ) -> np.ndarray:
        """Reconstruct ``target`` from the latent of ``source`` (within-modality if equal).

        Rows as in :meth:`get_latent_representation` (NaN where a cell lacks ``source``);
        columns are the training features of ``target``, in the model's input space.

        Examples
        --------
        >>> rna_hat = model.predict(new_mdata, source="ephys", target="rna")
        """
        for name, mod in (("source", source), ("target", target)):
            if mod not in self.modalities:
                raise InputError(f"`{name}={mod!r}` is not one of {self.modalities}.")
        z = self.get_latent_representation(adata, batch_size=batch_size)[source]
        return self.decode(z, target, batch_size=batch_size)

    @classmethod
    def _adata_for_load(cls, adata: MuData | AnnData | None, saved: SavedModel):
        """The stack of the user's MuData, features matched to the saved ones by name."""
        if not isinstance(adata, MuData):
            return adata
        params = saved.attr["init_params_"]["non_kwargs"]
        mods = list(params["modalities"])
        layers = dict(params.get("layers") or {})
        names: dict[str, np.ndarray] = {}
        for mod in mods:
            pref = mod + ":"
            names[mod] = np.array([v[len(pref) :] for v in saved.var_names if v.startswith(pref)])
        return stack_mudata(adata, mods, layers, var_names=names)

    @classmethod
    def _load_model(cls, dir_path: str, adata: MuData | AnnData | None, **kwargs):
        # scvi-tools takes a stack's empty placeholder X for "minified" data and refuses it
        placeholder = None
        if (
            isinstance(adata, AnnData)
            and adata.uns.get(STACK_KEY, {}).get("values") == "modalities"
        ):
            placeholder, adata.X = adata.X, None
        try:
            return super()._load_model(dir_path, adata, **kwargs)
        finally:
            if placeholder is not None:
                adata.X = placeholder
