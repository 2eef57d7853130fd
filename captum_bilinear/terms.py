"""One result type for every interaction method: the whole decomposition of a score.

An explanation of a pair ``(a, b)`` whose sides have ``S`` and ``P`` positions is read
as a 2-additive game over the players ``[positions of a..., positions of b...]``:

.. math::

    \\hat\\nu(M) = e_0 + \\sum_{i \\in M} e_i + \\sum_{\\{i, j\\} \\subseteq M} e_{ij}

with ``e_0 = intercept``, ``e_i`` from ``first_a`` / ``first_b``, the cross-modal pairs
``cross`` and, where a method fits them, the intra-modal pairs ``intra_a`` / ``intra_b``
(symmetric, zero diagonal, each unordered pair counted once). Non-player positions (the
special tokens a method leaves out, padding) have zero terms and are always present.

What each method puts in it:

* :class:`~captum_bilinear.BilinearIntegratedInteractions`: ``intercept = f(r_a, r_b)``,
  ``first_a`` the integrated gradients of ``f(., r_b)`` over layer a, ``first_b`` those
  of ``f(r_a, .)`` over layer b, ``cross = A``: the terms sum to ``f(a, b)`` up to
  quadrature (``delta``).
* :class:`~captum_bilinear.WeightedBanzhafInteractions` (FIxLIP): the fitted intercept,
  first-order and pair terms of the weighted Banzhaf index.
* :class:`~captum_bilinear.InteractionLIME`: the surrogate's constant and matrix (it has
  no first-order terms: they are zero and ``has_first_order`` is False).
* :class:`~captum_bilinear.InteractionCAM`, :class:`~captum_bilinear.TokenPatchSimilarity`:
  ``cross`` only (``has_intercept`` and ``has_first_order`` False).
"""

from dataclasses import dataclass, field, replace
from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor


def _take(value: Optional[Tensor], index: int) -> Optional[Tensor]:
    return None if value is None else value[index : index + 1]


