r"""The sBNN schedule for K members at once (folds and/or seeds), as one stacked network.

Each member is exactly what a sequential fit builds: its own
:class:`~multiviz.models.sbnn.SBNNModule` (same seed → same initial weights) and its own
:class:`~multiviz.models.sbnn.SBNNTrainingPlan`, whose phase hooks are reused as they
are — k-means pre-training labels, the 40 % pre-training hold-out, the hand-over of the
pre-trained weights, the fresh regression head and the pruning to the member's own
``n_genes`` genes — and whose random generator draws the member's hold-out split and
every epoch's shuffle in the same order as in a sequential fit. Only the minibatch steps
are batched: one stacked forward/backward pass and one :class:`StackedAdam` step for all
members per step, each member on its own cells.

Work removed relative to K sequential fits (the paper's selection is unchanged):

* **Frozen phase.** The bottom two layers are frozen (paper Methods), so their output is
  a fixed function of each cell: computed once per member at the phase start instead
  of at every step.
* **Dead genes (screening).** In the group-lasso phases, every ``screen_every`` epochs
  (after ``screen_after`` lasso epochs, when the paper observes the penalty "kicking
  in"), a gene whose first-layer row norm in a member is below ``screen_tol`` × that
  member's ``n_genes``-th largest norm, *and* whose full-batch data gradient satisfies
  the group-lasso optimality condition for a zero row
  (:math:`\lVert\nabla_{W_1[g]} L_{fit}\rVert_2 \le \lambda`), is set to exactly zero
  and no longer computed. A dropped gene is checked again at every screen and revived
  if its gradient norm exceeds λ (a KKT check, as in glmnet's strong rules). The
  first layer runs on the union of the genes still alive in any member. Genes so far
  below the cut can be selected at pruning only by growing more than ``1/screen_tol``-
  fold, which the check prevents from being missed.
* **Pruned phase.** Each member runs on its own 25 genes; the per-step work is tiny,
  and stacking removes K − 1 of the K Python/autograd/optimiser overheads.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch

from multiviz.models.sbnn._checks import check_sbnn_size

from ._ensemble import StackedAdam, StackedSBNN
from ._ensemble_screen import ScreeningMixin, pad_rows
from ._module import SBNNModule, add_group_lasso_gradient_, per_cell_loss, phase_loss
from ._plan import HANDOVER, VAL_FRACTION, Phase, SBNNTrainingPlan


@dataclass
class EnsembleMember:
    """One member's training data (``(n, genes)`` / ``(n, q)`` float32) and seed."""

    X: torch.Tensor
    Y: torch.Tensor
    seed: int


@dataclass
class MemberFit:
    """A trained member: the pruned module, its pre-pruning row norms and history."""

    module: SBNNModule
    weight_norms_: np.ndarray
    phase_history_: pd.DataFrame
    screening: list[dict] = field(default_factory=list)


