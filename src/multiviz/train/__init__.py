"""Training helpers shared by the models: a low-overhead Lightning training plan."""

from ._lean_plan import LeanTrainingPlan

__all__ = ["LeanTrainingPlan"]
