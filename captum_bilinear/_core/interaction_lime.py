"""InteractionLIME (Joukovsky et al. 2023): a bilinear surrogate fitted to masked pairs."""

import warnings
from typing import Any, Dict, Optional, Tuple

import torch
from captum.attr import PerturbationAttribution
from captum.log import log_usage
from torch import Tensor

from captum_bilinear._core.base import DualLayerAttribution
from captum_bilinear._core.estimators import (
    check_penalty,
    describe_random_state,
    fit_lime_surrogate,
    lime_samples,
    terms_of_fits,
)
from captum_bilinear._utils.checks import check_int, check_probability
from captum_bilinear._utils.coalitions import ExampleStreams, RandomState, minimum_cross_modal_samples
from captum_bilinear._utils.integration import accumulation_dtype
from captum_bilinear._utils.model_state import evaluation_mode
from captum_bilinear._utils.pair_inputs import check_internal_batch_size
from captum_bilinear._utils.groups import FeatureMask
from captum_bilinear._utils.players import PlayerSelection, check_masking_groups, check_players
from captum_bilinear.games import check_cross_modal_game
from captum_bilinear.terms import InteractionTerms

SOLVERS = ("ridge", "sgd")
#: Defaults of ``solver="sgd"``; override any of them with ``solver_options``.
SGD_DEFAULTS: Dict[str, float] = {"lr": 0.1, "momentum": 0.9, "epochs": 100, "batch_size": 32}


