"""Grids of the families whose image (or audio) positions are not CLS + a square of
patches, checked against the models' and processors' own layouts: SigLIP-2's patch
slots (its processor patchifies a test image), convolutional feature maps (ALIGN's
EfficientNet blocks), and CLAP's folded spectrogram (its patch embedding is local)."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import transformers
from conftest import make_clip

from captum_bilinear import BilinearIntegratedInteractions
from captum_bilinear.selection import (
    box_token_map,
    feature_map_grid,
    naflex_cells,
    naflex_image,
    span_image_map,
    spectrogram_cells,
)

sys.path.insert(0, str(Path(__file__).parent / "adapters"))
from hf_families import make_align, make_clap, make_siglip2  # noqa: E402


def _siglip2_processor():
    if not hasattr(transformers, "Siglip2ImageProcessor"):
        pytest.skip(f"transformers {transformers.__version__} has no Siglip2ImageProcessor; the 5.x run tests it")
    return transformers.Siglip2ImageProcessor(patch_size=4, max_num_patches=12)


def test_naflex_slots_are_the_cells_the_processor_made():
    """A 12x16 image with one bright 4x4 patch at cell (1, 2): the processor puts it in
    one slot, which naflex_cells places at (1, 2) of the image's 3x4 grid; naflex_image
    puts the patches back together into the image."""
    from PIL import Image

    pixels = np.random.default_rng(0).integers(0, 100, (12, 16, 3)).astype(np.uint8)
    pixels[4:8, 8:12] = 255
    out = _siglip2_processor()(images=Image.fromarray(pixels), return_tensors="pt")
    slots = out["pixel_values"][0]
    shape = out["spatial_shapes"][0]
    assert shape.tolist() == [3, 4] and int(out["pixel_attention_mask"].sum()) == 12
    bright = int(slots.mean(-1).argmax())
    one_hot = torch.zeros(1, slots.shape[0])
    one_hot[0, bright] = 1.0
    cells, grid = naflex_cells(one_hot, shape)
    image_map = span_image_map(cells, (0, 1), grid, has_cls=False)
    assert grid == (3, 4) and image_map[1, 2] == 1 and image_map.sum() == 1
    image = naflex_image(slots, shape, patch_size=4)
    np.testing.assert_allclose(image.numpy(), pixels / 255.0, atol=1 / 255 + 1e-6)
    # a box over that cell, in the resized image's pixels, reads that slot
    assert box_token_map(cells, (8, 4, 12, 8), (12, 16), grid, has_cls=False).item() == 1.0


def test_naflex_cells_of_a_batch_with_two_aspect_ratios():
    family = make_siglip2()
    A = BilinearIntegratedInteractions(family.model, family.layers()).attribute(
        family.inputs, additional_forward_args=family.extra, n_steps=4)
    mask, shapes = family.extra_b
    for index in range(2):
        cells, grid = naflex_cells(A[index], shapes[index])
        assert grid == tuple(shapes[index].tolist()) and cells.shape[-1] == int(mask[index].sum())
        torch.testing.assert_close(span_image_map(cells, (0, 3), grid, has_cls=False).flatten(),
                                   A[index, :3, : grid[0] * grid[1]].sum(0))
    with pytest.raises(ValueError, match=r"spatial_shape: a \(4, 4\) grid has 16 cells but the image side has 12"):
        naflex_cells(A[0], (4, 4))


def test_feature_map_grid_is_the_blocks_map_and_its_cells_are_local():
    """ALIGN's block 4 on a 64x96 image: a 4x6 map, A's columns its cells; at block 2
    (an 8x12 map of 8x8-pixel cells), brightening the image's top-left 8x8 pixels moves
    the top-left cell's activation most."""
    family = make_align()
    layer = family.layers()[1]
    pixels = torch.randn(1, 3, 64, 96, generator=torch.Generator().manual_seed(3)).clamp(-1, 1)
    assert feature_map_grid(family.model, layer, pixels) == (4, 6)
    bii = BilinearIntegratedInteractions(family.model, family.layers())
    A = bii.attribute((family.input_ids[1:], pixels), n_steps=4)
    assert A.shape == (1, 5, 24)
    early = family.other_layers[2]
    assert feature_map_grid(family.model, early, pixels) == (8, 12)
    outputs = []
    handle = early.register_forward_hook(lambda module, args, out: outputs.append(out))
    with torch.no_grad():
        changed = pixels.clone()
        changed[..., :8, :8] = 1.0
        family.model.get_image_features(pixel_values=torch.cat([pixels, changed]))
    handle.remove()
    moved = (outputs[0][1] - outputs[0][0]).abs().sum(0).flatten()  # (8 * 12,) row-major cells
    assert int(moved.argmax()) == 0
    clip = make_clip()
    with pytest.raises(ValueError, match=r"its output has shape \(1, 17, 32\), not a \(batch, C, H, W\) feature map"):
        feature_map_grid(clip, clip.vision_model.encoder.layers[0], torch.zeros(1, 3, 32, 32))


def test_spectrogram_cells_unfold_htsat_as_its_patch_embedding_sees_the_spectrogram():
    """CLAP's patch embedding is local: a loud spot at (frame, mel bin) changes one
    patch; unfolded with spectrogram_cells, that patch is the cell over the spot."""
    family = make_clap()
    config = family.model.config.audio_config
    ratio = config.spec_size // config.num_mel_bins  # 4: the 256 interpolated frames in 4 rows of 64
    embed = family.model.audio_model.audio_encoder.patch_embed
    for frame, mel in ((10, 2), (70, 13), (95, 6)):
        quiet = torch.full((1, 1, 100, 16), -60.0)
        loud = quiet.clone()
        loud[0, 0, frame, mel] = 0.0
        outputs = []
        handle = embed.register_forward_hook(lambda module, args, out: outputs.append(out))
        with torch.no_grad():
            family.model.get_audio_features(input_features=torch.cat([quiet, loud]))
        handle.remove()
        moved = (outputs[0][1] - outputs[0][0]).abs().sum(-1)  # (positions,) of the 16x16 patch grid
        cells = spectrogram_cells(moved, ratio)  # (4 bands of 4 bins, 64 cells of 4 frames)
        band, cell = divmod(int(cells.flatten().argmax()), cells.shape[1])
        assert cells.shape == (4, 64)
        assert band == mel // 4
        assert abs(cell - frame * 256 / 100 / 4) <= 1  # frames are interpolated from 100 to 256
