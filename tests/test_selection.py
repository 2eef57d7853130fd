"""Spans, boxes and patch grids on hand-built interaction tensors with known answers."""

import pytest
import torch

from captum_bilinear.selection import (
    box_weights,
    box_image_map,
    box_patch_weights,
    box_pixel_mask,
    box_token_map,
    patch_grid,
    region_token_map,
    span_box_attribution,
    span_image_map,
    span_token_map,
    token_span,
    upsample_map,
)

SIZE = (16, 16)  # a 2x2 grid of 8x8-pixel patches
TOP_LEFT, TOP_RIGHT, BOTTOM_LEFT, BOTTOM_RIGHT = (0, 0, 8, 8), (8, 0, 16, 8), (0, 8, 8, 16), (8, 8, 16, 16)


# ------------------------------------------------------------------------ span -> map


def test_span_image_map_sums_span_tokens_and_drops_cls():
    A = torch.zeros(5, 7)  # 5 tokens x (CLS + 2x3 patches)
    A[:, 0] = 100.0  # CLS must not leak into the map
    A[1, 1 + 4] = 2.0  # token 1 -> patch (row 1, col 1)
    A[2, 1 + 4] = 3.0
    A[2, 1 + 2] = -1.0  # token 2 -> patch (row 0, col 2)
    A[3, 1 + 0] = 50.0  # token 3 is outside the span
    image_map = span_image_map(A, (1, 3), grid_size=(2, 3))
    expected = torch.tensor([[0.0, 0.0, -1.0], [0.0, 5.0, 0.0]])
    assert torch.equal(image_map, expected)


def test_span_image_map_batched_and_without_cls():
    A = torch.zeros(2, 3, 4)
    A[0, 0, 3] = 1.0
    A[1, 1, 0] = 2.0
    maps = span_image_map(A, (0, 2), has_cls=False)
    assert maps.shape == (2, 2, 2)
    assert torch.equal(maps[0], torch.tensor([[0.0, 0.0], [0.0, 1.0]]))
    assert torch.equal(maps[1], torch.tensor([[2.0, 0.0], [0.0, 0.0]]))


def test_span_image_map_errors():
    A = torch.zeros(4, 5)
    with pytest.raises(ValueError, match="span"):
        span_image_map(A, (2, 2))  # empty
    with pytest.raises(ValueError, match="span"):
        span_image_map(A, (3, 5))  # past the end
    with pytest.raises(TypeError, match="span"):
        span_image_map(A, 2)
    with pytest.raises(ValueError, match="grid_size"):
        span_image_map(torch.zeros(4, 7), (0, 1))  # 6 patches: not square
    with pytest.raises(ValueError, match="grid_size"):
        span_image_map(A, (0, 1), grid_size=(2, 3))
    with pytest.raises(ValueError, match="interactions"):
        span_image_map(torch.zeros(5), (0, 1))


# ------------------------------------------------------------------------ boxes


