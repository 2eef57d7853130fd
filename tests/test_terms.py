"""InteractionTerms against brute force: predictions summed term by term over subsets,
and shapiq's InteractionValues read back key by key."""

import itertools
import json
import re

import pytest
import shapiq
import torch

from captum_bilinear import InteractionTerms


def random_terms(batch=2, positions=(3, 4), seed=0, intra=True):
    generator = torch.Generator().manual_seed(seed)

    def draw(*shape):
        return torch.randn(*shape, generator=generator, dtype=torch.float64)

    S, P = positions

    def symmetric(n):
        upper = torch.triu(draw(batch, n, n), 1)
        return upper + upper.transpose(1, 2)

    return InteractionTerms(draw(batch), draw(batch, S), draw(batch, P), draw(batch, S, P),
                            intra_a=symmetric(S) if intra else None, intra_b=symmetric(P) if intra else None)


def brute_force(terms, index, present):
    """e_0 + sum of present singletons + every present unordered pair, term by term."""
    S, P = terms.positions
    value = float(terms.intercept[index])
    singles = torch.cat([terms.first_a[index], terms.first_b[index]])
    value += sum(float(singles[i]) for i in present)
    for i, j in itertools.combinations(sorted(present), 2):
        if i < S <= j:
            value += float(terms.cross[index, i, j - S])
        elif j < S:
            value += float(terms.intra_a[index, i, j])
        else:
            value += float(terms.intra_b[index, i - S, j - S])
    return value


def test_predict_and_total_equal_the_term_by_term_sum():
    terms = random_terms()
    n = sum(terms.positions)
    coalitions = torch.tensor(list(itertools.product([False, True], repeat=n)))
    for index in range(2):
        expected = [brute_force(terms, index, [i for i in range(n) if row[i]]) for row in coalitions.tolist()]
        torch.testing.assert_close(terms.predict(coalitions, index), torch.tensor(expected, dtype=torch.float64))
        assert float(terms.total()[index]) == pytest.approx(brute_force(terms, index, list(range(n))))


def test_non_players_are_always_present():
    terms = random_terms(batch=1, intra=False)
    players_a = torch.tensor([[True, False, True]])
    terms.players_a = players_a
    coalitions = torch.zeros(1, 7, dtype=torch.bool)  # nobody asked for; position a1 is no player
    assert float(terms.predict(coalitions)[0]) == pytest.approx(brute_force(terms, 0, [1]))


def test_to_shapiq_round_trips_every_value():
    terms = random_terms()
    S, P = terms.positions
    for index in range(2):
        values = terms.to_shapiq(index)
        assert isinstance(values, shapiq.InteractionValues)
        assert values.n_players == S + P and values.min_order == 0 and values.max_order == 2
        assert values.baseline_value == pytest.approx(float(terms.intercept[index]))
        assert values[()] == pytest.approx(float(terms.intercept[index]))
        for s in range(S):
            assert values[(s,)] == pytest.approx(float(terms.first_a[index, s]))
            for p in range(P):
                assert values[(s, S + p)] == pytest.approx(float(terms.cross[index, s, p]))
            for t in range(s + 1, S):
                assert values[(s, t)] == pytest.approx(float(terms.intra_a[index, s, t]))
        for p in range(P):
            assert values[(S + p,)] == pytest.approx(float(terms.first_b[index, p]))
        # shapiq's own matrix of the second order is the cross and intra blocks
        second = torch.as_tensor(values.get_n_order_values(2))
        torch.testing.assert_close(second[:S, S:], terms.cross[index])
        torch.testing.assert_close(second[:S, :S], terms.intra_a[index])
        # and its sum over all interactions is the prediction of the grand coalition
        assert float(values.values.sum()) == pytest.approx(float(terms.total()[index]))


def test_indexing_shapes_and_errors():
    terms = random_terms(batch=3)
    one = terms[-1]
    assert one.batch_size == 1 and torch.equal(one.cross[0], terms.cross[2])
    with pytest.raises(IndexError, match="index: 3 is out of range"):
        terms[3]
    with pytest.raises(ValueError, match=r"first_a: expected shape \(1, 2\)"):
        InteractionTerms(torch.zeros(1), torch.zeros(1, 3), torch.zeros(1, 2), torch.zeros(1, 2, 2))
    with pytest.raises(TypeError, match="coalitions"):
        terms.predict(torch.ones(1, 7))


