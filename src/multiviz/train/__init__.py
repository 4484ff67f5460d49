"""Training helpers shared by the models: the fit context and a low-overhead training plan."""

from __future__ import annotations

from ._fit_context import TRAINING_VOCABULARY, fit_context, format_elapsed, resolve_progress_bar

__all__ = [
    "LeanTrainingPlan",
    "TRAINING_VOCABULARY",
    "fit_context",
    "format_elapsed",
    "resolve_progress_bar",
]


def __getattr__(name: str):
    # The plan subclasses scvi-tools' TrainingPlan: import it (and torch) only when used.
    if name == "LeanTrainingPlan":
        from ._lean_plan import LeanTrainingPlan

        return LeanTrainingPlan
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