def test_box_pixel_mask_integer_and_fractional_boxes():
    mask = box_pixel_mask((1, 1, 3, 2), (3, 4))
    expected = torch.tensor([[0, 0, 0, 0], [0, 1, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    assert torch.equal(mask, expected)
    # centres 0.5, 1.5, 2.5: a box from 0.6 to 2.5 holds only the pixel centred at 1.5
    assert box_pixel_mask((0.6, 0, 2.5, 1), (1, 4)).tolist() == [[False, True, False, False]]


def test_box_patch_weights_uneven_grid():
    # 10 pixels, 3 patch columns: pixel x -> x * 3 // 10 gives widths 4, 3, 3
    weights = box_patch_weights((0, 0, 2, 1), image_size=(1, 10), grid_size=(1, 3))
    assert torch.allclose(weights, torch.tensor([[0.5, 0.0, 0.0]], dtype=torch.float64))
    weights = box_patch_weights((3, 0, 8, 1), image_size=(1, 10), grid_size=(1, 3))
    assert torch.allclose(weights, torch.tensor([[0.25, 1.0, 1 / 3]], dtype=torch.float64))


def test_box_token_map_and_span_box_attribution():
    A = torch.zeros(3, 5)
    A[0, 1] = 1.0  # token 0 -> top-left
    A[1, 2] = 2.0  # token 1 -> top-right
    A[2, 2] = -4.0  # token 2 -> top-right
    A[:, 0] = 9.0  # CLS is in no box
    # the box covers the whole top-left patch and the left half of the top-right one
    box = (0, 0, 12, 8)
    assert torch.allclose(box_token_map(A, box, SIZE), torch.tensor([1.0, 1.0, -2.0]))
    assert float(span_box_attribution(A, (1, 3), box, SIZE)) == pytest.approx(-1.0)


def test_upsample_modes():
    image_map = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    nearest = upsample_map(image_map, (4, 4))
    assert torch.equal(nearest[:2, :2], torch.ones(2, 2)) and torch.equal(nearest[2:, 2:], torch.full((2, 2), 4.0))
    bilinear = upsample_map(image_map, (4, 4), mode="bilinear")
    # pixel 1's centre is 1/4 of the way between the patch centres: 1 + 0.25 * (2 - 1)
    assert bilinear[0, 1].item() == pytest.approx(1.25)


# ------------------------------------------------------- grids, regions, intra-modal maps


def test_patch_grid_sets_cls_aside():
    values = torch.arange(7.0).view(1, 7)  # CLS + 2x3 patches
    assert torch.equal(patch_grid(values, (2, 3)), torch.tensor([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]]))
    assert torch.equal(patch_grid(torch.arange(4.0), has_cls=False), torch.tensor([[0.0, 1.0], [2.0, 3.0]]))
    with pytest.raises(ValueError, match="grid_size"):
        patch_grid(torch.arange(7.0), (2, 2))


def test_region_token_map_equals_box_token_map_for_whole_patches():
    torch.manual_seed(0)
    A = torch.randn(3, 5)
    mask = torch.tensor([[True, False], [True, False]])  # the left column of patches
    torch.testing.assert_close(region_token_map(A, mask), A[:, 1] + A[:, 3])
    torch.testing.assert_close(region_token_map(A, mask), box_token_map(A, (0, 0, 8, 16), SIZE))


def test_intra_modal_maps():
    A = torch.zeros(5, 5)
    A[2, 1] = 1.5  # image a's top-right patch <-> image b's top-left patch
    assert torch.equal(box_image_map(A, TOP_RIGHT, SIZE), torch.tensor([[1.5, 0.0], [0.0, 0.0]]))
    assert torch.equal(box_image_map(A, TOP_LEFT, SIZE), torch.zeros(2, 2))
    sentences = torch.tensor([[1.0, -1.0, 0.0], [2.0, 0.5, 0.0]])
    assert torch.equal(span_token_map(sentences, (0, 2)), torch.tensor([3.0, -0.5, 0.0]))


# ---------------------------------------------------------------- spans by substring


@pytest.fixture
def word_tokenizer():
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import Whitespace
    from tokenizers.processors import TemplateProcessing
    from transformers import PreTrainedTokenizerFast

    words = ["<bos>", "<eos>", "<unk>", "a", "red", "circle", "left", "of", "blue", "square"]
    backend = Tokenizer(WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    backend.pre_tokenizer = Whitespace()
    backend.post_processor = TemplateProcessing(single="<bos> $A <eos>", special_tokens=[("<bos>", 0), ("<eos>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<bos>", eos_token="<eos>", unk_token="<unk>")


def test_token_span_by_substring(word_tokenizer):
    caption = "a red circle left of a blue square"
    ids = word_tokenizer(caption)["input_ids"]
    start, stop = token_span(word_tokenizer, caption, "blue square")
    assert word_tokenizer.convert_ids_to_tokens(ids[start:stop]) == ["blue", "square"]
    assert token_span(word_tokenizer, caption, "red") == (2, 3)
    assert token_span(word_tokenizer, caption, "Red Circle") == (2, 4)  # case-insensitive fallback
    assert token_span(word_tokenizer, caption, "a", occurrence=2) == (6, 7)
    assert token_span(word_tokenizer, caption, "ircl") == (3, 4)  # a partial word selects its token


def test_token_span_case_insensitive_with_letters_whose_lower_case_is_longer(word_tokenizer):
    """'İ'.lower() is two characters: matching on ``caption.lower()`` shifted every offset
    after it, and "RED" selected the token six characters later ("circle")."""
    caption = "İİİİİİ a red circle"
    ids = word_tokenizer(caption)["input_ids"]
    start, stop = token_span(word_tokenizer, caption, "RED")
    assert word_tokenizer.convert_ids_to_tokens(ids[start:stop]) == ["red"]
    start, stop = token_span(word_tokenizer, "a red İİ circle", "İİ CIRCLE")
    assert word_tokenizer.convert_ids_to_tokens(word_tokenizer("a red İİ circle")["input_ids"][start:stop]) == [
        "<unk>", "circle"]


def test_token_span_errors(word_tokenizer):
    with pytest.raises(ValueError, match="substring: 'green' is not in the caption"):
        token_span(word_tokenizer, "a red circle", "green")
    with pytest.raises(ValueError, match="substring: 'a' is not in the caption 'a red circle' 2 times"):
        token_span(word_tokenizer, "a red circle", "a", occurrence=2)
    with pytest.raises(ValueError, match="substring: expected a non-empty string"):
        token_span(word_tokenizer, "a red circle", " ")


def test_box_weights_reads_a_numpy_box_as_one_box():
    """A numpy int box was read as four boxes ("expected (x0, y0, x1, y1), got np.int64(0)")."""
    import numpy as np

    expected = torch.tensor([[0.0, 1.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    assert torch.equal(box_weights(np.array([0, 0, 8, 8]), SIZE, (2, 2)), expected)
    assert torch.equal(box_weights(np.array([[0, 0, 8, 8]]), SIZE, (2, 2)), expected)


@pytest.mark.parametrize("boxes, error", [([], ValueError), (None, TypeError), (5, TypeError), ("0,0,8,8", TypeError)])
def test_box_weights_refuses_no_box_by_name(boxes, error):
    """No box gave torch.stack's RuntimeError, None or a number "object of type ... has no len()"."""
    with pytest.raises(error, match="boxes: expected"):
        box_weights(boxes, SIZE, (2, 2))