@dataclass
class InteractionTerms:
    """Intercept, first-order and pair terms of every example of a batch.

    Attributes:
        intercept: ``(batch,)``.
        first_a: ``(batch, S)``; ``first_b``: ``(batch, P)``.
        cross: ``(batch, S, P)`` cross-modal pairs (what ``attribute`` returns).
        intra_a: ``(batch, S, S)`` or None; ``intra_b``: ``(batch, P, P)`` or None.
        players_a: bool ``(batch, S)``: the positions that are players (None: all);
            ``players_b`` likewise.
        method: the class that produced the terms.
        layers: the attributed modules' names in the model (``"text_model.embeddings"``, ...).
        settings: what else produced them (``n_steps``, ``method``, ``tolerance``,
            ``budget``, ``n_samples``, ``p``, ``random_state``, ...).
        delta: ``(batch,)`` convergence delta of quadrature methods, else None: for
            BilinearIntegratedInteractions that of the interactions, as ``attribute``
            returns it (``cross`` summed minus ``f(a,b) - f(r_a,b) - f(a,r_b) + f(r_a,r_b)``).
        n_steps: ``(batch,)`` quadrature nodes used per example (per side, the larger),
            for quadrature methods.
        error: ``(batch,)`` the estimated relative error of ``n_steps="auto"`` runs.
        has_intercept, has_first_order: whether the method estimates those terms (when
            not, they are zeros).

    Example:
        >>> terms = InteractionTerms(intercept=torch.tensor([0.5]), first_a=torch.tensor([[1.0, 2.0]]),
        ...                          first_b=torch.tensor([[3.0]]), cross=torch.tensor([[[0.25], [0.5]]]))
        >>> terms.total()  # every player present
        tensor([7.2500])
        >>> terms.predict(torch.tensor([[True, False, True]]), index=0)  # players a0 and b0 present
        tensor([4.7500], dtype=torch.float64)
    """

    intercept: Tensor
    first_a: Tensor
    first_b: Tensor
    cross: Tensor
    intra_a: Optional[Tensor] = None
    intra_b: Optional[Tensor] = None
    players_a: Optional[Tensor] = None
    players_b: Optional[Tensor] = None
    method: str = ""
    layers: Tuple[str, str] = ("", "")
    settings: Dict[str, Any] = field(default_factory=dict)
    delta: Optional[Tensor] = None
    n_steps: Optional[Tensor] = None
    error: Optional[Tensor] = None
    has_intercept: bool = True
    has_first_order: bool = True

    def __post_init__(self) -> None:
        batch, positions_a, positions_b = self.cross.shape
        expected = {
            "intercept": (batch,),
            "first_a": (batch, positions_a),
            "first_b": (batch, positions_b),
            "intra_a": (batch, positions_a, positions_a),
            "intra_b": (batch, positions_b, positions_b),
            "players_a": (batch, positions_a),
            "players_b": (batch, positions_b),
        }
        for name, shape in expected.items():
            value = getattr(self, name)
            if value is not None and tuple(value.shape) != shape:
                raise ValueError(f"{name}: expected shape {shape} to match cross {tuple(self.cross.shape)}, "
                                 f"got {tuple(value.shape)}")

    # ------------------------------------------------------------------ access

    @property
    def batch_size(self) -> int:
        return self.cross.shape[0]

    @property
    def positions(self) -> Tuple[int, int]:
        """``(S, P)``."""
        return self.cross.shape[1], self.cross.shape[2]

    def __len__(self) -> int:
        return self.batch_size

    def __getitem__(self, index: int) -> "InteractionTerms":
        """The terms of example ``index`` (a batch of one)."""
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"index: expected an int, got {type(index).__name__}")
        if not -self.batch_size <= index < self.batch_size:
            raise IndexError(f"index: {index} is out of range for a batch of {self.batch_size}")
        index %= self.batch_size
        return replace(
            self,
            **{name: _take(getattr(self, name), index) for name in (
                "intercept", "first_a", "first_b", "cross", "intra_a", "intra_b", "players_a", "players_b",
                "delta", "n_steps", "error")},
        )

    def player_masks(self) -> Tuple[Tensor, Tensor]:
        """bool ``(batch, S)`` and ``(batch, P)``: the player positions (all when unset)."""
        batch, positions_a, positions_b = self.cross.shape
        device = self.cross.device
        players_a = self.players_a if self.players_a is not None else torch.ones(batch, positions_a, dtype=torch.bool, device=device)
        players_b = self.players_b if self.players_b is not None else torch.ones(batch, positions_b, dtype=torch.bool, device=device)
        return players_a, players_b

    # -------------------------------------------------------------- the game

    def total(self) -> Tensor:
        """``(batch,)``: the prediction with every player present (for
        BilinearIntegratedInteractions, ``f(a, b)`` up to ``delta``)."""
        value = self.intercept + self.first_a.sum(1) + self.first_b.sum(1) + self.cross.sum((1, 2))
        for intra in (self.intra_a, self.intra_b):
            if intra is not None:
                value = value + intra.sum((1, 2)) / 2  # symmetric: each pair once
        return value

    def predict(self, coalitions: Tensor, index: int = 0) -> Tensor:
        """The explanation's value of each coalition of example ``index``.

        Args:
            coalitions: bool ``(m, S + P)`` over the players ``[positions of a, positions
                of b]``, True = present (non-player positions count as present whatever
                the mask says).
            index: the example.

        Returns:
            float64 ``(m,)``.
        """
        one = self[index]
        positions_a, positions_b = self.positions
        if not isinstance(coalitions, Tensor) or coalitions.dtype != torch.bool:
            raise TypeError("coalitions: expected a bool Tensor of shape (m, S + P)")
        if coalitions.dim() != 2 or coalitions.shape[1] != positions_a + positions_b:
            raise ValueError(f"coalitions: expected shape (m, {positions_a + positions_b}), got {tuple(coalitions.shape)}")
        players_a, players_b = one.player_masks()
        present = coalitions.cpu() | ~torch.cat([players_a[0], players_b[0]]).cpu()
        x = present.to(torch.float64)
        x_a, x_b = x[:, :positions_a], x[:, positions_a:]
        value = float(one.intercept[0]) + x_a @ one.first_a[0].double().cpu() + x_b @ one.first_b[0].double().cpu()
        value = value + ((x_a @ one.cross[0].double().cpu()) * x_b).sum(1)
        for intra, side in ((one.intra_a, x_a), (one.intra_b, x_b)):
            if intra is not None:
                value = value + ((side @ intra[0].double().cpu()) * side).sum(1) / 2
        return value

    def first_order_values(self) -> Tuple[Tensor, Tensor]:
        """Each player's first-order value of the 2-additive game at inclusion probability
        ``p = settings["p"]`` (default 0.5; FIxLIP, Theorem 1): ``e_i + p * sum_j e_ij``
        over every pair containing ``i``.

        Returns:
            ``(values_a, values_b)``: ``(batch, S)`` and ``(batch, P)``.
        """
        p = float(self.settings.get("p", 0.5))
        values_a = self.first_a + p * self.cross.sum(2)
        values_b = self.first_b + p * self.cross.sum(1)
        if self.intra_a is not None:
            values_a = values_a + p * self.intra_a.sum(2)
        if self.intra_b is not None:
            values_b = values_b + p * self.intra_b.sum(2)
        return values_a, values_b

    # --------------------------------------------------------------- shapiq

    def shapiq_index(self) -> str:
        """The shapiq index name of these values: ``"FBII"`` for weighted Banzhaf terms at
        ``p = 0.5`` (Faith-Banzhaf), else ``"Moebius"`` (the values are the Moebius
        coefficients of the explanation's 2-additive game)."""
        if self.method == "WeightedBanzhafInteractions" and float(self.settings.get("p", 0.5)) == 0.5:
            return "FBII"
        return "Moebius"

    def to_shapiq(self, index: int = 0, interaction_index: Optional[str] = None) -> Any:
        """Example ``index`` as a ``shapiq.InteractionValues`` (orders 0 to 2; players:
        the positions of side a, then those of side b), so shapiq's plots and tools apply.

        Args:
            index: the example.
            interaction_index: shapiq's index name (default: :meth:`shapiq_index`).

        Returns:
            ``shapiq.InteractionValues`` with ``baseline_value = intercept``.
        """
        import numpy as np
        from shapiq import InteractionValues

        one = self[index]
        positions_a, positions_b = self.positions
        n_players = positions_a + positions_b
        players_a, players_b = one.player_masks()
        players = torch.cat([players_a[0], players_b[0]]).cpu().tolist()
        keys = [()]
        values = [float(one.intercept[0])]
        first = torch.cat([one.first_a[0], one.first_b[0]]).double().cpu().tolist()
        for i in range(n_players):
            if players[i]:
                keys.append((i,))
                values.append(first[i])
        cross = one.cross[0].double().cpu()
        for s in range(positions_a):
            for p in range(positions_b):
                if players[s] and players[positions_a + p]:
                    keys.append((s, positions_a + p))
                    values.append(float(cross[s, p]))
        for intra, offset, size in ((one.intra_a, 0, positions_a), (one.intra_b, positions_a, positions_b)):
            if intra is None:
                continue
            matrix = intra[0].double().cpu()
            for i in range(size):
                for j in range(i + 1, size):
                    if players[offset + i] and players[offset + j]:
                        keys.append((offset + i, offset + j))
                        values.append(float(matrix[i, j]))
        samples = self.settings.get("samples")
        budget = samples[index] if isinstance(samples, (list, tuple)) else self.settings.get("budget")
        return InteractionValues(
            np.asarray(values, dtype=float),
            index=interaction_index or self.shapiq_index(),
            max_order=2,
            min_order=0,
            n_players=n_players,
            interaction_lookup={key: position for position, key in enumerate(keys)},
            estimated=True,
            estimation_budget=int(budget) if budget is not None else None,
            baseline_value=float(one.intercept[0]),
        )

    # ---------------------------------------------------------------- moving

    def to(self, *args: Any, **kwargs: Any) -> "InteractionTerms":
        """The terms moved / cast like ``Tensor.to`` (player masks keep their dtype)."""

        def move(value: Optional[Tensor], keep_dtype: bool = False) -> Optional[Tensor]:
            if value is None:
                return None
            if keep_dtype:
                device = kwargs.get("device", next((a for a in args if isinstance(a, (str, torch.device))), None))
                return value.to(device) if device is not None else value
            return value.to(*args, **kwargs)

        return replace(
            self,
            intercept=move(self.intercept), first_a=move(self.first_a), first_b=move(self.first_b),
            cross=move(self.cross), intra_a=move(self.intra_a), intra_b=move(self.intra_b),
            players_a=move(self.players_a, True), players_b=move(self.players_b, True),
            delta=move(self.delta), n_steps=move(self.n_steps, True), error=move(self.error),
        )

    def detach(self) -> "InteractionTerms":
        return replace(self, **{
            name: getattr(self, name).detach() for name in (
                "intercept", "first_a", "first_b", "cross", "intra_a", "intra_b", "delta", "error")
            if getattr(self, name) is not None})
