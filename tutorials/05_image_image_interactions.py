# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Image-image interactions
#
# Two images through the *same* vision encoder: which region of one image matches which
# region of the other? A `DualEncoder` with CLIP's image embedding on both sides answers
# it with the same method. This tutorial uses the bundled demo model's vision tower on
# two generated scenes that share an object:
#
# 1. `DualEncoder(encode_image, encode_image)` and one vision layer for both sides,
# 2. black references on both sides,
# 3. `selection.box_image_map`: a box of image a mapped onto image b,
# 4. the pointing game on image b's box of the shared object.

# %%
# %matplotlib inline
import os
import random
import warnings
warnings.filterwarnings("ignore", message="IProgress not found")   # tqdm without ipywidgets
# Captum warns when it normalizes a map of tiny values; the plots here rescale its output.
warnings.filterwarnings("ignore", message="Attempting to normalize by value approximately 0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
import time
import numpy as np
import torch
import matplotlib.pyplot as plt
import transformers
transformers.utils.logging.set_verbosity_error()
transformers.utils.logging.disable_progress_bar()
# Fixed seeds: a re-execution reproduces every output (tests/test_tutorials.py checks it).
random.seed(0)
np.random.seed(0)
_ = torch.manual_seed(0)

# %%
from captum_bilinear import BilinearIntegratedInteractions, DualEncoder
from captum_bilinear.metrics import pointing_game
from captum_bilinear.references import black_image
from captum_bilinear.selection import box_image_map
from captum_bilinear.visualization import common_scale, image_heatmap
from captum_bilinear.zoo import HELD_OUT_SEED, SceneGenerator, default_layers, load_demo_model, scene_inputs

model, tokenizer, processor = load_demo_model()
_, vision_layer = default_layers(model)

# %% [markdown]
# ## Two scenes that share an object
#
# Search the held-out stream for two scenes of two or three objects that have exactly one
# (colour, shape) in common.

# %%
generator = SceneGenerator(HELD_OUT_SEED, mode="full", min_objects=2, max_objects=3)
candidates = generator.scenes(40)

def kinds(scene):
    return {(o.colour, o.shape): o for o in scene.all_objects}

def find_pair():
    for i, first in enumerate(candidates):
        for second in candidates[i + 1:]:
            shared = set(kinds(first)) & set(kinds(second))
            if len(shared) == 1:
                return first, second, shared.pop()

scene_a, scene_b, shared = find_pair()
print("a:", scene_a.caption)
print("b:", scene_b.caption)
print("shared:", shared)

fig, axes = plt.subplots(1, 2, figsize=(6, 3))
for ax, scene, name in zip(axes, (scene_a, scene_b), "ab"):
    ax.imshow(scene.image)
    x0, y0, x1, y1 = kinds(scene)[shared].box
    ax.add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, edgecolor="lime"))
    ax.set_title(f"image {name}", fontsize=10)
    ax.set_axis_off()
plt.show()


# %% [markdown]
# ## The image-image dual encoder
#
# `encode_image` returns CLIP's projected image embedding (transformers 5 returns an
# output object; `DualEncoder` reads its `pooler_output`). The same function on both
# sides, the same layer module for both sides, and a black image, in the model's
# normalized pixel space, as each side's reference (`DualEncoder`'s own default
# reference would be zeros, i.e. the mean colour).

# %%
def encode_image(pixel_values):
    return model.get_image_features(pixel_values=pixel_values)

images = DualEncoder(encode_image, encode_image)
bii = BilinearIntegratedInteractions(images, vision_layer)

pixels_a = scene_inputs(scene_a, tokenizer, processor)["pixel_values"]
pixels_b = scene_inputs(scene_b, tokenizer, processor)["pixel_values"]
inputs, baselines = (pixels_a, pixels_b), (black_image(pixels_a), black_image(pixels_b))
start = time.perf_counter()
A, delta = bii.attribute(inputs, baselines=baselines, n_steps=32, return_convergence_delta=True)
terms = bii.similarity_terms(inputs, baselines=baselines)
print(f"A {tuple(A.shape)} (CLS + 64 patches on each side) in {time.perf_counter() - start:.1f} s")
print(f"cosine of the two images {terms.similarity.item():+.4f}; reference terms f(r_a,b) "
      f"{terms.reference_a.item():+.4f}, f(a,r_b) {terms.reference_b.item():+.4f}, "
      f"f(r_a,r_b) {terms.reference_both.item():+.4f}")
