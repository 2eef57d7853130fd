"""From records to ``results.json``: per-method means and the analyses of exCLIP §4.3.

* the table: PGA, mPGE, CID, CII, CTD, CTI (means over objects), p-faithfulness and s /
  pair (means over examples), object discrimination (examples with two or more
  objects), δS / δA of the hard negatives, BII's median completeness error;
* class-wise PGE (per category: count, mean, median), the median PGE and the share of
  objects with PGE > 0.8;
* the significance of one method's PGE distribution over another's: the almost
  stochastic order test (Dror et al. 2019) of ``deepsig.aso``, ``epsilon_min`` < 0.5
  meaning the first is better (the smaller, the stronger);
* hard negatives per swap category (HNC's caption types, the demo's colour / shape).
"""

import math
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from captum_bilinear.evaluation.scoring import CURVE_GRID

CURVE_KEYS = ("CID", "CII", "CTD", "CTI")
#: The PGE above which an object counts as "well pointed" (exCLIP §4.3).
HIGH_PGE = 0.8


def mean_or_nan(values: Sequence[Optional[float]]) -> float:
    """The mean of the finite values (``nan`` when there are none).

    Example:
        >>> mean_or_nan([1.0, None, float("nan"), 3.0])
        2.0
    """
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")


def _median(values: Sequence[Optional[float]]) -> float:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.median(finite)) if finite else float("nan")


def _of(records: List[Dict[str, Any]], kind: str, method: Optional[str] = None) -> List[Dict[str, Any]]:
    return [r for r in records if r.get("kind") == kind and (method is None or r.get("method") == method)]


def _flatten(blocks: Dict[str, List[Dict[str, Any]]]) -> List[Dict[str, Any]]:
    return [record for records in blocks.values() for record in records]


def method_summary(records: List[Dict[str, Any]], method: str) -> Dict[str, Any]:
    """The table's values of one method."""
    objects, examples, negatives = (_of(records, kind, method) for kind in ("object", "example", "negative"))
    pge = [r["PGE"] for r in objects if "PGE" in r]
    summary: Dict[str, Any] = {
        "PGA": mean_or_nan([r.get("PGA") for r in objects]),
        "mPGE": mean_or_nan(pge),
        **{key: mean_or_nan([r.get(key) for r in objects]) for key in CURVE_KEYS},
        "p_faithfulness": mean_or_nan([r.get("p_faithfulness") for r in examples]),
        "p_faithfulness_r2": mean_or_nan([r.get("p_faithfulness_r2") for r in examples]),
        "seconds_per_pair": mean_or_nan([r.get("seconds_per_pair") for r in examples]),
        "own_positive": mean_or_nan([r.get("own_positive") for r in examples]),
        "cross_negative": mean_or_nan([r.get("cross_negative") for r in examples]),
        "own_above_cross": mean_or_nan([r.get("own_above_cross") for r in examples]),
        "hard_negative_delta_S": mean_or_nan([r.get("delta_S") for r in negatives]),
        "hard_negative_delta_A": mean_or_nan([r.get("delta_A") for r in negatives]),
        "hard_negative_share_A_lower": mean_or_nan([float(r["delta_A"] < 0) for r in negatives]),
        "hard_negatives": len(negatives),
        "completeness_error": _median([r.get("completeness_error") for r in examples]),
        "median_PGE": _median(pge),
        f"share_PGE_above_{HIGH_PGE}": mean_or_nan([float(v > HIGH_PGE) for v in pge]),
        "objects": len(objects),
        "examples": len(examples),
    }
    steps = [r["n_steps_used"] for r in examples if "n_steps_used" in r]
    if steps:
        summary["n_steps_median"] = float(np.median(steps))
    return summary


def summarize_methods(blocks: Dict[str, List[Dict[str, Any]]], methods: Sequence[str]) -> Dict[str, Dict[str, Any]]:
    """:func:`method_summary` of each method over the complete examples.

    Example:
        >>> blocks = {"e1": [{"kind": "object", "method": "A", "PGA": 1.0, "PGE": 0.9},
        ...                  {"kind": "example", "method": "A", "p_faithfulness": 0.5, "seconds_per_pair": 2.0}]}
        >>> summary = summarize_methods(blocks, ["A"])["A"]
        >>> summary["PGA"], summary["share_PGE_above_0.8"], summary["p_faithfulness"]
        (1.0, 1.0, 0.5)
    """
    records = _flatten(blocks)
    return {method: method_summary(records, method) for method in methods}


def class_wise(records: List[Dict[str, Any]], method: str) -> Dict[str, Dict[str, float]]:
    """Per category: count, mean and median PGE, PGA (most frequent first)."""
    by_category: Dict[str, List[Dict[str, Any]]] = {}
    for record in _of(records, "object", method):
        by_category.setdefault(str(record.get("category")), []).append(record)
    table = {category: {"count": len(rows), "mPGE": mean_or_nan([r["PGE"] for r in rows]),
                        "median_PGE": _median([r["PGE"] for r in rows]),
                        "PGA": mean_or_nan([r["PGA"] for r in rows])}
             for category, rows in by_category.items()}
    return dict(sorted(table.items(), key=lambda item: (-item[1]["count"], item[0])))


