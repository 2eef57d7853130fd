"""The interactive page as a file: self-contained (nothing it names lies outside it), the
full matrices in it decode to the terms' numbers, the size bound of a CLIP B/16 pair, and
bad input named. What the page does in a browser: tests/test_page_browser.py."""

import base64
import html.parser
import json
import re

import numpy as np
import pytest
import torch

from captum_bilinear import InteractionTerms
from captum_bilinear.page import interaction_explorer
from captum_bilinear.visualization import interaction_explorer as reexported

TOKENS = ["[BOS]", "a", "red", "dot", "[EOS]"]


def terms_of(method, seed=0, shape=(5, 17)):
    generator = torch.Generator().manual_seed(seed)
    cross = torch.randn(1, *shape, generator=generator)
    zeros = cross.new_zeros
    return InteractionTerms(zeros(1), zeros(1, shape[0]), zeros(1, shape[1]), cross, method=method)


def picture(size=32, seed=0):
    return (np.random.RandomState(seed).rand(size, size, 3) * 255).astype(np.uint8)


class References(html.parser.HTMLParser):
    """Every attribute value that can make a browser fetch something, and every inline script."""

    FETCHING = {"src", "href", "srcset", "action", "formaction", "poster", "data", "xlink:href", "background",
                "manifest", "ping", "codebase", "cite", "longdesc", "usemap"}

    def __init__(self):
        super().__init__()
        self.references, self.scripts, self.styles, self._in = [], [], [], None

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name.lower() in self.FETCHING:
                self.references.append((tag, name, value))
            if name.lower() == "style" and value:
                self.styles.append(value)
        if tag in ("script", "style"):
            self._in = tag

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "script":
            self.scripts.append(data)
        elif self._in == "style":
            self.styles.append(data)


def parsed(page):
    parser = References()
    parser.feed(page)
    return parser


def embedded_data(page):
    match = re.search(r'<script type="application/json" id="([^"]+)-data">(.*?)</script>', page, re.S)
    return match.group(1), json.loads(match.group(2))


def test_no_src_or_href_leaves_the_file():
    page = interaction_explorer([terms_of("BilinearIntegratedInteractions"), terms_of("InteractionCAM", 1)],
                                picture(), TOKENS, first_order_map=torch.randn(4, 4), box=(0, 0, 16, 16)).html()
    found = parsed(page)
    assert found.references == []  # the image is drawn from the data (a data URI), not named by an element
    for style in found.styles:
        assert "url(" not in style and "@import" not in style
    script = "\n".join(found.scripts)
    for word in ("fetch(", "XMLHttpRequest", "import(", "importScripts", "WebSocket", "EventSource", "Worker(",
                 "sendBeacon", "http:", "https:"):
        assert word not in script, word
    assert not re.search(r"(?i)\b(https?:|ftp:)?//[a-z0-9.-]+\.[a-z]{2,}", page)  # no address at all
    _, data = embedded_data(page)
    assert data["image"].startswith("data:image/")
    # and the page forbids itself any fetch
    assert "default-src 'none'; img-src data:" in page


def test_the_page_holds_every_tokens_row_exactly_as_float32():
    bii, icam = terms_of("BilinearIntegratedInteractions"), terms_of("InteractionCAM", 1)
    first = torch.randn(4, 4, generator=torch.Generator().manual_seed(2))
    _, data = embedded_data(interaction_explorer([bii, icam], picture(), TOKENS, first_order_map=first).html())
    assert [m["name"] for m in data["methods"]] == ["BilinearIntegratedInteractions", "InteractionCAM"]
    for method, terms in zip(data["methods"], (bii, icam)):
        decoded = np.frombuffer(base64.b64decode(method["data"]), dtype="<f4").reshape(5, 17)
        np.testing.assert_array_equal(decoded, terms.cross[0].numpy())
        assert method["units"] == "similarity"
    np.testing.assert_array_equal(np.frombuffer(base64.b64decode(data["firstOrder"]["data"]), dtype="<f4"),
                                  first.flatten().numpy())
    assert data["tokens"] == TOKENS and data["special"] == [0, 4] and data["grid"] == [4, 4] and data["hasCls"]


def test_each_method_has_its_own_colour_scale_without_the_special_rows():
    bii = terms_of("BilinearIntegratedInteractions")
    itsm = terms_of("ITSM-H", 1)
    itsm.cross *= 100
    bii.cross[0, 4] = 1e6  # [EOS]: off the colour scale
    _, data = embedded_data(interaction_explorer([bii, itsm], picture(), TOKENS).html())
    scales = {m["name"]: m["scale"] for m in data["methods"]}
    expected = np.percentile(np.abs(bii.cross[0, 1:4, 1:].numpy()), 98)
    assert scales["BilinearIntegratedInteractions"] == pytest.approx(expected, rel=1e-6)
    assert scales["ITSM-H"] == pytest.approx(100 * np.percentile(np.abs(itsm.cross[0, 1:4, 1:].numpy()) / 100, 98),
                                             rel=1e-5)
    assert {m["name"]: m["units"] for m in data["methods"]}["ITSM-H"] == "cosine of token and patch embeddings"


