"""Token-patch interactions of a (randomly initialised, ViT-B/32-shaped but small) CLIP.

Run with ``make demo``; prints the interaction matrix's shape, the completeness check and
the strongest token-patch pair.
"""

import torch
from transformers import CLIPConfig, CLIPModel

from captum_bilinear import BilinearIntegratedInteractions

torch.manual_seed(0)
small = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=4, num_attention_heads=4)
model = CLIPModel(CLIPConfig(text_config=small, vision_config=dict(small, image_size=64, patch_size=16), projection_dim=32)).eval()

input_ids = torch.tensor([[49406, 320, 1125, 539, 320, 2368, 49407]])  # [BOS, 5 tokens, EOS]
pixel_values = torch.randn(1, 3, 64, 64)
layer = (model.text_model.encoder.layers[-2], model.vision_model.encoder.layers[-2])

bii = BilinearIntegratedInteractions(model, layer)
A, delta = bii.attribute((input_ids, pixel_values), n_steps=32, return_convergence_delta=True)
terms = bii.similarity_terms((input_ids, pixel_values))

print(f"interactions: {tuple(A.shape)} (batch, tokens, CLS + patches)")
print(f"similarity f(a,b) = {terms.similarity.item():+.5f}")
print(f"sum of interactions = {A.sum().item():+.5f} = f(a,b) - f(r_a,b) - f(a,r_b) + f(r_a,r_b) "
      f"= {terms.interaction.item():+.5f} (delta {delta.item():+.1e})")
token, patch = divmod(int(A[0].abs().argmax()), A.shape[2])
print(f"strongest interaction: token {token} x position {patch}: {A[0, token, patch].item():+.5f}")
