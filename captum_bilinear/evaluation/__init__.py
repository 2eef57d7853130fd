"""The evaluation suite of both papers (``captum-bilinear evaluate``): every method on
the bundled demo world or on COCO, Flickr30k Entities and HNC, sharded over processes
with ``torch.distributed`` and resumable (:func:`run_evaluation`); several models on the
same pairs (:func:`run_comparison`).

The names below are loaded on first use, so that the command line's help starts
without importing the methods.
"""

from typing import Any

__all__ = ["EVALUATION_METHODS", "EvaluationConfig", "resolve_methods", "results_table", "run_comparison",
           "run_evaluation"]

_WHERE = {
    "EVALUATION_METHODS": "methods", "resolve_methods": "methods", "results_table": "report",
    "run_evaluation": "run", "EvaluationConfig": "run", "run_comparison": "compare",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(f"captum_bilinear.evaluation.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'captum_bilinear.evaluation' has no attribute {name!r}")
