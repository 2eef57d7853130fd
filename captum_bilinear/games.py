"""Games over the positions of two inputs: what the perturbation methods explain and the
p-faithfulness metric scores (shapiq's separation of game, estimator and result).

A *game* is anything with ``n_players`` and ``game(coalitions) -> values`` for bool
``coalitions`` ``(m, n_players)`` (True = present); the players of a *cross-modal game*
are side a's ``n_players_a`` players followed by side b's. A cross-modal game may also
give :meth:`CrossModalGame.cross_values`: the values of every pair of a side-a coalition
and a side-b coalition at once, which for a dual encoder costs ``m_a + m_b`` encoder
passes instead of ``m_a * m_b`` -- InteractionLIME and WeightedBanzhafInteractions sample
that way. Define your own masking (any game with these attributes) and explain it with
:meth:`~captum_bilinear.WeightedBanzhafInteractions.attribute_game` or
:meth:`~captum_bilinear.InteractionLIME.attribute_game`, or score an explanation of it
with :func:`~captum_bilinear.metrics.p_faithfulness`.

* :class:`LayerMaskingGame`: the dual encoder's similarity when the absent players'
  positions take the reference's activation at the attributed layers (what
  InteractionLIME and WeightedBanzhafInteractions explain).
* :class:`~captum_bilinear.metrics.PairMaskingGame`: input-level masking of an HF CLIP
  pair (token ids replaced, patches replaced by baseline pixels).
"""

from typing import Any, Optional, Protocol, Tuple, runtime_checkable

import torch
from torch import Tensor

from captum_bilinear._utils.encoder_side import EncoderSide
from captum_bilinear._utils.masking import masked_embeddings
from captum_bilinear._utils.positions import num_positions


@runtime_checkable
class Game(Protocol):
    """A game: ``n_players`` and values of bool coalitions ``(m, n_players) -> (m,)``.

    Example:
        >>> class Majority:
        ...     n_players = 3
        ...     def __call__(self, coalitions): return (coalitions.sum(1) >= 2).double()
        >>> isinstance(Majority(), Game), Majority()(torch.tensor([[True, True, False]])).tolist()
        (True, [1.0])
    """

    n_players: int

    def __call__(self, coalitions: Tensor) -> Tensor: ...


@runtime_checkable
class CrossModalGame(Game, Protocol):
    """A game whose players are side a's ``n_players_a`` players, then side b's.

    Example:
        >>> class Toy:
        ...     n_players_a, n_players_b, n_players = 1, 2, 3
        ...     def __call__(self, coalitions): return coalitions.double().sum(1)
        >>> isinstance(Toy(), CrossModalGame)
        True
    """

    n_players_a: int
    n_players_b: int


def check_cross_modal_game(game: Any, name: str = "game") -> Tuple[int, int]:
    """``(n_players_a, n_players_b)`` of a cross-modal game (TypeError / ValueError naming
    ``name`` for anything else).

    Example:
        >>> class Toy:
        ...     n_players_a, n_players_b, n_players = 1, 2, 3
        ...     def __call__(self, coalitions): return coalitions.double().sum(1)
        >>> check_cross_modal_game(Toy())
        (1, 2)
    """
    if not callable(game) or not all(hasattr(game, key) for key in ("n_players", "n_players_a", "n_players_b")):
        raise TypeError(f"{name}: expected a cross-modal game: a callable with n_players, n_players_a and "
                        f"n_players_b (see captum_bilinear.games), got {type(game).__name__}")
    n_a, n_b = int(game.n_players_a), int(game.n_players_b)
    if n_a < 1 or n_b < 1 or int(game.n_players) != n_a + n_b:
        raise ValueError(f"{name}: expected n_players = n_players_a + n_players_b with both >= 1, got "
                         f"{game.n_players} = {n_a} + {n_b}")
    return n_a, n_b


def cross_values(game: Any, coalitions_a: Tensor, coalitions_b: Tensor) -> Tensor:
    """float64 CPU ``(m_a, m_b)``: the value of every pair ``(coalitions_a[i],
    coalitions_b[j])``: ``game.cross_values`` when the game has it, else the game on all
    ``m_a * m_b`` joined coalitions.

    Example:
        >>> class Toy:
        ...     n_players_a, n_players_b, n_players = 1, 1, 2
        ...     def __call__(self, coalitions): return coalitions.double().prod(1)
        >>> cross_values(Toy(), torch.tensor([[True], [False]]), torch.tensor([[True]]))
        tensor([[1.],
                [0.]], dtype=torch.float64)
    """
    if hasattr(game, "cross_values"):
        values = game.cross_values(coalitions_a, coalitions_b)
    else:
        m_a, m_b = coalitions_a.shape[0], coalitions_b.shape[0]
        joined = torch.cat([coalitions_a.repeat_interleave(m_b, 0), coalitions_b.repeat(m_a, 1)], 1)
        with torch.no_grad():
            values = game(joined).reshape(m_a, m_b)
    values = values.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(values).all()):
        raise ValueError("game: returned NaN or infinite values")
    return values


