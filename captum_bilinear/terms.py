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

import json
import os
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Tuple, TypeVar, Union

import torch
from torch import Tensor

from captum_bilinear._utils.saved_values import from_json, to_json

#: What :meth:`InteractionTerms.save` writes: the format's name and version (a reader
#: refuses other versions rather than misreading them).
SAVED_FORMAT = "captum-bilinear InteractionTerms"
SAVED_FORMAT_VERSION = 1
#: The files of a saved :class:`InteractionTerms` directory.
TENSORS_FILE, METADATA_FILE = "terms.safetensors", "terms.json"
#: The tensor attributes, in the order they are saved.
_TENSORS = ("intercept", "first_a", "first_b", "cross", "intra_a", "intra_b", "players_a", "players_b",
            "delta", "n_steps", "error", "image")
_REQUIRED_TENSORS = ("intercept", "first_a", "first_b", "cross")
#: a required (Tensor) or an optional (Optional[Tensor]) term: moved, it stays what it was
_Term = TypeVar("_Term", Tensor, Optional[Tensor])


def _take(value: Optional[Tensor], index: int) -> Optional[Tensor]:
    return None if value is None else value[index : index + 1]


#: What :meth:`InteractionTerms.load` requires of each entry of ``terms.json``.
_METADATA_CHECKS = {
    "method": ("a string", lambda v: isinstance(v, str)),
    "layers": ("a list of two strings", lambda v: isinstance(v, list) and len(v) == 2
               and all(isinstance(x, str) for x in v)),
    "settings": ("an object", lambda v: isinstance(v, dict)),
    "has_intercept": ("true or false", lambda v: isinstance(v, bool)),
    "has_first_order": ("true or false", lambda v: isinstance(v, bool)),
    "tokens": ("null or a list of lists of strings", lambda v: v is None or (isinstance(v, list) and all(
        isinstance(row, list) and all(isinstance(x, str) for x in row) for row in v))),
    "grid": ("null or two ints", lambda v: v is None or (isinstance(v, list) and len(v) == 2
                                                        and all(isinstance(x, int) for x in v))),
}


