"""siVAE training steps: feature-wise input, interpretability-term starts, the phase loop.

A mixin of :class:`~multiviz.models.SIVAE` (kept apart so that ``_model.py`` holds
construction and the training loop).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from functools import partial

import numpy as np
import pandas as pd
import torch
from scvi import REGISTRY_KEYS
from scvi.dataloaders import DataSplitter
from scvi.model._utils import use_distributed_sampler
from scvi.train import TrainRunner

from multiviz import _logging as logg
from multiviz._validate import FitError, check_fit_finite
from multiviz.train._progress import progress_callbacks

from ._convergence import WARMUP_FRACTION, ConvergenceStop, stop_reason
from ._feature_input import build_feature_input, library_log_stats
from ._plan import PHASE_NAMES, GeneDataModule


class SIVAEInitMixin:
    """Library statistics, the feature-wise input and the starts of the interpretability term."""

    # -- training ---------------------------------------------------------------------------------
    def _prepare_feature_side(self, build_input: bool = True) -> None:
        """Library statistics and (if ``build_input``) the feature-wise input, from training cells only."""
        module = self.module
        x = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        if not bool(module.is_prepared):
            mean, std = library_log_stats(x, self._train_idx)
            module.library_log_mean.fill_(mean)
            module.library_log_std.fill_(std)
            module.n_train_cells.fill_(float(len(self._train_idx)))
        if not build_input or bool(module.is_prepared):
            return
        labels = None
        if REGISTRY_KEYS.LABELS_KEY in self.adata_manager.data_registry:
            labels = np.asarray(
                self.adata_manager.get_from_registry(REGISTRY_KEYS.LABELS_KEY)
            ).ravel()
        with logg.timed(
            f"building the siVAE feature-wise input ({self._feature_input_kind})",
            level=logging.DEBUG,
        ):
            feat = build_feature_input(
                x,
                self._train_idx,
                kind=self._feature_input_kind,
                n_components=module.n_feature_input,
                labels=labels,
                log_normalise=module.likelihood == "nb",
                random_state=self._random_state,
            )
        module.feature_input.copy_(
            torch.as_tensor(feat, dtype=torch.float32, device=module.bias.device)
        )
        module.is_prepared.fill_(True)

    @torch.no_grad()
    def _init_interp_intercepts(self, batch_size: int) -> None:
        """Start the intercepts of the interpretability term at their least-squares values.

        With ``z = 0`` the linear term ``v_{f,1} · z_{c,1} + b'_f + j_f · s_c`` (eq. 23) is an
        affine function of the covariates; its least-squares fit over training cells is the
        natural start, so that the term does not push batch effects into ``z`` while the
        intercepts are still learning.
        """
        m = self.module
        if m.linear or m.gamma == 0:
            return
        a = b = None
        for tensors in self._make_data_loader(
            self.adata, self._train_idx, batch_size=max(batch_size, 1024)
        ):
            inp = m._get_inference_input(tensors)
            x = inp["x"].to(m.bias.device)
            design = torch.ones(x.shape[0], 1, dtype=torch.float64, device=x.device)
            if inp["cov"] is not None:
                design = torch.cat([design, inp["cov"].to(x.device).double()], -1)
            target = m.interp_target(x).double()
            a = design.T @ design if a is None else a + design.T @ design
            b = design.T @ target if b is None else b + design.T @ target
        coef = torch.linalg.pinv(a) @ b
        m.interp_bias.copy_(coef[0].float())
        if m.interp_cov is not None:
            m.interp_cov.weight.copy_(coef[1:].T.float())

    @torch.no_grad()
    def _init_interp_pretrain(self, batch_size: int) -> None:
        """Fill ``z_gram`` / ``v_lstsq`` for the step-2 interpretability term (step-1 scores).

        With the scores fixed at their step-1 posteriors ``N(mu_c, diag sigma_c^2)`` and the
        covariates and intercept partialled out (design ``D = [1, s_c]``), the sum over
        training cells of ``E (t_cf - b_f - j_f s_c - v_f . z_c)^2`` is, up to a constant,
        ``(v_f - beta_f)^T G (v_f - beta_f)`` with ``G = Z~^T Z~ + diag(sum_c sigma_c^2)`` and
        ``beta_f = G^-1 Z~^T t~_f``; ``~`` marks residuals after regressing on ``D``.
        """
        m = self.module
        k = m.n_latent
        sums: dict[str, torch.Tensor] = {}
        for tensors in self._make_data_loader(
            self.adata, self._train_idx, batch_size=max(batch_size, 1024)
        ):
            inp = m._get_inference_input(tensors)
            x = inp["x"].to(m.bias.device)
            cov = inp["cov"].to(m.bias.device) if inp["cov"] is not None else None
            qz = m.inference(x, cov)["qz"]
            mu, var = qz.loc.double(), qz.scale.double() ** 2
            design = torch.ones(x.shape[0], 1, dtype=torch.float64, device=x.device)
            if cov is not None:
                design = torch.cat([design, cov.double()], -1)
            t = m.interp_target(x).double()
            parts = {"dd": design.T @ design, "dz": design.T @ mu, "dt": design.T @ t}
            parts.update({"zz": mu.T @ mu, "zt": mu.T @ t, "var": var.sum(0)})
            for key, val in parts.items():
                sums[key] = sums[key] + val if key in sums else val
        dd_inv = torch.linalg.pinv(sums["dd"])
        zz = sums["zz"] - sums["dz"].T @ dd_inv @ sums["dz"]
        zt = sums["zt"] - sums["dz"].T @ dd_inv @ sums["dt"]
        gram = zz + torch.diag(sums["var"])
        beta = torch.linalg.solve(gram + 1e-8 * torch.eye(k, dtype=gram.dtype), zt)
        m.z_gram.copy_(gram.float())
        m.v_lstsq.copy_(beta.T.float())

    def _run_phases(
        self,
        epochs: tuple[int, int, int],
        *,
        batch_size: int,
        gene_batch_size_pretrain: int,
        accelerator,
        devices,
        early_stopping: bool,
        plan_kwargs: dict,
        datasplitter_kwargs: dict,
        trainer_kwargs: dict,
        joint_batch_size: int | None = None,
        convergence: dict[int, dict] | None = None,
    ) -> None:
        """Run the steps with ``epochs > 0``; the history gets one entry per step.

        Steps 1 and 3 draw ``batch_size`` and ``joint_batch_size`` cells per step
        (``None``: ``batch_size``), step 2 ``gene_batch_size_pretrain`` genes.
        ``convergence``: per step the plan of
        :func:`~multiviz.models.sivae._convergence.convergence_plan`; each step then stops on
        its criterion (``epochs`` are its maxima); steps 2 and 3 keep their best epoch's
        weights, step 1 its last. Without it, step 1 warms the KL weight up over a quarter of
        its epochs.
        """
        sizes = {1: batch_size, 2: gene_batch_size_pretrain}
        sizes[3] = batch_size if joint_batch_size is None else joint_batch_size
        self.steps_ = {}
        phase_history = dict(self.phase_history_ or {}) if self.is_trained_ else {}
        old_frames = dict(self.history_ or {}) if self.is_trained_ else {}
        was_trained, prior_phase = self.is_trained_, self.module.phase
        trained_any = False
        try:
            for phase, n in zip((1, 2, 3), epochs):
                if n <= 0:
                    continue
                if phase == 2 and self.module.interp_pretrain:
                    self._init_interp_pretrain(batch_size)
                if phase == 3:
                    self._init_interp_intercepts(batch_size)
                self.module.set_phase(phase)
                self.module.train()  # Lightning keeps the mode it finds; never train in eval
                plan = self._phase_plan(phase, n, convergence, plan_kwargs)
                self.is_trained_ = False  # each phase starts its own history
                self.history_ = None
                watch, stop = _phase_stopping(phase, n, convergence, early_stopping)
                self._train_phase(
                    phase,
                    n,
                    plan,
                    partial(
                        self._phase_data, phase, sizes[phase], datasplitter_kwargs, trainer_kwargs
                    ),
                    watch=watch,
                    stop=stop,
                    accelerator=accelerator,
                    devices=devices,
                    trainer_kwargs=trainer_kwargs,
                    plan_kwargs=plan_kwargs,
                )
                self._record_phase(
                    phase, watch, convergence, plan_kwargs, phase_history, old_frames
                )
                trained_any = True
        finally:
            self.phase_history_ = phase_history
            self.history_ = old_frames
            self.module.unfreeze()
            trained_joint = epochs[2] > 0 or (was_trained and prior_phase == 3)
            self.module.phase = 3 if trained_joint else 1
            self.module.eval()
            self.is_trained_ = was_trained or trained_any
        self.train_indices, self.validation_indices = self._train_idx, self._val_idx

    def _phase_data(
        self, phase: int, size: int, datasplitter_kwargs: dict, trainer_kwargs: dict
    ) -> DataSplitter | GeneDataModule:
        """Step ``phase``'s data: ``size`` training cells (steps 1, 3) or genes (step 2) a step."""
        if phase == 2:
            return GeneDataModule(self.module.n_input, size, self._random_state)
        return DataSplitter(
            self.adata_manager,
            external_indexing=[self._train_idx, self._val_idx, np.array([], dtype=int)],
            batch_size=size,
            distributed_sampler=use_distributed_sampler(trainer_kwargs.get("strategy")),
            **datasplitter_kwargs,
        )

    def _phase_plan(
        self, phase: int, n: int, convergence: dict[int, dict] | None, plan_kwargs: dict
    ):
        """The training plan of step ``phase`` (``n`` epochs), with its KL warm-up."""
        if convergence is not None:
            warmup = convergence[phase]["warmup_epochs"]
        else:  # an explicit schedule warms the KL weight up over a quarter of step 1
            warmup = math.ceil(n * WARMUP_FRACTION) if phase == 1 else 0
        return self._training_plan_cls(
            self.module,
            phase=phase,
            **({"n_epochs_kl_warmup": warmup} if warmup else {}),
            **plan_kwargs,
        )

    def _train_phase(
        self,
        phase: int,
        n: int,
        plan,
        make_data: Callable[[], DataSplitter | GeneDataModule],
        *,
        watch: tuple,
        stop: dict,
        accelerator,
        devices,
        trainer_kwargs: dict,
        plan_kwargs: dict,
    ) -> None:
        """Run step ``phase`` for at most ``n`` epochs; a NaN distribution parameter is a FitError."""
        step = f"siVAE step {phase}/3 ({PHASE_NAMES[phase]})"
        callbacks = [
            *(trainer_kwargs.get("callbacks") or []),
            *progress_callbacks(step, bool(trainer_kwargs.get("enable_progress_bar"))),
            *watch,
        ]
        with logg.timed(
            f"siVAE step {phase}/3 ({PHASE_NAMES[phase]}, {n} epochs)", level=logging.DEBUG
        ):
            try:
                TrainRunner(
                    self,
                    training_plan=plan,
                    data_splitter=make_data(),
                    max_epochs=n,
                    accelerator=accelerator,
                    devices=devices,
                    **stop,
                    **{**trainer_kwargs, "callbacks": callbacks},
                )()
            except ValueError as err:  # torch.distributions refusing a NaN parameter
                if "Expected parameter" not in str(err):
                    raise
                raise FitError(
                    f"siVAE diverged during step {phase} ({PHASE_NAMES[phase]}): a "
                    f"distribution parameter became NaN. Lower the learning rate `lr` "
                    f"(now {plan_kwargs['lr']:g}). Nothing was written."
                ) from err

    def _record_phase(
        self,
        phase: int,
        watch: tuple,
        convergence: dict[int, dict] | None,
        plan_kwargs: dict,
        phase_history: dict,
        old_frames: dict,
    ) -> None:
        """Check step ``phase``'s losses; add it to ``steps_`` and both histories (in place)."""
        frames = dict(self.history_ or {})
        frame = {k: v.to_numpy(dtype=float).ravel() for k, v in frames.items()}
        check_fit_finite(
            frame.get("train_loss", []),
            model="siVAE",
            phase=f"step {phase} ({PHASE_NAMES[phase]})",
            hint=f"lower the learning rate `lr` (now {plan_kwargs['lr']:g})",
        )
        name = PHASE_NAMES[phase]
        run = len(frame.get("train_loss", []))
        self.steps_[name] = {"epochs": run, "steps": int(self.trainer.global_step)}
        if watch:
            reason = stop_reason(watch[0], convergence[phase])
            best = watch[0].best_epoch + 1
            self.steps_[name].update(stopped_by=reason, best_epoch=best)
            kept = "the last" if phase == 1 else f"the best ({best})"
            logg.info(
                f"    siVAE step {phase}/3 ({name}): {run} epochs, {kept} kept; "
                f"stopped because {reason}"
            )
        if name in phase_history:  # a later train() call continues the step's history
            prev = phase_history[name]
            frame = {k: np.r_[prev[k], v] for k, v in frame.items() if k in prev}
        phase_history[name] = frame
        prefix = "" if phase == 3 else name + "_"
        for key, value in frames.items():
            if prefix + key in old_frames:
                value = pd.concat([old_frames[prefix + key], value], ignore_index=True)
            old_frames[prefix + key] = value


def _phase_stopping(
    phase: int, n: int, convergence: dict[int, dict] | None, early_stopping: bool
) -> tuple[tuple, dict]:
    """Step ``phase``'s convergence callback (if any) and the trainer's stopping settings."""
    stop = {}
    watch = ()
    if convergence is not None:
        step_plan = convergence[phase]
        watch = (
            ConvergenceStop(
                step_plan["monitor"],
                step_plan["patience"],
                start_epoch=step_plan["warmup_epochs"],
                restore=phase != 1,
            ),
        )
        stop = {"min_epochs": min(step_plan["min_epochs"], n)}
        if convergence[phase]["monitor"].startswith("validation"):
            stop["check_val_every_n_epoch"] = 1
    elif early_stopping and phase != 2:
        stop = {"early_stopping": True, "early_stopping_monitor": "validation_loss"}
    return watch, stop