def test_a_b16_pair_of_every_method_stays_under_two_megabytes():
    """77 tokens x (CLS + 24 x 24 patches) of six methods and a 384 x 384 photograph-like image."""
    methods = ["BilinearIntegratedInteractions", "InteractionCAM", "InteractionLIME", "ITSM-H", "ITSM-O",
               "WeightedBanzhafInteractions"]
    runs = [terms_of(name, seed, (77, 577)) for seed, name in enumerate(methods)]
    rows, cols = np.mgrid[0:384, 0:384]
    photo = np.stack([rows / 3, cols / 3, (rows + cols) / 6], -1) + np.random.RandomState(0).normal(0, 12, (384, 384, 3))
    tokens = ["[BOS]"] + [f"w{i}" for i in range(75)] + ["[EOS]"]
    page = interaction_explorer(runs, np.clip(photo, 0, 255).astype(np.uint8), tokens,
                                first_order_map=torch.randn(24, 24)).html()
    assert len(page.encode("utf-8")) <= 2_000_000


def test_the_box_is_given_in_model_pixels_and_shown_in_display_pixels():
    explorer = interaction_explorer(terms_of("BilinearIntegratedInteractions"), picture(32), TOKENS,
                                    box=(8, 0, 16, 8), spans=[(2, 4)])
    scale = explorer.data["display"][0] // 32
    assert explorer.data["display"] == [32 * scale] * 2 and explorer.data["modelImageSize"] == [32, 32]
    assert explorer.data["initial"] == {"span": [2, 4], "box": [8.0 * scale, 0.0, 16.0 * scale, 8.0 * scale]}


def test_terms_bring_their_tokens_grid_and_image():
    terms = terms_of("BilinearIntegratedInteractions", shape=(5, 16))
    terms.tokens, terms.grid = [TOKENS], (4, 4)
    terms.image = torch.from_numpy(picture(8))[None]
    explorer = reexported(terms)
    assert explorer.data["tokens"] == TOKENS and explorer.data["grid"] == [4, 4] and not explorer.data["hasCls"]


def test_explorers_have_their_own_ids_and_notebooks_show_the_fragment():
    first = interaction_explorer(torch.ones(5, 17), picture(), TOKENS)
    second = interaction_explorer(torch.ones(5, 17), picture(), TOKENS)
    assert first.id != second.id
    fragment = first._repr_html_()
    assert not fragment.lstrip().startswith("<!DOCTYPE") and f'id="{first.id}"' in fragment
    assert f"mount({json.dumps(first.id)})" in fragment


def test_data_cannot_end_its_script_element():
    page = interaction_explorer(torch.ones(3, 5), picture(8), ["[BOS]", "</script><b>x", "[EOS]"]).html()
    _, data = embedded_data(page)
    assert data["tokens"][1] == "</script><b>x"


@pytest.mark.parametrize("arguments, message", [
    (dict(tokens=["a"]), "tokens: expected 5 labels"),
    (dict(terms=[terms_of("X"), terms_of("X", 1)]), "terms: two results have the same method name"),
    (dict(terms=[terms_of("X"), terms_of("Y", 1, (5, 10))]), "terms: every method must explain the same pair"),
    (dict(first_order_map=torch.ones(3, 3)), "first_order_map: expected 4 x 4 values"),
    (dict(tokens=None), "tokens: the terms carry no token labels"),
    (dict(image=None), "image: the terms carry no image"),
    (dict(terms="A"), "terms: expected InteractionTerms"),
])
def test_bad_input_is_named(arguments, message):
    call = dict(terms=terms_of("X"), image=picture(), tokens=TOKENS)
    call.update(arguments)
    with pytest.raises((ValueError, TypeError), match=re.escape(message)):
        interaction_explorer(call.pop("terms"), **call)


def test_a_caption_with_an_html_comment_opener_keeps_the_data_valid_json():
    """``"<!--"`` was written as ``"<\\!--"``, an escape JSON does not have: the page's
    ``JSON.parse`` failed and the explorer never showed (a caption "a <!-- b" is enough)."""
    page = interaction_explorer(torch.ones(3, 5), picture(8), ["[BOS]", "<!--x-->", "[EOS]"]).html()
    source = re.search(r'<script type="application/json" id="[^"]*-data">(.*?)</script>', page, re.S).group(1)
    assert "<!--" not in source
    assert json.loads(source)["tokens"][1] == "<!--x-->"  # strict JSON, as the browser's JSON.parse