class LayerMaskingGame:
    """``nu(M) = scale * <g(z_a[M]), h(z_b[M])>``: a dual encoder's similarity when the
    player positions outside ``M`` take the reference's activation at the attributed layers
    (non-player positions keep the input's activation). With ``groups_a`` a player is a
    group of positions, masked together.

    Args:
        side_a, side_b: one example's encoder sides (from the methods' layer pairs).
        input_a, reference_a: side a's layer activations for the input and the reference.
        input_b, reference_b: side b's.
        players_a, players_b: LongTensors of the layer positions that are players, or
            with ``groups_a`` / ``groups_b`` of the groups (rows) that are players.
        scale: the similarity's scale.
        internal_batch_size: at most this many masked activations per encoder pass.
        groups_a, groups_b: optional bool ``(G, positions)``: row ``g`` the layer positions
            of group ``g`` (``feature_mask``), all of which take the reference's activation
            when player ``g`` is absent; positions in no player's group are always present.

    Attributes:
        positions_a, positions_b: the players' positions in the explanation (``players_a``,
            ``players_b``): layer positions, or group ids with groups.

    Example:
        >>> from captum_bilinear import DualEncoder, WeightedBanzhafInteractions
        >>> encoder = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Flatten())
        >>> model = DualEncoder(encoder, encoder, normalize=False)
        >>> method = WeightedBanzhafInteractions(model, encoder[0])
        >>> inputs = (torch.tensor([[[1.0], [2.0]]]), torch.tensor([[[3.0], [4.0]]]))
        >>> (pair,) = method._layer_pairs(*method._prepare(inputs, None, None), False)
        >>> game = LayerMaskingGame(pair.side_a, pair.input_a, pair.reference_a, pair.side_b, pair.input_b,
        ...                         pair.reference_b, torch.tensor([0, 1]), torch.tensor([0, 1]))
        >>> game(torch.tensor([[True, True, True, True], [True, False, False, True]])).tolist()  # 1*3 + 2*4, 1*0 + 0*4
        [11.0, 0.0]

        Side b's two positions as one group (one player):

        >>> grouped = LayerMaskingGame(pair.side_a, pair.input_a, pair.reference_a, pair.side_b, pair.input_b,
        ...                            pair.reference_b, torch.tensor([0, 1]), torch.tensor([0]),
        ...                            groups_b=torch.tensor([[True, True]]))
        >>> grouped.n_players, grouped(torch.tensor([[True, True, True], [True, False, False]])).tolist()
        (3, [11.0, 0.0])
    """

    def __init__(
        self,
        side_a: EncoderSide,
        input_a: Tensor,
        reference_a: Tensor,
        side_b: EncoderSide,
        input_b: Tensor,
        reference_b: Tensor,
        players_a: Tensor,
        players_b: Tensor,
        scale: float = 1.0,
        internal_batch_size: Optional[int] = None,
        groups_a: Optional[Tensor] = None,
        groups_b: Optional[Tensor] = None,
    ) -> None:
        self._sides = ((side_a, input_a, reference_a), (side_b, input_b, reference_b))
        for name, groups, activation in (("groups_a", groups_a, input_a), ("groups_b", groups_b, input_b)):
            if groups is not None and (groups.dim() != 2 or groups.shape[1] != num_positions(activation)):
                raise ValueError(f"{name}: expected (groups, {num_positions(activation)}) membership of the layer's "
                                 f"positions, got shape {tuple(groups.shape)}")
        self._groups = tuple(None if groups is None else groups.cpu()[players.cpu()].to(torch.bool)
                             for groups, players in ((groups_a, players_a), (groups_b, players_b)))
        self.positions_a, self.positions_b = players_a, players_b
        self.n_players_a, self.n_players_b = players_a.numel(), players_b.numel()
        self.n_players = self.n_players_a + self.n_players_b
        self.scale = float(scale)
        self.internal_batch_size = internal_batch_size

    def _embeddings(self, side: int, coalitions: Tensor) -> Tensor:
        encoder, activation, reference = self._sides[side]
        players = self.positions_a if side == 0 else self.positions_b
        groups = self._groups[side]
        if groups is None:
            keep = torch.ones(coalitions.shape[0], num_positions(activation), dtype=torch.bool)
            keep[:, players] = coalitions.cpu()
        else:  # a position is masked when the player of its group is absent
            absent = (~coalitions.cpu().to(torch.bool)).to(torch.float64)
            keep = (absent @ groups.to(torch.float64)) == 0
        return masked_embeddings(encoder, activation, reference, keep, self.internal_batch_size)

    def embeddings(self, coalitions_a: Tensor, coalitions_b: Tensor) -> Tuple[Tensor, Tensor]:
        """``(m_a, D)``, ``(m_b, D)``: each side's embeddings of its coalitions."""
        with torch.no_grad():
            return self._embeddings(0, coalitions_a), self._embeddings(1, coalitions_b)

    def values_of(self, embeddings_a: Tensor, embeddings_b: Tensor) -> Tensor:
        """float64 CPU ``(m_a, m_b)`` similarities of the embeddings' pairs."""
        return (self.scale * (embeddings_a @ embeddings_b.T)).to("cpu", torch.float64)

    def cross_values(self, coalitions_a: Tensor, coalitions_b: Tensor) -> Tensor:
        """float64 CPU ``(m_a, m_b)`` from ``m_a + m_b`` encoder passes."""
        return self.values_of(*self.embeddings(coalitions_a, coalitions_b))

    def __call__(self, coalitions: Tensor) -> Tensor:
        embedded_a, embedded_b = self.embeddings(coalitions[:, : self.n_players_a], coalitions[:, self.n_players_a :])
        return (self.scale * (embedded_a * embedded_b).sum(-1)).to("cpu", torch.float64)