class _Ensemble(ScreeningMixin):
    """State of one ensemble run (see :func:`train_ensemble`)."""

    def __init__(
        self,
        members,
        phases,
        *,
        n_latent,
        n_hidden,
        n_clusters,
        n_genes,
        batch_size,
        ridge,
        val_fraction,
        handover,
        screen,
        screen_tol,
        screen_after,
        screen_every,
    ):
        self.K = len(members)
        self.phases = phases
        self.n_genes, self.batch_size, self.ridge = n_genes, batch_size, ridge
        self.screen, self.screen_tol = screen, screen_tol
        self.screen_after, self.screen_every = screen_after, screen_every
        G, q = members[0].X.shape[1], members[0].Y.shape[1]
        check_sbnn_size(
            G, q, n_latent, n_hidden, n_clusters, copies=len(members), latent_arg="bottleneck"
        )
        self.G = G
        self.shared = all(m.X is members[0].X for m in members)
        self.mods = [
            SBNNModule(
                G, q, n_latent=n_latent, n_hidden=n_hidden, n_clusters=n_clusters, seed=m.seed
            )
            for m in members
        ]
        self.plans = [
            SBNNTrainingPlan(
                mod,
                X=m.X,
                Y=m.Y,
                phases=phases,
                n_genes=n_genes,
                batch_size=batch_size,
                ridge=ridge,
                n_clusters=n_clusters,
                val_fraction=val_fraction,
                handover=handover,
                seed=m.seed,
            )
            for mod, m in zip(self.mods, members)
        ]
        self.Y = pad_rows([m.Y for m in members])
        self.n = torch.tensor([m.X.shape[0] for m in members])
        self.dead = torch.zeros(self.K, G, dtype=torch.bool)
        self.lasso_epochs = 0
        self.screen_log: list[list[dict]] = [[] for _ in range(self.K)]

    # -------------------------------------------------------------- data views
    def _columns(self) -> torch.Tensor:
        """Stacked first-layer columns: union of alive genes, or each member's own."""
        if bool(self.mods[0].pruned):
            g = self.mods[0].first.in_features
            return torch.arange(g).expand(self.K, -1)
        union = torch.nonzero(~self.dead.all(0)).flatten()
        return union.expand(self.K, -1)

    def _build_inputs(self, net: StackedSBNN) -> None:
        """Inputs restricted to the stacked columns (shared when all members share X)."""
        if self.shared and not bool(self.mods[0].pruned):
            self.src = self.plans[0]._X.index_select(1, net.cols[0]).contiguous()
            self.src_shared = True
        else:
            self.src = pad_rows(
                [p._X.index_select(1, net.cols[k]) for k, p in enumerate(self.plans)]
            )
            self.src_shared = False

    def _gather(self, source: torch.Tensor, idx: torch.Tensor, shared: bool) -> torch.Tensor:
        if shared:
            return source[idx]
        return source[torch.arange(self.K)[:, None], idx]

    # ------------------------------------------------------------------ phases
    def run(self, progress) -> None:
        for pi, phase in enumerate(self.phases):
            if phase.loss == "genes":
                raise NotImplementedError("The ensemble does not train the gene decoder.")
            for p in self.plans:
                p._phase_idx = pi
                p._start_phase(phase)
            net = StackedSBNN(self.mods, self._columns())
            if not bool(self.mods[0].pruned):
                net.alive = (~self.dead[:, net.cols[0]]).float()[..., None]
            self._build_inputs(net)
            self._run_phase(phase, net, progress)
            net.write_back(self.mods)
            for p in self.plans:
                p._end_phase(phase)
            if not bool(self.mods[0].pruned):
                # the hand-over may restore an earlier state: its zero rows are the dead ones
                for k, mod in enumerate(self.mods):
                    self.dead[k] = mod.first.weight.detach().norm(dim=0) == 0
        for p in self.plans:
            p._phase_idx = len(self.phases)

    def _run_phase(self, phase: Phase, net: StackedSBNN, progress) -> None:
        if phase.epochs <= 0:
            return
        n_frozen = 0
        while n_frozen < len(net.encoder) and f"{net.encoder[n_frozen]}." in phase.frozen:
            n_frozen += 1
        opt = StackedAdam(
            net.params, net.trainable(phase.frozen), lr=phase.lr, weight_decay=2 * self.ridge
        )
        ce = phase.loss == "ce"
        lasso_on = phase.lasso > 0 and "first." not in phase.frozen
        if ce:
            rows = [p._train_pre for p in self.plans]
            labels = pad_rows([p._labels for p in self.plans])
            n_cls = torch.tensor(
                [
                    getattr(p, "n_classes", net.params["cluster_head.bias"].shape[2])
                    for p in self.plans
                ]
            )
            self._class_mask = (
                torch.arange(net.params["cluster_head.bias"].shape[2])[None, None, :]
                >= n_cls[:, None, None]
            )
        if n_frozen:  # the frozen bottom layers map each cell to a fixed activation
            with torch.no_grad():
                x = self.src.expand(self.K, -1, -1) if self.src_shared else self.src
                src, shared = net.trunk(x, n_frozen), False
        for _ in range(phase.epochs):
            if not n_frozen:
                src, shared = self.src, self.src_shared
            perms = []
            for k, p in enumerate(self.plans):
                n = rows[k].numel() if ce else int(self.n[k])
                perm = torch.randperm(n, generator=p._gen)
                perms.append(rows[k][perm] if ce else perm)
            self._epoch(
                phase, net, opt, src, shared, perms, n_frozen, labels if ce else None, lasso_on
            )
            if ce:
                self._validate_pretraining(net, labels)
            if lasso_on:
                self.lasso_epochs += 1
                if (
                    self.screen
                    and self.lasso_epochs >= self.screen_after
                    and self.lasso_epochs % self.screen_every == 0
                ):
                    net, opt = self._screen(phase, net, opt)
            progress.update(1)

    @torch.no_grad()
    def _validate_pretraining(self, net: StackedSBNN, labels: torch.Tensor) -> None:
        """Log each member's hold-out cross-entropy, from the stacked weights.

        With ``handover="best"`` each member keeps its best state, so its plan validates
        (and snapshots) its own module; otherwise all members are scored in one forward
        pass (the same formula, summed in float64; no copy of the weights per epoch).
        """
        if self.plans[0].handover == "best":
            net.write_back(self.mods)
            scores = [p._validate_pretraining() for p in self.plans]
        else:
            rows = [p._val for p in self.plans]
            n_val = torch.tensor([r.numel() for r in rows])
            idx = pad_rows(rows) if int(n_val.max()) else None
            scores = [None] * self.K
            if idx is not None:
                _, out = net.forward(self._gather(self.src, idx, self.src_shared), classify=True)
                out = out.masked_fill(self._class_mask, float("-inf"))
                per = per_cell_loss(out, labels[torch.arange(self.K)[:, None], idx], "ce")
                valid = torch.arange(idx.shape[1])[None, :] < n_val[:, None]
                total = (per.double() * valid).sum(1)
                scores = [float(t / n) if n else None for t, n in zip(total, n_val)]
        for p, val_ce in zip(self.plans, scores):
            if val_ce is not None:
                p.epoch_log[-1]["val_cross_entropy"] = val_ce

    def _epoch(self, phase, net, opt, src, shared, perms, n_frozen, labels, lasso_on) -> None:
        B, K = self.batch_size, self.K
        lens = torch.tensor([p.numel() for p in perms])
        steps = int(math.ceil(int(lens.max()) / B))
        idx_all = torch.zeros(K, steps * B, dtype=torch.long)
        valid_all = torch.zeros(K, steps * B)
        for k, p in enumerate(perms):
            idx_all[k, : p.numel()] = p
            valid_all[k, : p.numel()] = 1.0
        tot = torch.zeros(K, 3)
        n_steps = torch.zeros(K)
        ar = torch.arange(K)[:, None]
        for s in range(steps):
            idx = idx_all[:, s * B : (s + 1) * B]
            valid = valid_all[:, s * B : (s + 1) * B]
            active = valid.sum(1) > 0
            xb = self._gather(src, idx, shared)
            _, out = net.forward(xb, start=n_frozen, classify=labels is not None)
            if labels is not None:
                out = out.masked_fill(self._class_mask, float("-inf"))  # kept clusters only
            target = (self.Y if labels is None else labels)[ar, idx]
            fit = phase_loss(out, target, phase.loss, valid)  # each member's mean
            opt.zero_grad()
            (fit * active).sum().backward()
            net.mask_dead_gradients_()
            if lasso_on:
                pen = add_group_lasso_gradient_(
                    net.first_weight(),
                    net.params["first.weight"].grad,
                    (phase.lasso * active.to(fit.dtype))[:, None, None],
                    dim=2,
                ).sum(dim=(1, 2))
                loss = fit + phase.lasso * pen
            else:
                pen = torch.zeros(K)
                loss = fit
            opt.step(None if bool(active.all()) else active)
            act = active.float()[:, None]
            tot += torch.stack([loss, fit, pen], 1).detach() * act
            n_steps += active.float()
        tot = tot / n_steps.clamp(min=1)[:, None]
        for k, p in enumerate(self.plans):
            p.epoch_log.append(
                {
                    "epoch": len(p.epoch_log),
                    "phase": phase.name,
                    "loss": float(tot[k, 0]),
                    "fit": float(tot[k, 1]),
                    "group_lasso": float(tot[k, 2]),
                }
            )


