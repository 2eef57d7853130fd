"""The metrics of both papers for one method on one generated scene."""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch import Tensor

from captum_bilinear.evaluation.explainers import PairExplanation
from captum_bilinear.terms import InteractionTerms
from captum_bilinear.metrics import (
    PatchMaskingScore,
    TokenMaskingScore,
    deletion_curve,
    hard_negative,
    insertion_curve,
    object_discrimination,
    p_faithfulness,
    pointing_game,
)

#: Fractions the per-object curves are resampled to (for mean curves over objects).
CURVE_GRID = np.linspace(0.0, 1.0, 21)


class CachedGame:
    """A game whose values are computed once per set of coalitions: every method of a
    scene is scored on the same coalitions (same seed), so the game runs once per scene."""

    def __init__(self, game: Any) -> None:
        self.game = game
        self.n_players = game.n_players
        self.positions_a, self.positions_b = game.positions_a, game.positions_b
        self._values: Dict[Tuple[Tuple[int, ...], bytes], Tensor] = {}

    def __call__(self, coalitions: Tensor) -> Tensor:
        key = (tuple(coalitions.shape), coalitions.detach().cpu().numpy().tobytes())
        if key not in self._values:
            with torch.no_grad():
                self._values[key] = self.game(coalitions)
        return self._values[key]


@dataclass
class SceneContext:
    """What every method's scoring of one scene shares."""

    image_size: Tuple[int, int]  #: (height, width)
    grid: Tuple[int, int]
    has_cls: bool
    players_a: Tensor  #: caption positions scored by CTD / CTI and p-faithfulness
    patch_score: PatchMaskingScore  #: the caption fixed, image patches masked
    token_score: TokenMaskingScore  #: the image fixed, caption tokens masked
    game: CachedGame  #: both sides masked (p-faithfulness), a PairMaskingGame
    empty_game_value: float  #: nu(empty coalition)
    p: float = 0.5
    n_coalitions: int = 256


def _resampled(fractions: Tensor, scores: Tensor) -> List[float]:
    return np.interp(CURVE_GRID, fractions.numpy(), scores.numpy()).tolist()


def object_records(explanation: PairExplanation, objects: Any, context: SceneContext) -> List[Dict[str, Any]]:
    """Per named object: pointing game (PGA hit, PGE), CID / CII on the span's image map,
    CTD / CTI on the box's caption map (the curves resampled to :data:`CURVE_GRID`)."""
    records = []
    for obj in objects:
        record: Dict[str, Any] = {}
        image_map = explanation.image_map(obj.span, context.grid, context.has_cls)
        if image_map is not None:
            result = pointing_game(image_map, obj.box, context.image_size)
            record.update(PGA=float(result.hit), PGE=result.energy)
            for key, curve in (("CID", deletion_curve), ("CII", insertion_curve)):
                evaluated = curve(image_map.flatten(), context.patch_score)
                record[key] = evaluated.auc
                record[f"{key}_curve"] = _resampled(evaluated.fractions, evaluated.scores)
        token_map = explanation.token_map(obj.box, context.image_size, context.grid, context.has_cls)
        if token_map is not None:
            order = token_map[context.players_a]
            for key, curve in (("CTD", deletion_curve), ("CTI", insertion_curve)):
                evaluated = curve(order, context.token_score)
                record[key] = evaluated.auc
                record[f"{key}_curve"] = _resampled(evaluated.fractions, evaluated.scores)
        records.append(record)
    return records


def faithfulness_record(explanation: PairExplanation, context: SceneContext, seed: int) -> Dict[str, float]:
    """p-faithfulness (Spearman and R^2) of the explanation's prediction of the game over
    coalitions of caption players and image patches drawn with probability ``p``.

    The explanation is read as :class:`~captum_bilinear.InteractionTerms` over every
    position (positions that are no player of the game are always present): interaction
    methods with their pairs (FIxLIP also with its intercept and first-order terms),
    first-order methods with their per-position values; without an intercept of their
    own they predict from ``nu(empty)``."""
    if explanation.interactions is not None:
        cross = explanation.interactions.double()
        first_a = explanation.first_a.double() if explanation.first_a is not None else torch.zeros(cross.shape[0],
                                                                                                    dtype=torch.float64)
        first_b = explanation.first_b.double() if explanation.first_b is not None else torch.zeros(cross.shape[1],
                                                                                                    dtype=torch.float64)
    else:
        n_image = context.grid[0] * context.grid[1] + (1 if context.has_cls else 0)
        n_text = context.token_score.input_ids.numel()
        first_a = explanation.text_values.double() if explanation.text_values is not None \
            else torch.zeros(n_text, dtype=torch.float64)
        first_b = explanation.image_values.double() if explanation.image_values is not None \
            else torch.zeros(n_image, dtype=torch.float64)
        cross = torch.zeros(first_a.numel(), first_b.numel(), dtype=torch.float64)
    has_intercept = explanation.intercept is not None
    terms = InteractionTerms(
        torch.tensor([explanation.intercept if has_intercept else 0.0], dtype=torch.float64),
        first_a[None], first_b[None], cross[None], has_intercept=has_intercept,
    )
    result = p_faithfulness(context.game, terms, p=context.p, n_coalitions=context.n_coalitions, random_state=seed)
    return {"p_faithfulness": result.spearman, "p_faithfulness_r2": result.r2}


def discrimination_record(explanation: PairExplanation, objects: Any, context: SceneContext) -> Dict[str, float]:
    """Object discrimination for scenes with two or more named objects (interaction
    methods only): own span-box attribution positive, cross attribution negative."""
    if explanation.interactions is None or len(objects) < 2:
        return {}
    result = object_discrimination(explanation.interactions, [o.span for o in objects], [o.box for o in objects],
                                   context.image_size, context.grid, context.has_cls)
    return {"own_positive": result.own_positive, "cross_negative": result.cross_negative,
            "own_above_cross": result.own_above_cross}


def hard_negative_record(
    explanation: PairExplanation, negative: PairExplanation, obj: Any, context: SceneContext,
    score: float, negative_score: float,
) -> Dict[str, float]:
    """The swapped object's span-box attribution and the similarity, before and after."""
    if explanation.interactions is None or negative.interactions is None:
        return {}
    result = hard_negative(explanation.interactions, negative.interactions, obj.span, obj.box, context.image_size,
                           score=score, score_swapped=negative_score, grid_size=context.grid, has_cls=context.has_cls)
    return {"hard_negative_delta_S": result.delta_score, "hard_negative_delta_A": result.delta_attribution}


def mean_or_nan(values: List[Optional[float]]) -> float:
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.mean(finite)) if finite else float("nan")