def test_first_order_values_are_fixlips_theorem_one():
    terms = random_terms(batch=1, positions=(2, 2))
    terms.settings["p"] = 0.3
    values_a, values_b = terms.first_order_values()
    expected = terms.first_a[0, 0] + 0.3 * (terms.cross[0, 0].sum() + terms.intra_a[0, 0].sum())
    assert float(values_a[0, 0]) == pytest.approx(float(expected))
    assert values_b.shape == (1, 2)


# ------------------------------------------------------------------ saving


def assert_same_terms(loaded, terms):
    """Every field equal, tensors bit for bit with their dtype, settings with their types."""
    for name in ("intercept", "first_a", "first_b", "cross", "intra_a", "intra_b", "players_a", "players_b",
                 "delta", "n_steps", "error", "image"):
        value, expected = getattr(loaded, name), getattr(terms, name)
        if expected is None:
            assert value is None, name
            continue
        assert value.dtype == expected.dtype and value.shape == expected.shape, name
        assert value.numpy().tobytes() == expected.numpy().tobytes(), name  # bit for bit, NaN included
    assert repr(loaded.settings) == repr(terms.settings)
    for name in ("method", "layers", "has_intercept", "has_first_order", "tokens", "grid"):
        assert getattr(loaded, name) == getattr(terms, name), name
        assert type(getattr(loaded, name)) is type(getattr(terms, name)), name