def _check_metadata(metadata: Dict[str, Any], file: str) -> None:
    """A ``ValueError`` naming ``file`` and the first entry ``save`` would not have written."""
    for key, (expected, holds) in _METADATA_CHECKS.items():
        if key not in metadata or not holds(metadata[key]):
            got = "nothing" if key not in metadata else repr(metadata[key])[:60]
            raise ValueError(f"path: {file}: {key}: expected {expected}, got {got}; the file was changed after "
                             "InteractionTerms.save wrote it")


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
        tokens: optional labels of side a's positions, one list per example (side a the
            caption: :func:`~captum_bilinear.selection.token_labels`).
        grid: optional ``(rows, cols)`` patch grid of side b (the image); position 0 is
            its CLS token when ``P == rows * cols + 1``.
        image: optional uint8 ``(batch, height, width, 3)``: side b's images as the model
            saw them (after resizing and cropping), which the grid covers.

    Saved with :meth:`save` and read back with :meth:`load`, exactly (tensors in
    safetensors, the rest as JSON beside them).

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
    tokens: Optional[List[List[str]]] = None
    grid: Optional[Tuple[int, int]] = None
    image: Optional[Tensor] = None

    def __post_init__(self) -> None:
        batch, positions_a, positions_b = self.cross.shape
        self._check_context(batch, positions_a, positions_b)
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

    def _check_context(self, batch: int, positions_a: int, positions_b: int) -> None:
        """The labels, grid and image fit the terms (a flat label list is one example's)."""
        if self.tokens is not None:
            tokens: List[Any] = list(self.tokens)  # or one example's flat list of labels
            if tokens and all(isinstance(token, str) for token in tokens):
                tokens = [tokens]
            if len(tokens) != batch or any(len(row) != positions_a for row in tokens):
                raise ValueError(f"tokens: expected {batch} list(s) of {positions_a} labels (one per position of "
                                 f"side a), got lengths {[len(row) for row in tokens]}")
            self.tokens = [[str(token) for token in row] for row in tokens]
        if self.grid is not None:
            rows, cols = (int(value) for value in self.grid)
            if rows < 1 or cols < 1 or positions_b not in (rows * cols, rows * cols + 1):
                raise ValueError(f"grid: {tuple(self.grid)} has {rows * cols} patches; side b has {positions_b} "
                                 "positions (expected rows * cols, or one more for a CLS token)")
            self.grid = (rows, cols)
        if self.image is not None:
            if not isinstance(self.image, Tensor) or self.image.dtype != torch.uint8 or self.image.dim() != 4 \
                    or self.image.shape[0] != batch or self.image.shape[-1] != 3:
                shape = tuple(self.image.shape) if isinstance(self.image, Tensor) else type(self.image).__name__
                raise ValueError(f"image: expected a uint8 tensor of shape ({batch}, height, width, 3), got {shape}")

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
        taken: Dict[str, Any] = {name: _take(getattr(self, name), index) for name in _TENSORS}
        return replace(self, tokens=None if self.tokens is None else [self.tokens[index]], **taken)

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
        keys: List[Tuple[int, ...]] = [()]
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

        def move(value: _Term, keep_dtype: bool = False) -> _Term:
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
            image=move(self.image, True),
        )

    def detach(self) -> "InteractionTerms":
        return replace(self, **{
            name: getattr(self, name).detach() for name in (
                "intercept", "first_a", "first_b", "cross", "intra_a", "intra_b", "delta", "error")
            if getattr(self, name) is not None})

    # ---------------------------------------------------------------- saving

    def save(self, path: Union[str, "os.PathLike[str]"]) -> None:
        """Writes the terms to the directory ``path`` (created): every tensor in
        ``terms.safetensors``, the rest (method, layers, settings, token labels, grid, the
        format version) in ``terms.json`` beside it. :meth:`load` reads them back exactly.

        Raises:
            TypeError: naming the ``settings`` entry that cannot be saved.

        Example:
            >>> import tempfile
            >>> terms = InteractionTerms(torch.zeros(1), torch.zeros(1, 2), torch.zeros(1, 5), torch.ones(1, 2, 5),
            ...                          tokens=[["[BOS]", "dog"]], grid=(2, 2), settings={"n_steps": 8})
            >>> folder = tempfile.mkdtemp(); terms.save(folder)
            >>> sorted(os.listdir(folder))
            ['terms.json', 'terms.safetensors']
            >>> InteractionTerms.load(folder).tokens
            [['[BOS]', 'dog']]
        """
        from safetensors.torch import save_file

        tensors: Dict[str, Tensor] = {}
        for name in _TENSORS:
            value = getattr(self, name)
            if value is not None:
                tensors[name] = value.detach().cpu().contiguous().clone()
        metadata = {
            "format": SAVED_FORMAT, "format_version": SAVED_FORMAT_VERSION,
            "method": self.method, "layers": list(self.layers),
            "settings": to_json(dict(self.settings), tensors, "settings"),
            "has_intercept": self.has_intercept, "has_first_order": self.has_first_order,
            "tokens": self.tokens, "grid": None if self.grid is None else list(self.grid),
            "tensors": sorted(tensors),
        }
        os.makedirs(path, exist_ok=True)
        save_file(tensors, os.path.join(path, TENSORS_FILE),
                  metadata={"format": SAVED_FORMAT, "format_version": str(SAVED_FORMAT_VERSION)})
        with open(os.path.join(path, METADATA_FILE), "w", encoding="utf-8") as handle:
            json.dump(metadata, handle, indent=1)

    @classmethod
    def load(cls, path: Union[str, "os.PathLike[str]"], device: Union[str, torch.device] = "cpu") -> "InteractionTerms":
        """The terms :meth:`save` wrote to the directory ``path``, on ``device``.

        Raises:
            ValueError: naming ``path``: no such directory, a file missing, not a saved
                InteractionTerms, or a format version this version of captum-bilinear
                does not read.

        Example:
            >>> import tempfile
            >>> terms = InteractionTerms(torch.zeros(1), torch.zeros(1, 1), torch.zeros(1, 1), torch.ones(1, 1, 1))
            >>> folder = tempfile.mkdtemp(); terms.save(folder)
            >>> bool(InteractionTerms.load(folder).cross.equal(terms.cross))
            True
        """
        from safetensors.torch import load_file

        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path: expected a directory path, got {type(path).__name__}")
        if not os.path.isdir(path):
            raise ValueError(f"path: no such directory: {os.fspath(path)} (expected what InteractionTerms.save wrote)")
        files = {name: os.path.join(path, name) for name in (METADATA_FILE, TENSORS_FILE)}
        missing = [name for name, file in files.items() if not os.path.isfile(file)]
        if missing:
            raise ValueError(f"path: {os.fspath(path)} has no {' and no '.join(missing)}; "
                             "expected a directory written by InteractionTerms.save")
        try:
            with open(files[METADATA_FILE], encoding="utf-8") as handle:
                metadata = json.load(handle)
        except (OSError, ValueError) as error:
            raise ValueError(f"path: cannot read {files[METADATA_FILE]} as JSON ({error})") from error
        if not isinstance(metadata, dict) or metadata.get("format") != SAVED_FORMAT:
            raise ValueError(f"path: {files[METADATA_FILE]} is not a saved InteractionTerms "
                             f"(its format is {metadata.get('format') if isinstance(metadata, dict) else None!r}, "
                             f"expected {SAVED_FORMAT!r})")
        version = metadata.get("format_version")
        if version != SAVED_FORMAT_VERSION:
            from captum_bilinear import __version__

            raise ValueError(f"path: {os.fspath(path)} was saved in format version {version!r}; captum-bilinear "
                             f"{__version__} reads version {SAVED_FORMAT_VERSION} only"
                             + (" (it was written by a newer captum-bilinear: upgrade to read it)"
                                if isinstance(version, int) and version > SAVED_FORMAT_VERSION else ""))
        _check_metadata(metadata, files[METADATA_FILE])
        try:
            torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise ValueError(f"device: {device!r} is not a device; expected cpu, cuda, cuda:1, ...") from error
        try:
            tensors = load_file(files[TENSORS_FILE], device=str(device))
        except Exception as error:  # safetensors' own error type: a damaged or overwritten file
            raise ValueError(f"path: cannot read {files[TENSORS_FILE]} ({type(error).__name__}: {error}); expected "
                             "what InteractionTerms.save wrote") from error
        absent = [name for name in _REQUIRED_TENSORS if name not in tensors]
        if absent:
            raise ValueError(f"path: {files[TENSORS_FILE]} has no {', '.join(absent)}; expected what "
                             "InteractionTerms.save wrote")
        fields: Dict[str, Any] = {name: tensors.get(name) for name in _TENSORS}
        return cls(
            **fields, method=metadata["method"], layers=tuple(metadata["layers"]),
            settings=from_json(metadata["settings"], tensors), has_intercept=metadata["has_intercept"],
            has_first_order=metadata["has_first_order"], tokens=metadata["tokens"],
            grid=None if metadata["grid"] is None else tuple(metadata["grid"]),
        )
