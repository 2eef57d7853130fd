"""The evaluation suite of both papers, run on the bundled demo world
(``captum-bilinear evaluate``)."""

from captum_bilinear.evaluation.explainers import EXPLAINERS
from captum_bilinear.evaluation.report import results_table
from captum_bilinear.evaluation.run import run_evaluation

__all__ = ["EXPLAINERS", "results_table", "run_evaluation"]
