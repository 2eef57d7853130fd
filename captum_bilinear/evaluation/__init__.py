"""The evaluation suite of both papers, run on the bundled demo world
(``captum-bilinear evaluate``)."""

import importlib
from typing import Any

# Imported on first use, so that the command line's help (which reads
# ``evaluation.command``) starts without loading the methods.
_WHERE = {
    "EXPLAINERS": "captum_bilinear.evaluation.explainers",
    "results_table": "captum_bilinear.evaluation.report",
    "run_evaluation": "captum_bilinear.evaluation.run",
}

__all__ = ["EXPLAINERS", "results_table", "run_evaluation"]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'captum_bilinear.evaluation' has no attribute {name!r}")