def train_ensemble(
    members: list[EnsembleMember],
    phases: list[Phase],
    *,
    n_latent: int = 2,
    n_hidden: tuple[int, int] = (512, 128),
    n_clusters: int | None = None,
    n_genes: int = 25,
    batch_size: int = 32,
    ridge: float = 1e-10,
    val_fraction: float = VAL_FRACTION,
    handover: str = HANDOVER,
    screen: bool = True,
    screen_tol: float = 0.01,
    screen_after: int = 10,
    screen_every: int = 5,
    enable_progress_bar: bool = False,
) -> list[MemberFit]:
    """Train K sBNN members with the single model's schedule as one stacked network.

    Parameters
    ----------
    members
        Training data and seed of each member (a member's ``X`` may be the same tensor
        as another's: seeds on the same cells share one copy).
    phases
        The schedule, e.g. :func:`~multiviz.models.sbnn.paper_schedule` (no gene
        decoder phase).
    n_latent, n_hidden, n_clusters, n_genes, batch_size, ridge, val_fraction, handover
        As in :meth:`multiviz.models.SBNN.train` (paper defaults: 2 or 64, (512, 128),
        K (``None``: scaled to the member's cells, 20 from 1,092 up), 25 genes, batch 32, 1e-10, 0.4; the last pre-training epoch is handed
        over, as in the reference code).
    screen
        Stop computing genes the group lasso has zeroed (see the module docstring).
    screen_tol
        A gene is a drop candidate below this fraction of the member's
        ``n_genes``-th largest row norm (0.01: two orders of magnitude below the cut).
    screen_after, screen_every
        First screen after this many lasso epochs (10; the paper's lasso "kicks in"
        after ~10 epochs), then every ``screen_every`` (5) lasso epochs.
    enable_progress_bar
        Show an epoch progress bar; without one, a progress line is logged every
        ``mv.settings.progress_interval`` seconds.

    Returns
    -------
    One :class:`MemberFit` per member, in order.

    Notes
    -----
    Memory: activations, gradients and minibatches are ``K × batch_size`` rows; weights
    and Adam state ``K ×`` one network. Inputs are held once per distinct training matrix
    (seeds on the same cells share one; each cross-validation fold has its own, because
    its normalisation and z-scoring are fitted on its own training cells), restricted to
    the genes still computed.
    """
    run = _Ensemble(
        members,
        phases,
        n_latent=n_latent,
        n_hidden=tuple(n_hidden),
        n_clusters=n_clusters,
        n_genes=n_genes,
        batch_size=batch_size,
        ridge=ridge,
        val_fraction=val_fraction,
        handover=handover,
        screen=screen,
        screen_tol=screen_tol,
        screen_after=screen_after,
        screen_every=screen_every,
    )
    total = int(sum(p.epochs for p in phases))
    if not enable_progress_bar:  # progress lines in the log instead (scripts, batch jobs)
        from ...train._progress import EpochProgress

        def label() -> str:
            k = min(max(run.plans[0]._phase_idx, 0), len(phases) - 1)
            return (
                f"sBNN ensemble ({len(members)} members) {phases[k].name} ({k + 1}/{len(phases)})"
            )

        run.run(EpochProgress(label, total))
    else:
        from tqdm.auto import tqdm

        with tqdm(total=total, desc="sBNN ensemble", unit="epoch") as bar:
            run.run(bar)
    return [
        MemberFit(
            module=mod,
            weight_norms_=plan.weight_norms_before_pruning,
            phase_history_=pd.DataFrame(plan.epoch_log),
            screening=run.screen_log[k],
        )
        for k, (mod, plan) in enumerate(zip(run.mods, run.plans))
    ]
