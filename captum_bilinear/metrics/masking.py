"""Model-side masking for the perturbation metrics: builds the ``score_fn`` of
:func:`~captum_bilinear.metrics.deletion_curve` / :func:`~captum_bilinear.metrics.insertion_curve`
and the game of :func:`~captum_bilinear.metrics.p_faithfulness` from a
HuggingFace-CLIP-like pair of embedding functions.

* Removing an image patch replaces its pixels by a baseline image (default 0, which in
  CLIP's normalized pixel space is the dataset's mean colour; pass the normalized
  black image for black).
* Removing a caption token replaces its id by ``pad_token_id``; the sequence keeps its
  length, so BOS, EOS and the EOS position used for pooling stay in place. Only the
  ``players`` positions (default: the tokens strictly between BOS and the first EOS)
  can be removed.

Embedding functions take a batch of inputs and return ``(m, D)`` embeddings, e.g.
``lambda px: model.get_image_features(pixel_values=px)``; outputs with a
``pooler_output`` (transformers 5.x) are read through it. Close over any extra
arguments (an attention mask) yourself.
"""

from typing import Any, Callable, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import Tensor

from captum_bilinear._utils.callables import embedding_of
from captum_bilinear._utils.checks import as_bool_mask, check_choice, check_int, check_pair, check_real

EmbedFn = Callable[[Tensor], Any]
SIMILARITIES = ("cosine", "dot")


def _embedding(output: Any, name: str) -> Tensor:
    output = embedding_of(output, name)
    if output.dim() != 2:
        raise ValueError(f"{name}: expected embeddings of shape (batch, dim), got {tuple(output.shape)}")
    return output


def _target(embedding: Tensor, name: str) -> Tensor:
    if not isinstance(embedding, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(embedding).__name__}")
    embedding = embedding.detach()
    if embedding.dim() == 2 and embedding.shape[0] == 1:
        embedding = embedding[0]
    if embedding.dim() != 1:
        raise ValueError(f"{name}: expected shape (dim,) or (1, dim), got {tuple(embedding.shape)}")
    return embedding


def _similarity(first: Tensor, second: Tensor, kind: str, scale: float) -> Tensor:
    if kind == "cosine":
        first, second = F.normalize(first, dim=-1), F.normalize(second, dim=-1)
    return scale * (first * second).sum(-1)


def _one(tensor: Any, name: str, dims: int, what: str) -> Tensor:
    if not isinstance(tensor, Tensor):
        raise TypeError(f"{name}: expected a torch.Tensor, got {type(tensor).__name__}")
    if tensor.dim() == dims + 1 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() != dims:
        raise ValueError(f"{name}: expected one {what}, got shape {tuple(tensor.shape)}")
    return tensor


def _check_keep(keep_mask: Tensor, n_items: int, name: str) -> Tensor:
    keep_mask = as_bool_mask(keep_mask, name)
    if keep_mask.dim() != 2 or keep_mask.shape[1] != n_items:
        raise ValueError(f"{name}: expected shape (m, {n_items}), got {tuple(keep_mask.shape)}")
    return keep_mask


def patch_pixel_masks(keep_mask: Tensor, grid_size: Tuple[int, int], image_size: Tuple[int, int]) -> Tensor:
    """Per-pixel keep masks from per-patch ones (each patch covers its pixels; the grid
    partition of :mod:`captum_bilinear.selection`).

    Args:
        keep_mask: bool ``(m, grid_h * grid_w)``, patches row-major.
        grid_size: ``(grid_h, grid_w)``.
        image_size: ``(height, width)``.

    Returns:
        bool ``(m, height, width)``.

    Example:
        >>> patch_pixel_masks(torch.tensor([[True, False]]), (1, 2), (1, 4)).int()
        tensor([[[1, 1, 0, 0]]], dtype=torch.int32)
    """
    grid = check_pair(grid_size, "grid_size")
    height, width = check_pair(image_size, "image_size")
    keep_mask = _check_keep(keep_mask, grid[0] * grid[1], "keep_mask")
    if grid[0] > height or grid[1] > width:
        raise ValueError(f"grid_size: {grid} is finer than the image of (height, width) = {(height, width)}")
    rows = torch.arange(height, device=keep_mask.device) * grid[0] // height
    columns = torch.arange(width, device=keep_mask.device) * grid[1] // width
    grid_masks = keep_mask.reshape(-1, *grid)
    return grid_masks[:, rows][:, :, columns]


