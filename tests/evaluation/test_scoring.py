"""The evaluation's scoring against metrics computed here from the model: the game's
values, the explanation's prediction on the game's players, the first-order maps, the
hard negatives' δS."""

import pytest
import torch
from scipy.stats import spearmanr

from captum_bilinear.datasets import demo_dataset, prepare_example
from captum_bilinear.evaluation.bundle import load_bundle
from captum_bilinear.evaluation.run import pair_inputs
from captum_bilinear.evaluation.scoring import ExampleScorer, Geometry, image_map
from captum_bilinear.terms import InteractionTerms


@pytest.fixture(scope="module")
def scorer_setup():
    bundle = load_bundle()
    example = demo_dataset(3, seed=2)[2]
    prepared = prepare_example(example, bundle.tokenizer, bundle.image_processor, bundle.patch_size)
    pair = pair_inputs(bundle, prepared.input_ids, prepared.attention_mask, prepared.pixel_values,
                       prepared.text_players)
    geometry = Geometry(prepared.image_size, bundle.grid, bundle.has_cls)
    scorer = ExampleScorer(bundle.dual, prepared.input_ids, prepared.pixel_values, pair.image_reference,
                           prepared.text_players, bundle.pad_token_id, geometry, seed=7, n_coalitions=32)
    return bundle, prepared, pair, scorer


def _masked_similarity(bundle, prepared, pair, coalition):
    """ν(M) built by hand: absent caption players -> pad id, absent patches -> the reference's pixels."""
    players = prepared.text_players.tolist()
    ids = prepared.input_ids.clone()
    for k, position in enumerate(players):
        if not coalition[k]:
            ids[0, position] = bundle.pad_token_id
    pixels = prepared.pixel_values.clone()
    patch = bundle.patch_size
    for k in range(bundle.grid[0] * bundle.grid[1]):
        if not coalition[len(players) + k]:
            row, column = divmod(k, bundle.grid[1])
            region = (slice(None), slice(None), slice(row * patch, (row + 1) * patch),
                      slice(column * patch, (column + 1) * patch))
            pixels[region] = pair.image_reference[region]
    with torch.no_grad():
        return float(bundle.dual(ids, pixels))


def test_game_values_are_the_masked_similarity(scorer_setup):
    bundle, prepared, pair, scorer = scorer_setup
    for row in (0, 5, 17):
        expected = _masked_similarity(bundle, prepared, pair, scorer.sample.coalitions[row].tolist())
        assert float(scorer.sample.values[row]) == pytest.approx(expected, abs=1e-6)


def test_prediction_sums_the_present_terms(scorer_setup):
    """Positions that are no player of the game (BOS, EOS, CLS) are always present."""
    bundle, prepared, pair, scorer = scorer_setup
    positions_a, positions_b = scorer.positions
    generator = torch.Generator().manual_seed(0)
    terms = InteractionTerms(torch.tensor([0.3]), torch.randn(1, positions_a, generator=generator),
                             torch.randn(1, positions_b, generator=generator),
                             torch.randn(1, positions_a, positions_b, generator=generator))
    players = prepared.text_players.tolist()
    patches = list(range(1, positions_b))
    expected = []
    for coalition in scorer.sample.coalitions.tolist():
        present_a = [p for p in range(positions_a) if p not in players or coalition[players.index(p)]]
        present_b = [0] + [p for k, p in enumerate(patches) if coalition[len(players) + k]]
        value = float(terms.intercept[0]) + sum(float(terms.first_a[0, p]) for p in present_a)
        value += sum(float(terms.first_b[0, p]) for p in present_b)
        value += sum(float(terms.cross[0, a, b]) for a in present_a for b in present_b)
        expected.append(value)
    prediction = scorer.sample.predictions(terms)
    assert prediction.tolist() == pytest.approx(expected, abs=1e-6)
    record = scorer.faithfulness_record(terms)
    assert record["p_faithfulness"] == pytest.approx(spearmanr(scorer.sample.values.numpy(), prediction.numpy())[0],
                                                     abs=1e-12)
    # without an intercept, the game's empty value takes its place
    no_intercept = InteractionTerms(terms.intercept, terms.first_a, terms.first_b, terms.cross, has_intercept=False)
    shifted = scorer.sample.predictions(no_intercept)
    assert (shifted - prediction).tolist() == pytest.approx(
        [scorer.sample.empty_value - float(terms.intercept[0])] * len(expected), abs=1e-9)


def test_first_order_maps_are_the_values(scorer_setup):
    bundle, _, _, scorer = scorer_setup
    positions_a, positions_b = scorer.positions
    values = torch.arange(positions_b, dtype=torch.float32)
    terms = InteractionTerms(torch.zeros(1), torch.zeros(1, positions_a), values[None],
                             torch.zeros(1, positions_a, positions_b))
    grid = image_map(terms, 1, (1, 2), scorer.geometry)
    assert grid[0, 0] == 1 and grid[-1, -1] == positions_b - 1 and grid.shape == bundle.grid
