"""Every metric the evaluation computes, in one place: explanations come in as
:class:`~captum_bilinear.terms.InteractionTerms`, records (plain dicts) go out.

This is the only module of the evaluation that calls :mod:`captum_bilinear.metrics`.

* Maps: an interaction method's span map is ``cross`` summed over the span
  (:func:`~captum_bilinear.selection.span_image_map`), its box map ``cross`` weighted by
  the box (:func:`~captum_bilinear.selection.box_token_map`); a first-order method's maps
  are its ``first_b`` / ``first_a`` values, the same for every span and box.
* p-faithfulness: the coalitions are drawn once per example (seeded by the example) and
  the game -- the similarity with only the coalition's caption tokens and image patches
  present -- is evaluated once; every method's prediction
  (:func:`~captum_bilinear.metrics.explanation_prediction`, i.e. ``InteractionTerms.predict``
  with the positions that are no player of the game -- BOS, EOS, CLS -- always present)
  is scored on them; a method without an intercept predicts from the game's ``ν(∅)``.
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor

from captum_bilinear.metrics import (
    PairMaskingGame,
    PatchMaskingScore,
    SampledGame,
    TokenMaskingScore,
    deletion_curve,
    hard_negative,
    insertion_curve,
    object_discrimination,
    pointing_game,
)
from captum_bilinear.selection import box_token_map, patch_grid, span_image_map
from captum_bilinear.terms import InteractionTerms

#: Fractions the per-object curves are resampled to (for mean curves over objects).
CURVE_GRID = np.linspace(0.0, 1.0, 21)
#: PGE below which an object's span map is kept in its record (the failure gallery).
FAILURE_PGE = 0.2


@dataclass
class Geometry:
    """The image side's layout in a model."""

    image_size: Tuple[int, int]  #: (height, width) of the model's image
    grid: Tuple[int, int]
    has_cls: bool

    @property
    def patch_offset(self) -> int:
        return int(self.has_cls)


def _resampled(fractions: Tensor, scores: Tensor) -> List[float]:
    return np.interp(CURVE_GRID, fractions.numpy(), scores.numpy()).tolist()


@dataclass
class ObjectMaps:
    """What the object metrics read of an explanation computed without its whole matrix
    (BII with groups as players): one row over the image positions per object span and
    per word a hard negative replaces, one column over the caption per object box.

    Attributes:
        span_rows: ``(objects, positions_b)``, in the order of the example's objects.
        box_columns: ``(positions_a, objects)``.
        negative_rows: ``(negatives, positions_b)``: the true caption's rows of the words
            each hard negative replaces.
    """

    span_rows: Tensor
    box_columns: Tensor
    negative_rows: Tensor


def image_map(terms: InteractionTerms, order: int, span: Tuple[int, int], geometry: Geometry) -> Tensor:
    """The span's ``(grid_h, grid_w)`` image map (first-order methods: their image values)."""
    if order == 2:
        return span_image_map(terms.cross[0], span, geometry.grid, geometry.has_cls)
    return terms.first_b[0][geometry.patch_offset:].reshape(geometry.grid)


def token_map(terms: InteractionTerms, order: int, box: Any, geometry: Geometry) -> Tensor:
    """The box's caption map ``(positions_a,)`` (first-order methods: their text values)."""
    if order == 2:
        return box_token_map(terms.cross[0], box, geometry.image_size, geometry.grid, geometry.has_cls)
    return terms.first_a[0]