def default_text_players(input_ids: Tensor) -> Tensor:
    """CLIP's content tokens: positions strictly between position 0 (BOS) and the first
    position of the largest id (EOS, as CLIP's legacy pooling finds it).

    Example:
        >>> default_text_players(torch.tensor([49406, 320, 1929, 49407, 49407]))
        tensor([1, 2])
    """
    ids = _one(input_ids, "input_ids", 1, "caption (sequence_length,)")
    eos = int(torch.argmax(ids).item())
    return torch.arange(1, eos, device=ids.device)


def _players(players: Optional[Sequence[int]], input_ids: Tensor) -> Tensor:
    if players is None:
        result = default_text_players(input_ids)
    else:
        result = torch.as_tensor(list(players) if not isinstance(players, Tensor) else players, dtype=torch.long)
        if result.dim() != 1:
            raise ValueError(f"players: expected a sequence of token positions, got shape {tuple(result.shape)}")
        if result.numel() and (int(result.min()) < 0 or int(result.max()) >= input_ids.shape[-1]):
            raise ValueError(f"players: positions must lie in [0, {input_ids.shape[-1]})")
        if torch.unique(result).numel() != result.numel():
            raise ValueError("players: positions must be distinct")
    if result.numel() == 0:
        raise ValueError("players: the caption has no maskable token positions")
    return result.to(input_ids.device)


def _check_options(similarity: str, scale: Any) -> float:
    check_choice(similarity, "similarity", SIMILARITIES)
    return check_real(scale, "scale")


class PatchMaskingScore:
    """``score_fn`` for image-patch curves (CID, CII): the similarity of a fixed caption
    embedding to the image with the removed patches replaced by ``baseline`` pixels.

    Args:
        embed_image: ``pixel_values (m, C, H, W) -> (m, D)``.
        text_embedding: the fixed caption's embedding, ``(D,)`` or ``(1, D)``.
        pixel_values: the image, ``(C, H, W)`` or ``(1, C, H, W)``.
        grid_size: ``(grid_h, grid_w)`` of the patch grid (ViT-B/32 at 224 px: ``(7, 7)``).
        baseline: a number or a tensor broadcastable to ``(1, C, H, W)``.
        similarity: ``"cosine"`` (default) or ``"dot"``.
        scale: multiplies the similarity (e.g. CLIP's logit scale; default 1).

    Call with bool ``keep_mask`` ``(m, grid_h * grid_w)`` (row-major patches); returns ``(m,)``.

    Example:
        >>> embed = lambda px: px.flatten(1)[:, :2]          # toy "encoder": two pixels
        >>> score = PatchMaskingScore(embed, torch.tensor([1.0, 0.0]),
        ...                           torch.ones(1, 1, 2, 2), grid_size=(1, 2))
        >>> score(torch.tensor([[True, True], [False, True], [True, False]]))
        tensor([0.7071, 0.0000, 1.0000])
    """

    def __init__(
        self,
        embed_image: EmbedFn,
        text_embedding: Tensor,
        pixel_values: Tensor,
        grid_size: Tuple[int, int],
        baseline: Union[float, Tensor] = 0.0,
        similarity: str = "cosine",
        scale: float = 1.0,
    ) -> None:
        if not callable(embed_image):
            raise TypeError(f"embed_image: expected a callable, got {type(embed_image).__name__}")
        self.embed_image = embed_image
        self.text_embedding = _target(text_embedding, "text_embedding")
        self.pixel_values = _one(pixel_values, "pixel_values", 3, "image (C, H, W)").detach()[None]
        self.grid_size = check_pair(grid_size, "grid_size")
        self.image_size = (self.pixel_values.shape[-2], self.pixel_values.shape[-1])
        if isinstance(baseline, Tensor):
            try:
                baseline = torch.broadcast_to(baseline.to(self.pixel_values), self.pixel_values.shape)
            except RuntimeError as error:
                raise ValueError(
                    f"baseline: shape {tuple(baseline.shape)} does not broadcast to {tuple(self.pixel_values.shape)}"
                ) from error
        else:
            baseline = torch.full_like(self.pixel_values, check_real(baseline, "baseline"))
        self.baseline = baseline
        self.similarity = similarity
        self.scale = _check_options(similarity, scale)
        self.n_items = self.grid_size[0] * self.grid_size[1]

    def masked_images(self, keep_mask: Tensor) -> Tensor:
        """The images for ``keep_mask``: ``(m, C, H, W)``."""
        pixels = patch_pixel_masks(keep_mask, self.grid_size, self.image_size).to(self.pixel_values.device)
        return torch.where(pixels[:, None], self.pixel_values, self.baseline)

    def __call__(self, keep_mask: Tensor) -> Tensor:
        embedded = _embedding(self.embed_image(self.masked_images(keep_mask)), "embed_image")
        return _similarity(embedded, self.text_embedding.to(embedded), self.similarity, self.scale)