#: The fewest scores a side for the significance test: below it the bootstrap says little,
#: and deepsig's 1000 iterations cost seconds a pair (most of a small run's summary).
MIN_SCORES_FOR_SIGNIFICANCE = 20


#: deepsig's bootstrap iterations (its default).
BOOTSTRAP_ITERATIONS = 1000


def almost_stochastic_order(scores_a: Sequence[float], scores_b: Sequence[float], seed: int = 0,
                            minimum: int = MIN_SCORES_FOR_SIGNIFICANCE,
                            iterations: int = BOOTSTRAP_ITERATIONS) -> Dict[str, Any]:
    """``deepsig.aso(scores_a, scores_b)``: ``epsilon_min`` < 0.5 says A's scores are
    almost stochastically larger (the smaller, the stronger); ``nan`` without deepsig or
    with fewer than ``minimum`` scores a side.

    Example:
        >>> result = almost_stochastic_order([0.9, 0.8, 0.95, 0.85] * 5, [0.1, 0.2, 0.15, 0.3] * 5)
        >>> result["epsilon_min"] < 0.5
        True
    """
    if len(scores_a) < max(2, minimum) or len(scores_b) < max(2, minimum):
        return {"epsilon_min": float("nan"), "note": f"fewer than {max(2, minimum)} scores"}
    try:
        from deepsig import aso
    except ImportError:
        return {"epsilon_min": float("nan"), "note": "deepsig is not installed (pip install 'captum-bilinear[datasets]')"}
    epsilon = aso(np.asarray(scores_a, dtype=float), np.asarray(scores_b, dtype=float), confidence_level=0.95,
                  num_bootstrap_iterations=iterations, show_progress=False, seed=seed)
    return {"epsilon_min": float(epsilon)}


def significance(records: List[Dict[str, Any]], methods: Sequence[str], reference: Optional[str] = None,
                 minimum: int = MIN_SCORES_FOR_SIGNIFICANCE, iterations: int = BOOTSTRAP_ITERATIONS,
                 ) -> List[Dict[str, Any]]:
    """ASO of the reference method's PGE (default BII, else the first method) against
    every other method's, both ways (``nan`` with fewer than ``minimum`` objects).

    Example:
        >>> records = [{"kind": "object", "method": m, "PGE": v} for m, v in (("A", 0.9), ("B", 0.1))]
        >>> significance(records, ["A", "B"])[0]
        {'a': 'A', 'b': 'B', 'epsilon_min': nan, 'note': 'fewer than 20 scores'}
    """
    if not methods:
        return []
    pge = {m: [r["PGE"] for r in _of(records, "object", m)] for m in methods}
    reference = reference or ("BilinearIntegratedInteractions" if "BilinearIntegratedInteractions" in methods
                              else methods[0])
    rows = []
    for other in methods:
        if other == reference:
            continue
        rows.append({"a": reference, "b": other,
                     **almost_stochastic_order(pge[reference], pge[other], minimum=minimum, iterations=iterations)})
        rows.append({"a": other, "b": reference,
                     **almost_stochastic_order(pge[other], pge[reference], minimum=minimum, iterations=iterations)})
    return rows


def hard_negatives_by_category(records: List[Dict[str, Any]], method: str) -> Dict[str, Dict[str, float]]:
    """Per swap category: count, mean δS, mean δA, share of δA < 0."""
    by_category: Dict[str, List[Dict[str, Any]]] = {}
    for record in _of(records, "negative", method):
        by_category.setdefault(str(record.get("category")), []).append(record)
    return {category: {"count": len(rows), "delta_S": mean_or_nan([r["delta_S"] for r in rows]),
                       "delta_A": mean_or_nan([r["delta_A"] for r in rows]),
                       "share_A_lower": mean_or_nan([float(r["delta_A"] < 0) for r in rows]),
                       "share_S_lower": mean_or_nan([float(r["delta_S"] < 0) for r in rows])}
            for category, rows in sorted(by_category.items())}


def summarize(blocks: Dict[str, List[Dict[str, Any]]], methods: Sequence[str]) -> Dict[str, Any]:
    """``results.json``'s dataset counts, table, mean curves and analyses from the
    complete examples' records."""
    records = _flatten(blocks)
    pairs = _of(records, "pair")
    n_objects = sum(int(r.get("objects", 0)) for r in pairs)
    curves = {m: {key: np.mean(np.asarray(values), axis=0).tolist() for key in CURVE_KEYS
                  if (values := [r[f"{key}_curve"] for r in _of(records, "object", m) if f"{key}_curve" in r])}
              for m in methods}
    return {
        "dataset": {"examples": len(pairs), "objects": n_objects,
                    "hard_negatives": sum(int(r.get("negatives", 0)) for r in pairs)},
        "objects": n_objects,
        "methods": summarize_methods(blocks, methods),
        "curves": {"fractions": CURVE_GRID.tolist(), "mean": curves},
        "analyses": {
            "class_wise_PGE": {m: class_wise(records, m) for m in methods},
            "significance": {"test": "almost stochastic order of PGE (deepsig.aso, confidence 0.95)",
                             "pairs": significance(records, methods)},
            "hard_negatives": {m: hard_negatives_by_category(records, m) for m in methods
                               if _of(records, "negative", m)},
        },
    }


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
