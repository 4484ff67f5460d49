"""Warning categories: every user-facing warning is a ``warnings.warn`` with one of these.

Filter them as any Python warning, e.g.
``warnings.filterwarnings("ignore", category=mv.FitQualityWarning)`` or
``warnings.filterwarnings("error", category=mv.MultivizWarning)``; pytest's ``pytest.warns``
and ``warnings.catch_warnings`` see them. The same text also goes to the ``multiviz`` logger
(for log files); multiviz's own console handler does not print it a second time.
"""

from __future__ import annotations

__all__ = ["DataWarning", "FitQualityWarning", "MultivizWarning"]


class MultivizWarning(UserWarning):
    """Base class of every warning multiviz issues."""


class FitQualityWarning(MultivizWarning):
    """A fit that does not beat its trivial or linear baseline, or a weak fit's symptoms.

    Issued when a model scores no better than the mean predictor (training or held-out
    R²), when the sBNN does not beat sRRR on the same folds, when a pre-trained network
    predicts its clusters no better than class frequencies, or when siVAE reconstructs no
    better than PCA with as many components.
    """


class DataWarning(MultivizWarning):
    """The data were changed or used in a way the call did not literally ask for.

    E.g. constant features dropped, fewer genes available than requested, genes of the
    training data missing from new cells.
    """