class TokenMaskingScore:
    """``score_fn`` for caption-token curves (CTD, CTI): the similarity of a fixed image
    embedding to the caption with the removed tokens' ids replaced by ``pad_token_id``.

    The curve's items are the caption positions ``players`` (attribute, a LongTensor),
    in that order: rank them with ``box_token_map(...)[score.players]``.

    Args:
        embed_text: ``input_ids (m, L) -> (m, D)``.
        image_embedding: the fixed image's embedding, ``(D,)`` or ``(1, D)``.
        input_ids: the caption, ``(L,)`` or ``(1, L)``.
        pad_token_id: the id that stands for a removed token (for CLIP, not the EOS id).
        players: maskable positions; default :func:`default_text_players`, which
            assumes CLIP's ``[BOS, tokens..., EOS, padding...]`` with EOS the largest id;
            pass the positions explicitly for other tokenizers (e.g. SigLIP). Other
            positions are never changed.
        similarity: ``"cosine"`` (default) or ``"dot"``.
        scale: multiplies the similarity.

    Call with bool ``keep_mask`` ``(m, len(players))``; returns ``(m,)``.

    Example:
        >>> embed = lambda ids: (ids[:, 1:3] == 7).double()     # toy: "is token 7 there"
        >>> score = TokenMaskingScore(embed, torch.tensor([1.0, 1.0]),
        ...                           torch.tensor([9, 7, 7, 99]), pad_token_id=0)
        >>> score.players
        tensor([1, 2])
        >>> score(torch.tensor([[True, True], [True, False]]))
        tensor([1.0000, 0.7071], dtype=torch.float64)
    """

    def __init__(
        self,
        embed_text: EmbedFn,
        image_embedding: Tensor,
        input_ids: Tensor,
        pad_token_id: int,
        players: Optional[Sequence[int]] = None,
        similarity: str = "cosine",
        scale: float = 1.0,
    ) -> None:
        if not callable(embed_text):
            raise TypeError(f"embed_text: expected a callable, got {type(embed_text).__name__}")
        self.embed_text = embed_text
        self.image_embedding = _target(image_embedding, "image_embedding")
        self.input_ids = _one(input_ids, "input_ids", 1, "caption (sequence_length,)").detach()
        self.pad_token_id = check_int(pad_token_id, "pad_token_id", minimum=0)
        self.players = _players(players, self.input_ids)
        self.similarity = similarity
        self.scale = _check_options(similarity, scale)
        self.n_items = self.players.numel()

    def masked_ids(self, keep_mask: Tensor) -> Tensor:
        """The captions for ``keep_mask``: ``(m, L)``."""
        keep_mask = _check_keep(keep_mask, self.n_items, "keep_mask").to(self.input_ids.device)
        ids = self.input_ids.expand(keep_mask.shape[0], -1).clone()
        player_ids = ids[:, self.players]
        ids[:, self.players] = torch.where(keep_mask, player_ids, torch.full_like(player_ids, self.pad_token_id))
        return ids

    def __call__(self, keep_mask: Tensor) -> Tensor:
        embedded = _embedding(self.embed_text(self.masked_ids(keep_mask)), "embed_text")
        return _similarity(embedded, self.image_embedding.to(embedded), self.similarity, self.scale)


