"""siVAE (Choi & Quon, Genome Biology 2023): module, training plan and model class."""

from ._model import SIVAE
from ._module import SIVAEModule
from ._plan import SIVAETrainingPlan

__all__ = ["SIVAE", "SIVAEModule", "SIVAETrainingPlan"]