class InteractionLIME(DualLayerAttribution, PerturbationAttribution):
    r"""Interactions as the matrix of a bilinear surrogate fitted to masked pairs
    (Joukovsky et al., "Model-agnostic visual explanations via approximate bilinear
    models", ICIP 2023).

    Binary keep-masks ``x_a`` (``S`` player positions of layer a) and ``x_b`` (``P`` of
    layer b), each player kept with probability ``p``, give masked pairs: a dropped
    position takes the baseline's activation at the layer. Players are every position
    that carries input (padding never is), those ``players`` selects, or groups of
    positions (``feature_mask``, each group kept or dropped as a whole). The surrogate

    .. math::

        \phi(x_a, x_b) = \sum_{s, p} x_a[s]\, x_b[p]\, W[s, p] + c

    is fitted to the masked pairs' similarities by weighted least squares, each pair
    weighted by the mean of its two masked embeddings' cosines to the unmasked ones
    (clamped at 0). The fit uses features scaled by ``1/sqrt(S)`` and ``1/sqrt(P)``;
    the returned ``W`` is converted back to the 0/1 features, so it is in the
    similarity's units (``W`` times the kept positions, plus ``c``, predicts the
    similarity).

    Cross-modal sampling: ``m_a`` masks of side a and ``m_b`` of side b
    (``m_a * m_b >= n_samples``, ``m_a / m_b`` close to ``(S+1) / (P+1)``) give all
    ``m_a * m_b`` pairs' similarities from ``m_a + m_b`` encoder passes of the layers
    above the attributed ones. The design is then a Kronecker product, whose rank needs
    ``m_a >= S + 1`` and ``m_b >= P + 1``: ``n_samples`` must be at least
    ``(S+1)(P+1)`` (663 for 12 tokens and ViT-B/32's 50 positions). A side's masks are
    redrawn when ``[1, x]`` is rank-deficient (likely for a few positions: a position
    never dropped, two always dropped together), so the design always identifies W.

    The default solver is the closed-form weighted ridge regression (float64, intercept
    unpenalized). The paper fits by stochastic gradient descent; ``solver="sgd"`` does
    that (minibatch SGD with momentum on the same objective, from zero; the paper's
    exact optimizer settings are not reproduced) but is fragile: the fitted matrix
    depends on the learning rate, the number of epochs and the seed, the weakly
    identified directions converge slowly (with 12 x 50 positions and 1000 samples the
    normalized Gram matrix has eigenvalues from 1.3 down to 3e-8), and a
    too large learning rate diverges. Use it to compare with the paper, not by default.

    Memory: the ridge solve forms one ``(S P + 1)``-square float64 matrix (2.9 MB for
    12 x 50 positions, 1.8 GB for 77 x 197), never the ``n_samples x S P`` design.

    Each example of a batch gets its own random stream from ``random_state``, so its
    result does not depend on the batch it came in. The fit is also available for any
    cross-modal game (:meth:`attribute_game`, :mod:`captum_bilinear.games`).

    Args:
        model: a HuggingFace ``CLIPModel`` / ``SiglipModel`` or a :class:`DualEncoder`.
        layer: ``(layer_a, layer_b)``, a module in each encoder.
        p: the probability of keeping a player, in ``(0, 1)`` (the paper's 0.7).

    Example:
        >>> import torch
        >>> from transformers import CLIPConfig, CLIPModel
        >>> from captum_bilinear import InteractionLIME
        >>> small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
        >>> model = CLIPModel(CLIPConfig(text_config=small, projection_dim=16,
        ...                   vision_config=dict(small, image_size=32, patch_size=8))).eval()
        >>> layer = (model.text_model.encoder.layers[0], model.vision_model.encoder.layers[0])
        >>> inputs = (torch.tensor([[49406, 320, 1125, 49407]]), torch.randn(1, 3, 32, 32))
        >>> W = InteractionLIME(model, layer).attribute(inputs, n_samples=200, random_state=0)
        >>> W.shape  # 4 tokens x (CLS + 16 patches)
        torch.Size([1, 4, 17])
        >>> terms = InteractionLIME(model, layer).attribute_terms(inputs, n_samples=200, random_state=0)
        >>> torch.equal(terms.cross, W), terms.has_first_order  # the surrogate's matrix and constant
        (True, False)

        Groups as players (``feature_mask``): the caption's two words as one feature,
        the image's CLS and its four quadrants of patches as five:

        >>> quadrants = torch.cat([torch.tensor([0]), 1 + torch.arange(16) // 8 * 2 + torch.arange(16) % 4 // 2])
        >>> InteractionLIME(model, layer).attribute(inputs, feature_mask=(torch.tensor([-1, 0, 0, -1]), quadrants),
        ...                                         random_state=0).shape
        torch.Size([1, 1, 5])
    """

    def __init__(self, model: Any, layer: Any, p: float = 0.7) -> None:
        self.p = check_probability(p, "p")
        DualLayerAttribution.__init__(self, model, layer)

    @staticmethod
    def minimum_samples(positions_a: int, positions_b: int) -> int:
        """The smallest ``n_samples`` that identifies a ``positions_a`` x ``positions_b``
        surrogate with cross-modal sampling: ``(positions_a + 1) * (positions_b + 1)``.

        Example:
            >>> InteractionLIME.minimum_samples(12, 50)
            663
        """
        return minimum_cross_modal_samples(positions_a, positions_b)

    @log_usage()
    def attribute(
        self,
        inputs: Tuple[Any, Any],
        baselines: Optional[Tuple[Any, Any]] = None,
        *,
        additional_forward_args: Optional[Tuple[Any, Any]] = None,
        feature_mask: FeatureMask = None,
        n_samples: Optional[int] = None,
        alpha: float = 0.01,
        random_state: RandomState = None,
        solver: str = "ridge",
        players: Optional[Tuple[PlayerSelection, PlayerSelection]] = None,
        internal_batch_size: Optional[int] = None,
        attribute_to_layer_input: bool = False,
        solver_options: Optional[Dict[str, float]] = None,
        keep_prob: Optional[float] = None,
    ) -> Tensor:
        r"""The fitted interaction matrix ``W`` of every example (``attribute_terms(...).cross``).

        Args:
            inputs: ``(inputs_a, inputs_b)``, e.g. ``(input_ids, pixel_values)``.
            baselines: ``(baselines_a, baselines_b)``; a masked position takes the
                baseline's activation at the layer. Either may be None for the default
                reference (HF CLIP: ``[BOS, PAD..., EOS]`` captions and a black image).
            additional_forward_args: ``(extra_a, extra_b)``, e.g. ``((attention_mask,), None)``.
            feature_mask: ``(mask_a, mask_b)``, Captum's ``feature_mask`` for layer
                positions: each side None (every position its own player) or an integer
                Tensor ``(batch, positions)`` / ``(positions,)`` giving each position of that
                side's layer a group id ``0 .. G-1`` (``-1``: left out). Each group is one
                player (one feature of the surrogate): its positions are kept or take the
                baseline's activation together; left-out positions are no player (always
                kept), and padding is never part of a player (a group of padding only is
                no player: zero terms). ``W`` is then ``(batch, G_a, G_b)`` and ``S``, ``P``
                below count the groups. Float group weights (which
                :class:`~captum_bilinear.BilinearIntegratedInteractions` takes) cannot be
                masked and are refused; so is ``feature_mask`` together with ``players``.
            n_samples: at least this many masked pairs per example; None: the paper's 1000,
                raised to the ``(S+1)(P+1)`` that identifies the surrogate of ``S`` x ``P``
                players (see the class docstring).
            alpha: ridge strength ``>= 0`` on the scaled matrix ``W~ = sqrt(S P) W``; the
                objective is ``sum w (y - phi)^2 + alpha ||W~||^2`` summed over the pairs
                (scikit-learn's ``Ridge`` with ``sample_weight``); ``alpha=0`` is plain
                weighted least squares. The default 0.01 was the best of
                {0, 0.01, 0.1, 1, 10} at ``n_samples=1000`` on random-weight CLIP
                architectures (12 tokens x 50 positions, three layer choices): weighted
                R^2 of the surrogate on fresh masks 0.93-0.95, against 0.85-0.98 at 0,
                0.68-0.81 at 1 (scikit-learn's default, which here shrinks the weakly
                identified directions by about 3x) and 0.34-0.55 at 10. The penalty's
                relative strength falls as ``n_samples`` grows.
            random_state: int seed, ``torch.Generator``, or None (not reproducible); every
                example's stream starts from it.
            solver: ``"ridge"`` (closed form, default) or ``"sgd"`` (the paper's fit; fragile).
            players: ``(indices_a, indices_b)``: which positions are players (default:
                every position that carries input), as in
                :meth:`~captum_bilinear.WeightedBanzhafInteractions.attribute_terms`; not
                with ``feature_mask``.
            internal_batch_size: at most this many masked activations per encoder pass.
            attribute_to_layer_input: attribute to the layers' inputs instead of outputs.
            solver_options: for ``"sgd"``: ``lr``, ``momentum``, ``epochs``,
                ``batch_size`` (defaults in :data:`SGD_DEFAULTS`).
            keep_prob: deprecated: the keep probability is the constructor's ``p``.

        Returns:
            ``(batch, positions_a, positions_b)``: ``W`` in the similarity's units, zero at
            non-player positions (``(batch, G_a, G_b)`` with ``feature_mask``).
        """
        return self.attribute_terms(
            inputs, baselines, additional_forward_args=additional_forward_args, feature_mask=feature_mask,
            n_samples=n_samples, alpha=alpha,
            random_state=random_state, solver=solver, players=players, internal_batch_size=internal_batch_size,
            attribute_to_layer_input=attribute_to_layer_input, solver_options=solver_options, keep_prob=keep_prob,
        ).cross

    @log_usage()
    def attribute_terms(
        self,
        inputs: Tuple[Any, Any],
        baselines: Optional[Tuple[Any, Any]] = None,
        *,
        additional_forward_args: Optional[Tuple[Any, Any]] = None,
        feature_mask: FeatureMask = None,
        n_samples: Optional[int] = None,
        alpha: float = 0.01,
        random_state: RandomState = None,
        solver: str = "ridge",
        players: Optional[Tuple[PlayerSelection, PlayerSelection]] = None,
        internal_batch_size: Optional[int] = None,
        attribute_to_layer_input: bool = False,
        solver_options: Optional[Dict[str, float]] = None,
        keep_prob: Optional[float] = None,
    ) -> InteractionTerms:
        """The surrogate of every example as :class:`~captum_bilinear.InteractionTerms`:
        ``intercept = c``, ``cross = W``, no first-order terms (``has_first_order`` False).
        Takes the arguments of :meth:`attribute`."""
        p = self._keep_probability(keep_prob)
        n_samples = None if n_samples is None else check_int(n_samples, "n_samples", minimum=1)
        alpha = check_penalty(alpha)
        if solver not in SOLVERS:
            raise ValueError(f"solver: expected one of {SOLVERS}, got {solver!r}")
        options = self._solver_options(solver, solver_options)
        selection_a, selection_b = check_players(players)
        check_internal_batch_size(internal_batch_size)
        streams = ExampleStreams(random_state)
        side_a, side_b = self._prepare(inputs, baselines, additional_forward_args)
        groups = check_masking_groups(feature_mask, players, side_a.batch_size)
        fits, masks_a, masks_b = [], [], []
        dtype, device = torch.float32, None
        with evaluation_mode(self.dual_encoder):
            for game, mask_a, mask_b, activation in self._player_games(
                    side_a, side_b, (selection_a, selection_b), attribute_to_layer_input, internal_batch_size,
                    groups):
                masks_a.append(mask_a)
                masks_b.append(mask_b)
                samples = lime_samples(n_samples, game.n_players_a, game.n_players_b)
                fits.append(fit_lime_surrogate(game, samples, p, alpha, solver, options, streams.next()))
                dtype, device = accumulation_dtype(activation.dtype), activation.device
        streams.close()
        return terms_of_fits(
            fits, masks_a, masks_b, dtype, device, method=type(self).__name__, layers=self.layer_names(),
            settings=dict(p=p, n_samples=n_samples, alpha=alpha, solver=solver, random_state=describe_random_state(random_state),
                          **({} if feature_mask is None else {"feature_mask": True})),
            has_intercept=True,
        )

    @staticmethod
    def attribute_game(
        game: Any,
        *,
        p: float = 0.7,
        n_samples: Optional[int] = None,
        alpha: float = 0.01,
        random_state: RandomState = None,
        solver: str = "ridge",
        solver_options: Optional[Dict[str, float]] = None,
    ) -> InteractionTerms:
        """The bilinear surrogate of any cross-modal game of your own
        (:mod:`captum_bilinear.games`); players are the game's, side a's first. A game with
        ``embeddings`` and ``values_of`` (such as :class:`~captum_bilinear.games.LayerMaskingGame`)
        gets the paper's cosine weights, others equal weights.

        Args:
            game: a cross-modal game (``n_players_a``, ``n_players_b``, ``n_players``, callable).
            p: the probability of keeping a player (the constructor's ``p`` for models).
            n_samples, alpha, random_state, solver, solver_options: as in :meth:`attribute`.

        Returns:
            :class:`~captum_bilinear.InteractionTerms` of batch 1 over the game's players.

        Example:
            >>> class Bilinear:  # nu(M) = x_a^T W x_b + 1
            ...     n_players_a, n_players_b, n_players = 2, 3, 5
            ...     W = torch.arange(6.0, dtype=torch.float64).view(2, 3)
            ...     def __call__(self, M):
            ...         return ((M[:, :2].double() @ self.W) * M[:, 2:].double()).sum(1) + 1
            >>> terms = InteractionLIME.attribute_game(Bilinear(), alpha=0.0, n_samples=40, random_state=0)
            >>> torch.allclose(terms.cross[0], Bilinear.W), round(float(terms.intercept[0]), 6)
            (True, 1.0)
        """
        p = check_probability(p, "p")
        n_a, n_b = check_cross_modal_game(game)
        alpha = check_penalty(alpha)
        if solver not in SOLVERS:
            raise ValueError(f"solver: expected one of {SOLVERS}, got {solver!r}")
        options = InteractionLIME._solver_options(solver, solver_options)
        samples = lime_samples(None if n_samples is None else check_int(n_samples, "n_samples", minimum=1), n_a, n_b)
        fit = fit_lime_surrogate(game, samples, p, alpha, solver, options, ExampleStreams(random_state).next())
        return terms_of_fits(
            [fit], [torch.ones(n_a, dtype=torch.bool)], [torch.ones(n_b, dtype=torch.bool)], torch.float64, "cpu",
            method="InteractionLIME", layers=("", ""),
            settings=dict(p=p, n_samples=samples, alpha=alpha, solver=solver, random_state=describe_random_state(random_state)),
        )

    def _keep_probability(self, keep_prob: Optional[float]) -> float:
        if keep_prob is None:
            return self.p
        warnings.warn("InteractionLIME.attribute(keep_prob=...) is deprecated: pass p to the constructor",
                      DeprecationWarning, stacklevel=4)
        return check_probability(keep_prob, "keep_prob")

    @staticmethod
    def _solver_options(solver: str, solver_options: Optional[Dict[str, float]]) -> Dict[str, float]:
        if solver_options is None:
            return dict(SGD_DEFAULTS)
        if not isinstance(solver_options, dict):
            raise TypeError(f"solver_options: expected a dict, got {type(solver_options).__name__}")
        if solver != "sgd" and solver_options:
            raise ValueError(f"solver_options: only solver='sgd' takes options, got {sorted(solver_options)}")
        unknown = sorted(set(solver_options) - set(SGD_DEFAULTS))
        if unknown:
            raise ValueError(f"solver_options: unknown option(s) {unknown}; expected some of {sorted(SGD_DEFAULTS)}")
        options = {**SGD_DEFAULTS, **solver_options}
        for key in ("epochs", "batch_size"):
            check_int(options[key], f"solver_options['{key}']", minimum=1)
        for key in ("lr", "momentum"):
            value = options[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
                raise ValueError(f"solver_options['{key}']: expected a number >= 0, got {value!r}")
        return options