def test_saved_terms_load_back_exactly(tmp_path):
    terms = random_terms(batch=2, positions=(3, 5))
    terms.players_a = torch.tensor([[False, True, True], [True, True, False]])
    terms.delta, terms.error = torch.tensor([1e-7, float("nan")], dtype=torch.float64), torch.tensor([0.25, 1 / 3])
    terms.n_steps = torch.tensor([8, 64])
    terms.method, terms.layers = "BilinearIntegratedInteractions", ("text_model.embeddings", "vision_model.embeddings")
    terms.settings = {"n_steps": "auto", "tolerance": 0.1 + 0.2, "nodes_evaluated": [[4, 8], [16]],
                      "budget": (64, 128), "weights": torch.arange(3, dtype=torch.float16), "random_state": None,
                      "inf": float("-inf"), "nested": {"p": 0.5, "flag": True}}
    terms.tokens = [["[BOS]", "dog", "[EOS]"], ["[BOS]", "cat", "[EOS]"]]
    terms.grid = (2, 2)
    terms.image = torch.randint(0, 256, (2, 4, 6, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    terms.save(tmp_path / "terms")
    assert_same_terms(InteractionTerms.load(tmp_path / "terms"), terms)
    assert isinstance(InteractionTerms.load(str(tmp_path / "terms")).settings["budget"], tuple)


def test_a_methods_own_terms_load_back_exactly(tmp_path, clip, pixels):
    from conftest import caption, clip_layers

    from captum_bilinear import BilinearIntegratedInteractions

    terms = BilinearIntegratedInteractions(clip, clip_layers(clip)).attribute_terms(
        (caption(320, 1125), pixels), n_steps="auto", tolerance=1e-2)
    terms.save(tmp_path)
    assert_same_terms(InteractionTerms.load(tmp_path), terms)
    # the loaded terms are the method's result: the identity still holds on them
    loaded = InteractionTerms.load(tmp_path)
    torch.testing.assert_close(loaded.total(), terms.total(), rtol=0, atol=0)


def test_one_example_of_a_batch_keeps_its_labels_and_image():
    terms = random_terms(batch=2, positions=(2, 4), intra=False)
    terms.tokens, terms.grid = [["a", "b"], ["c", "d"]], (2, 2)
    terms.image = torch.zeros(2, 4, 4, 3, dtype=torch.uint8)
    terms.image[1] = 7
    second = terms[1]
    assert second.tokens == [["c", "d"]] and second.grid == (2, 2)
    assert second.image.shape == (1, 4, 4, 3) and int(second.image.max()) == 7


@pytest.mark.parametrize("field, value, message", [
    ("tokens", [["a", "b", "c"]], "tokens: expected 1 list"),
    ("grid", (3, 3), "grid: (3, 3) has 9 patches; side b has 4"),
    ("image", torch.zeros(1, 4, 4, 3), "image: expected a uint8 tensor"),
])
def test_labels_grid_and_image_must_fit_the_terms(field, value, message):
    terms = random_terms(batch=1, positions=(2, 4), intra=False)
    with pytest.raises(ValueError, match=re.escape(message)):
        InteractionTerms(terms.intercept, terms.first_a, terms.first_b, terms.cross, **{field: value})


def test_a_flat_label_list_is_one_examples_and_a_grid_may_have_a_cls():
    terms = random_terms(batch=1, positions=(2, 5), intra=False)
    labelled = InteractionTerms(terms.intercept, terms.first_a, terms.first_b, terms.cross, tokens=["x", "y"],
                                grid=[2, 2])
    assert labelled.tokens == [["x", "y"]] and labelled.grid == (2, 2)


def test_an_unknown_format_version_is_refused_by_name(tmp_path):
    random_terms(batch=1).save(tmp_path)
    metadata = json.loads((tmp_path / "terms.json").read_text())
    metadata["format_version"] = 2
    (tmp_path / "terms.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match=r"path: .* saved in format version 2; captum-bilinear .* reads version 1 "
                                         r"only \(it was written by a newer captum-bilinear: upgrade to read it\)"):
        InteractionTerms.load(tmp_path)


def test_what_is_not_saved_terms_is_refused_by_name(tmp_path):
    with pytest.raises(ValueError, match="path: no such directory"):
        InteractionTerms.load(tmp_path / "missing")
    with pytest.raises(ValueError, match="has no terms.json and no terms.safetensors"):
        InteractionTerms.load(tmp_path)
    random_terms(batch=1).save(tmp_path)
    (tmp_path / "terms.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ValueError, match="is not a saved InteractionTerms"):
        InteractionTerms.load(tmp_path)


def test_saved_terms_without_a_required_tensor_are_refused_by_name(tmp_path):
    from safetensors.torch import load_file, save_file

    random_terms(batch=1).save(tmp_path)
    tensors = load_file(str(tmp_path / "terms.safetensors"))
    del tensors["cross"]
    save_file(tensors, str(tmp_path / "terms.safetensors"))
    with pytest.raises(ValueError, match=r"path: .*terms.safetensors has no cross; expected what InteractionTerms.save"):
        InteractionTerms.load(tmp_path)


@pytest.mark.parametrize("field, value", [
    ("layers", 5), ("layers", ["a", "b", "c"]), ("method", None), ("settings", [1]), ("has_intercept", "no"),
    ("tokens", "dog"), ("grid", "22"), ("method", "__missing__"), ("settings", "__missing__"),
])
def test_a_tampered_terms_json_is_refused_by_name(tmp_path, field, value):
    """``"layers": 5`` gave "'int' object is not iterable", a missing key a KeyError, and
    ``"has_intercept": "no"`` was read as True."""
    random_terms(batch=1).save(tmp_path)
    metadata = json.loads((tmp_path / "terms.json").read_text())
    if value == "__missing__":
        del metadata[field]
    else:
        metadata[field] = value
    (tmp_path / "terms.json").write_text(json.dumps(metadata))
    with pytest.raises(ValueError, match=rf"path: .*terms.json: {field}: expected"):
        InteractionTerms.load(tmp_path)


@pytest.mark.parametrize("content", [b"", b"\x00" * 100, b"\xff" * 8 + b"{}"])
def test_a_damaged_terms_safetensors_is_refused_by_name(tmp_path, content):
    """A truncated or overwritten tensor file gave safetensors' own SafetensorError, naming no file."""
    random_terms(batch=1).save(tmp_path)
    (tmp_path / "terms.safetensors").write_bytes(content)
    with pytest.raises(ValueError, match=r"path: cannot read .*terms.safetensors"):
        InteractionTerms.load(tmp_path)


def test_settings_that_cannot_be_saved_are_named(tmp_path):
    terms = random_terms(batch=1)
    terms.settings = {"callback": print}
    with pytest.raises(TypeError, match=r"settings.callback: cannot save a builtin_function_or_method"):
        terms.save(tmp_path)