print(f"identity {terms.interaction.item():+.4f}, sum A {A.sum().item():+.4f}, delta {delta.item():+.2e}")

# %% [markdown]
# ## Boxes of image a on image b
#
# `box_image_map(A[0], box, image_size)` sums the interactions of the patches in a box of
# image a and lays them out on image b's patch grid. For every object of image a: its box,
# and where it interacts on image b (one colour scale for the whole figure).

# %%
image_size = tuple(pixels_a.shape[-2:])
objects_a = scene_a.all_objects
maps = [box_image_map(A[0], obj.box, image_size) for obj in objects_a]
scale = common_scale(*maps)
fig, axes = plt.subplots(2, len(objects_a), figsize=(3 * len(objects_a), 6), squeeze=False)
for column, (obj, image_map) in enumerate(zip(objects_a, maps)):
    axes[0, column].imshow(scene_a.image)
    x0, y0, x1, y1 = obj.box
    axes[0, column].add_patch(plt.Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False,
                                            edgecolor="lime", linewidth=2))
    axes[0, column].set_title(f"a: {obj.colour} {obj.shape}", fontsize=10)
    axes[0, column].set_axis_off()
    match = kinds(scene_b).get((obj.colour, obj.shape))
    image_heatmap(scene_b.image, image_map, ax=axes[1, column], scale=scale,
                  box=match.box if match else None,
                  title="on b" + (" (same object boxed)" if match else ""))
plt.tight_layout()
plt.show()

# %% [markdown]
# **What the figure shows.** The yellow diamond's box in image a interacts strongly and
# positively with the yellow diamond in image b, and hardly with anything else. The
# other two boxes show what the encoder compares besides identity: the green square's
# box is positive on image b's green triangle (same colour), but even more on the yellow
# diamond; the red cross's box is negative on the diamond and positive on the purple
# star. (Captum's blended heat map draws the image in grey, so the green triangle at the
# top right of image b is barely visible under the colours.)
#
# ## Pointing game on image b
#
# The shared object's box in image a, mapped onto image b, should point at the shared
# object's box in image b; and the reverse direction (`A[0].T`: image b's box on image a)
# likewise.

# %%
box_a, box_b = kinds(scene_a)[shared].box, kinds(scene_b)[shared].box
forward = pointing_game(box_image_map(A[0], box_a, image_size), box_b, image_size)
backward = pointing_game(box_image_map(A[0].T, box_b, image_size), box_a, image_size)
x0, y0, x1, y1 = box_b
print(f"a -> b: hit {forward.hit}, energy {forward.energy:.2f} (box b covers {(x1 - x0) * (y1 - y0) / 4096:.2f} of the image)")
x0, y0, x1, y1 = box_a
print(f"b -> a: hit {backward.hit}, energy {backward.energy:.2f} (box a covers {(x1 - x0) * (y1 - y0) / 4096:.2f} of the image)")
cls_share = (A[0, 0, :].abs().sum() + A[0, 1:, 0].abs().sum()) / A[0].abs().sum()
print(f"share of |A| on a CLS row or column: {cls_share.item():.2f}")

# %% [markdown]
# Both directions hit: 81 % of the positive mass of a's diamond box lands in b's diamond
# box (9 % of the image), and 25 % in the other direction (a's diamond box covers only
# 3 %). Two things to keep in mind. More than half of `|A|` sits on a CLS row or column,
# which the box maps leave out: CLIP pools the image at CLS, and at this layer much of the
# comparison runs through it. And, as for the sentence encoder, the two references are
# the same black image, so `f(r_a, r_b) = 1` and the interactions add up to 1.15 while
# the cosine of the two images is 0.35 (the delta, 6e-3 at 32 nodes, is small): the
# matrix shows which regions carry the similarity, and its sum is not the score.
#
# ## Back to the start
#
# - [Caption-image interactions](01_caption_image_interactions.ipynb)