class PairMaskingGame:
    """A cross-modal game (:mod:`captum_bilinear.games`) for
    :func:`~captum_bilinear.metrics.p_faithfulness`: ``ν(M)`` = the similarity when only
    the players in ``M`` are present, masking both sides as :class:`TokenMaskingScore`
    and :class:`PatchMaskingScore` do.

    Players are the caption positions ``text_players`` (side a, first ``n_players_a``
    columns) followed by the image patches in row-major order (side b). ``positions_a``
    and ``positions_b`` are the players' positions in an explanation over the layer
    positions (``positions_b`` = the patches after ``patch_offset``: 1 for a ViT's CLS
    token), so any method's :class:`~captum_bilinear.InteractionTerms` can be scored, and
    :meth:`cross_values` gives all pairs of side coalitions from one pass per coalition,
    so :meth:`~captum_bilinear.WeightedBanzhafInteractions.attribute_game` can explain it.

    Args:
        embed_text, embed_image: as in the two score classes.
        input_ids: the caption, ``(L,)`` or ``(1, L)``.
        pixel_values: the image, ``(C, H, W)`` or ``(1, C, H, W)``.
        pad_token_id: id of a removed token.
        grid_size: ``(grid_h, grid_w)``.
        baseline: pixels of a removed patch (number or broadcastable tensor).
        text_players: maskable caption positions (default: between BOS and EOS).
        similarity, scale: as in the score classes.
        patch_offset: the explanation position of the first patch (1: after a CLS token).

    Call with bool ``coalitions`` ``(m, n_players)``; returns ``(m,)``.

    Example:
        >>> game = PairMaskingGame(lambda ids: (ids[:, 1:2] == 7).double() + 1.0,
        ...                        lambda px: px.flatten(1)[:, :1].double(),
        ...                        torch.tensor([0, 7, 99]), torch.ones(1, 1, 2, 2),
        ...                        pad_token_id=0, grid_size=(1, 2), similarity="dot")
        >>> game.n_players_a, game.n_players
        (1, 3)
        >>> game(torch.tensor([[True, True, True], [False, True, False]]))
        tensor([2., 1.], dtype=torch.float64)
    """

    def __init__(
        self,
        embed_text: EmbedFn,
        embed_image: EmbedFn,
        input_ids: Tensor,
        pixel_values: Tensor,
        pad_token_id: int,
        grid_size: Tuple[int, int],
        baseline: Union[float, Tensor] = 0.0,
        text_players: Optional[Sequence[int]] = None,
        similarity: str = "cosine",
        scale: float = 1.0,
        patch_offset: int = 1,
    ) -> None:
        dummy = torch.zeros(1)
        self._text = TokenMaskingScore(embed_text, dummy, input_ids, pad_token_id, text_players, similarity, scale)
        self._image = PatchMaskingScore(embed_image, dummy, pixel_values, grid_size, baseline, similarity, scale)
        self.similarity = similarity
        self.scale = self._text.scale
        self.text_players = self._text.players
        self.n_players_a = self._text.n_items
        self.n_players_b = self._image.n_items
        self.n_players = self.n_players_a + self.n_players_b
        self.positions_a = self.text_players
        self.positions_b = torch.arange(self.n_players_b) + check_int(patch_offset, "patch_offset", minimum=0)

    def _embeddings(self, coalitions_a: Tensor, coalitions_b: Tensor) -> Tuple[Tensor, Tensor]:
        text = _embedding(self._text.embed_text(self._text.masked_ids(coalitions_a)), "embed_text")
        image = _embedding(self._image.embed_image(self._image.masked_images(coalitions_b)), "embed_image")
        return text, image.to(text)

    def cross_values(self, coalitions_a: Tensor, coalitions_b: Tensor) -> Tensor:
        """``(m_a, m_b)``: the value of every pair of a caption and an image coalition."""
        text, image = self._embeddings(_check_keep(coalitions_a, self.n_players_a, "coalitions_a"),
                                       _check_keep(coalitions_b, self.n_players_b, "coalitions_b"))
        if self.similarity == "cosine":
            text, image = F.normalize(text, dim=-1), F.normalize(image, dim=-1)
        return self.scale * (text @ image.T)

    def __call__(self, coalitions: Tensor) -> Tensor:
        coalitions = _check_keep(coalitions, self.n_players, "coalitions")
        text, image = self._embeddings(coalitions[:, : self.n_players_a], coalitions[:, self.n_players_a :])
        return _similarity(text, image, self.similarity, self.scale)
