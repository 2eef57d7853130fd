"""Evaluation metrics for second-order (token-patch) attributions, as plain-tensor functions.

Completeness, the pointing game, conditional insertion / deletion, p-faithfulness,
object discrimination and hard negatives (Moeller et al., TMLR 2025; Baniecki et al.,
2025). They take tensors, boxes ``(x0, y0, x1, y1)`` in pixels (end exclusive), image
sizes ``(height, width)``, token spans ``(start, stop)`` (stop exclusive) and, where a
model must be queried, callables on bool masks; the model-side masking is in
:mod:`captum_bilinear.metrics.masking`. Spans, boxes and maps, and their conventions, are
in :mod:`captum_bilinear.selection`.
"""

from captum_bilinear.metrics.completeness import completeness_error, relative_completeness_error
from captum_bilinear.metrics.discrimination import (
    HardNegativeResult,
    ObjectDiscriminationResult,
    hard_negative,
    object_discrimination,
)
from captum_bilinear.metrics.faithfulness import (
    FaithfulnessResult,
    SampledGame,
    explanation_prediction,
    faithfulness_scores,
    game_positions,
    p_faithfulness,
    pearson,
    r_squared,
    rankdata,
    sample_coalitions,
    spearman,
)
from captum_bilinear.metrics.insertion_deletion import CurveResult, curve_masks, deletion_curve, insertion_curve
from captum_bilinear.metrics.masking import (
    PairMaskingGame,
    PatchMaskingScore,
    TokenMaskingScore,
    default_text_players,
    patch_pixel_masks,
)
from captum_bilinear.metrics.pointing_game import PointingGameResult, pointing_game
from captum_bilinear.metrics.summary import summarize

__all__ = [
    # completeness
    "completeness_error",
    "relative_completeness_error",
    # pointing game
    "pointing_game",
    "PointingGameResult",
    # insertion / deletion
    "deletion_curve",
    "insertion_curve",
    "curve_masks",
    "CurveResult",
    # model-side masking
    "PatchMaskingScore",
    "TokenMaskingScore",
    "PairMaskingGame",
    "patch_pixel_masks",
    "default_text_players",
    # p-faithfulness
    "p_faithfulness",
    "SampledGame",
    "FaithfulnessResult",
    "explanation_prediction",
    "faithfulness_scores",
    "game_positions",
    "sample_coalitions",
    "spearman",
    "pearson",
    "r_squared",
    "rankdata",
    # object discrimination, hard negatives
    "object_discrimination",
    "ObjectDiscriminationResult",
    "hard_negative",
    "HardNegativeResult",
    # aggregation
    "summarize",
]