class ExampleScorer:
    """The metrics of one example, shared by every method: masking scores with one side
    fixed (the curves) and the p-faithfulness game, evaluated once.

    Args:
        dual: the :class:`~captum_bilinear.DualEncoder`.
        input_ids, pixel_values: the pair (batch 1).
        image_reference: pixels of a removed patch.
        text_players: caption positions the metrics mask.
        pad_token_id: a removed token's id.
        geometry: the image side's layout.
        seed: the example's seed (the coalitions).
        p, n_coalitions: p-faithfulness' inclusion probability and sample size.
        sample: this example's game as another scorer of it played it
            (:attr:`played_game`): the game is the model's, not a method's or a layer's,
            so the per-layer runs play it once.
    """

    def __init__(self, dual: Any, input_ids: Tensor, pixel_values: Tensor, image_reference: Tensor,
                 text_players: Tensor, pad_token_id: int, geometry: Geometry, seed: int, p: float = 0.5,
                 n_coalitions: int = 256, sample: Optional[SampledGame] = None) -> None:
        self.geometry = geometry
        self.text_players = text_players
        self.p, self.n_coalitions = p, n_coalitions
        self.positions = (input_ids.shape[1], geometry.grid[0] * geometry.grid[1] + geometry.patch_offset)

        def embed_text(ids: Tensor) -> Tensor:
            return dual.embed_a(ids)

        def embed_image(pixels: Tensor) -> Tensor:
            return dual.embed_b(pixels)

        players = text_players.tolist()
        with torch.no_grad():
            text_embedding = embed_text(input_ids)[0]
            image_embedding = embed_image(pixel_values)[0]
            self.patch_score = PatchMaskingScore(embed_image, text_embedding, pixel_values[0], geometry.grid,
                                                 baseline=image_reference)
            self.token_score = TokenMaskingScore(embed_text, image_embedding, input_ids[0], pad_token_id,
                                                 players=players)
            self.game = PairMaskingGame(embed_text, embed_image, input_ids[0], pixel_values[0], pad_token_id,
                                        geometry.grid, baseline=image_reference, text_players=players,
                                        patch_offset=geometry.patch_offset)
        self.seed = seed
        self._sample = sample

    @property
    def played_game(self) -> Optional[SampledGame]:
        """The p-faithfulness game's sample if it has been played (None otherwise): what
        ``sample`` of another scorer of this example takes."""
        return self._sample

    @property
    def sample(self) -> SampledGame:
        """The game played on this example's coalitions: on the first p-faithfulness
        record (examples without one never play it)."""
        if self._sample is None:
            with torch.no_grad():
                self._sample = SampledGame(self.game, p=self.p, n_coalitions=self.n_coalitions,
                                           random_state=self.seed)
        return self._sample

    # ---------------------------------------------------------------- per object

    def object_records(self, terms: InteractionTerms, order: int, text_side: bool,
                       objects: Sequence[Any], maps: Optional[ObjectMaps] = None,
                       curves: bool = True) -> List[Dict[str, Any]]:
        """Per object: PGA, PGE, CID / CII on the span's image map, CTD / CTI on the box's
        caption map (curves resampled to :data:`CURVE_GRID`); the span map itself when
        PGE < :data:`FAILURE_PGE` (for the failure gallery). With ``maps`` the maps are
        read from them instead of from ``terms``; ``curves=False`` leaves the insertion
        and deletion curves out (their masked passes are most of an object's cost)."""
        records = []
        for number, obj in enumerate(objects):
            record: Dict[str, Any] = {"object": obj.index, "category": obj.category, "phrase": obj.phrase,
                                      "span": list(obj.span), "box": [float(v) for v in obj.box]}
            span_map = (image_map(terms, order, obj.span, self.geometry) if maps is None
                        else patch_grid(maps.span_rows[number], self.geometry.grid, self.geometry.has_cls))
            result = pointing_game(span_map, obj.box, self.geometry.image_size)
            record.update(PGA=float(result.hit), PGE=result.energy)
            if result.energy < FAILURE_PGE:
                record["image_map"] = span_map.double().tolist()
            if curves:
                for key, curve in (("CID", deletion_curve), ("CII", insertion_curve)):
                    evaluated = curve(span_map.flatten(), self.patch_score)
                    record[key] = evaluated.auc
                    record[f"{key}_curve"] = _resampled(evaluated.fractions, evaluated.scores)
            if curves and text_side:
                caption_map = (token_map(terms, order, obj.box, self.geometry) if maps is None
                               else maps.box_columns[:, number])
                order_values = caption_map[self.text_players]
                for key, curve in (("CTD", deletion_curve), ("CTI", insertion_curve)):
                    evaluated = curve(order_values, self.token_score)
                    record[key] = evaluated.auc
                    record[f"{key}_curve"] = _resampled(evaluated.fractions, evaluated.scores)
            records.append(record)
        return records

    # --------------------------------------------------------------- per example

    def faithfulness_record(self, terms: InteractionTerms) -> Dict[str, float]:
        """p-faithfulness (Spearman) and R² of the explanation's prediction of the game."""
        result = self.sample.p_faithfulness(terms)
        return {"p_faithfulness": result.spearman, "p_faithfulness_r2": result.r2}

    def completeness_record(self, terms: InteractionTerms) -> Dict[str, float]:
        """``|delta|`` relative to the score the interactions decompose (quadrature
        methods: ``f(a,b) - f(r_a,b) - f(a,r_b) + f(r_a,r_b)`` for BII, what
        ``n_steps="auto"``'s tolerance is relative to). LayerIntegratedGradients' delta is
        already relative."""
        if terms.delta is None:
            return {}
        delta = float(terms.delta[0])
        if terms.method == "LayerIntegratedGradients":
            return {"completeness_error": abs(delta)}
        decomposed = float(terms.cross[0].sum()) - delta
        record = {"completeness_error": abs(delta) / max(abs(decomposed), 1e-12)}
        if terms.n_steps is not None:
            record["n_steps_used"] = int(terms.n_steps[0])
        return record

    def discrimination_record(self, terms: InteractionTerms, objects: Sequence[Any],
                              maps: Optional[ObjectMaps] = None) -> Dict[str, float]:
        """Object discrimination of an interaction method on an example with two or more
        objects: own span-box attribution positive, cross attribution negative (with
        ``maps``: from their span rows, each a span of one row)."""
        if len(objects) < 2:
            return {}
        matrix, spans = ((terms.cross[0], [o.span for o in objects]) if maps is None
                         else (maps.span_rows, [(k, k + 1) for k in range(len(objects))]))
        result = object_discrimination(matrix, spans, [o.box for o in objects],
                                       self.geometry.image_size, self.geometry.grid, self.geometry.has_cls)
        return {"own_positive": result.own_positive, "cross_negative": result.cross_negative,
                "own_above_cross": result.own_above_cross}

    def negative_record(self, terms: InteractionTerms, negative_terms: Optional[InteractionTerms], negative: Any,
                        score: float, negative_score: float, attribution_swapped: Optional[float] = None,
                        maps: Optional[ObjectMaps] = None, number: int = 0) -> Dict[str, Any]:
        """δS and δA of a hard negative: the similarity and the swapped words' attribution
        with the object's box, false caption minus true caption (``attribution_swapped``:
        computed as one group on each side instead of from ``negative_terms``; ``maps``:
        the true caption's words from their ``negative_rows[number]``)."""
        original, span = ((terms.cross[0], negative.original_span) if maps is None
                          else (maps.negative_rows[number : number + 1], (0, 1)))
        result = hard_negative(original, None if negative_terms is None else negative_terms.cross[0],
                               span, negative.box, self.geometry.image_size,
                               span_swapped=negative.span, score=score, score_swapped=negative_score,
                               grid_size=self.geometry.grid, has_cls=self.geometry.has_cls,
                               attribution_swapped=attribution_swapped)
        return {"negative": negative.index, "category": negative.category, "swap": list(negative.swap),
                "delta_S": result.delta_score, "delta_A": result.delta_attribution,
                "attribution": result.attribution, "attribution_swapped": result.attribution_swapped}
