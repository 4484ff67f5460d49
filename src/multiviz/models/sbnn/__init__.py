from ._model import SBNN
from ._module import SBNNModule
from ._plan import Phase, SBNNTrainingPlan, paper_schedule

__all__ = ["SBNN", "SBNNModule", "SBNNTrainingPlan", "Phase", "paper_schedule"]
