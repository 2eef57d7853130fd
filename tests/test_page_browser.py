"""The interactive page in a real browser: Debian's headless Chromium driven by selenium,
the network switched off. The page ``captum-bilinear explain --out page.html`` writes for
a hand-drawn image must open without a console error, give the Python API's span maps,
draw a hovered token's row of ``A`` over the image, and colour the caption by a dragged
box as numpy's sums over the box's patches.

Chromium and its driver come from Debian (``make test`` installs them: ``apt-get install
chromium chromium-driver``); nothing is downloaded at test time. Without them the tests are
skipped, unless ``CAPTUM_BILINEAR_REQUIRE_BROWSER=1`` (set by ``make test``) makes that a
failure.
"""

import os
import shutil
import tempfile

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from captum_bilinear.selection import box_token_map, span_image_map, token_span

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
CAPTION = "a red circle above a blue square"
N_STEPS = 4
REQUIRED = os.environ.get("CAPTUM_BILINEAR_REQUIRE_BROWSER", "") not in ("", "0")


def _browser_or_skip():
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[test]')")
    if missing:
        message = f"browser tests need {', '.join(missing)} (as root: apt-get install -y chromium chromium-driver)"
        if REQUIRED:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="captum-bilinear-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1200,1000", "--force-device-scale-factor=1", f"--user-data-dir={profile}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
            "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1})
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def drawn_pair(tmp_path_factory):
    """A hand-drawn image (PIL shapes, not a generated scene), explained by the command
    line into a page and a saved explanation."""
    _browser_or_skip()
    from captum_bilinear.cli import main

    folder = tmp_path_factory.mktemp("page")
    image = Image.new("RGB", (64, 64), "white")
    pen = ImageDraw.Draw(image)
    pen.ellipse((6, 6, 28, 28), fill=(220, 30, 30))
    pen.rectangle((36, 36, 58, 58), fill=(30, 30, 220))
    image.save(folder / "drawn.png")
    page, saved = folder / "page.html", folder / "saved"
    code = main(["explain", "--image", str(folder / "drawn.png"), "--caption", CAPTION, "--out", str(page),
                 "--method", "bii", "--method", "icam", "--n-steps", str(N_STEPS), "--save", str(saved)])
    assert code == 0
    return folder, page, saved


def open_page(driver, path):
    driver.get_log("browser")  # what earlier pages logged
    driver.get(path.resolve().as_uri())
    driver.execute_script("return document.readyState")
    return driver.execute_script("return window.captumBilinear")


def console_errors(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def api(driver, expression, *arguments):
    return driver.execute_script(f"return window.captumBilinear.{expression}", *arguments)


def relative_error(actual, expected):
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    return float(np.abs(actual - expected).max() / max(np.abs(expected).max(), 1e-30))


def test_the_page_opens_offline_and_holds_every_method_and_token(browser, drawn_pair):
    from captum_bilinear.explain import Explanation

    _, page, saved = drawn_pair
    explanation = Explanation.load(saved)
    assert open_page(browser, page) is not None
    assert api(browser, "methods") == ["BilinearIntegratedInteractions", "InteractionCAM"]
    assert api(browser, "tokens") == explanation.tokens
    assert api(browser, "grid") == [8, 8]
    assert [int(e.get_attribute("data-token")) for e in browser.find_elements("css selector", "[data-token]")] == \
        list(range(len(explanation.tokens)))
    # nothing was fetched (the image is a data URI, drawn from memory) and nothing failed
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert console_errors(browser) == []


def test_span_maps_equal_the_python_apis(browser, drawn_pair):
    """The page's spanMap against BilinearIntegratedInteractions run again from Python on
    the same pair (the model's own tokenizer and processor, not the command's pipeline)."""
    from captum_bilinear import BilinearIntegratedInteractions
    from captum_bilinear.loading import load_model

    folder, page, _ = drawn_pair
    loaded = load_model()
    encoded = loaded.tokenizer(CAPTION, return_tensors="pt")
    pixels = loaded.image_processor(images=Image.open(folder / "drawn.png").convert("RGB"),
                                    return_tensors="pt")["pixel_values"]
    layers = (loaded.model.text_model.embeddings, loaded.model.vision_model.embeddings)
    A = BilinearIntegratedInteractions(loaded.model, layers).attribute(
        (encoded["input_ids"], pixels), additional_forward_args=((encoded["attention_mask"],), None),
        n_steps=N_STEPS)[0]
    open_page(browser, page)
    for words in ("red circle", "blue square", "above"):
        start, stop = token_span(loaded.tokenizer, CAPTION, words)
        expected = span_image_map(A, (start, stop), (8, 8)).flatten()
        shown = api(browser, "spanMap(arguments[0], arguments[1], arguments[2])",
                    "BilinearIntegratedInteractions", start, stop)
        assert relative_error(shown, expected) < 1e-3, words
    assert console_errors(browser) == []


def canvas_pixel(driver, x, y):
    return driver.execute_script(
        "var c = window.captumBilinear.element.querySelector('canvas.cb-canvas');"
        "return Array.from(c.getContext('2d').getImageData(arguments[0], arguments[1], 1, 1).data);", x, y)


def test_hovering_a_token_draws_its_row_of_A(browser, drawn_pair):
    from selenium.webdriver.common.action_chains import ActionChains

    from captum_bilinear.explain import Explanation

    _, page, saved = drawn_pair
    explanation = Explanation.load(saved)
    A = explanation.terms[0].cross[0].double().numpy()
    open_page(browser, page)
    api(browser, "show({span: null, box: null})")
    canvas = browser.find_element("css selector", "canvas.cb-canvas")
    before = browser.execute_script("return arguments[0].toDataURL()", canvas)
    height, width = api(browser, "imageSize")
    k = explanation.tokens.index("square")
    ActionChains(browser).move_to_element(browser.find_element("css selector", f'[data-token="{k}"]')).perform()
    state = api(browser, "state()")
    assert state["span"] == [k, k + 1]
    np.testing.assert_allclose(state["shown"], A[k, 1:], rtol=1e-6, atol=1e-9)
    assert browser.execute_script("return arguments[0].toDataURL()", canvas) != before  # the drawing changed
    # the colour drawn over the strongest patch: the image blended with the colour map's colour
    patch = int(np.abs(A[k, 1:]).argmax())
    row, column = divmod(patch, 8)
    x, y = int((column + 0.5) * width / 8), int((row + 0.5) * height / 8)
    scale, opacity = state["scale"], state["opacity"]
    t = float(np.clip(A[k, 1 + patch] / scale, -1, 1))
    from matplotlib import pyplot as plt

    from captum_bilinear.visualization import CMAP

    colour = np.rint(np.asarray(plt.get_cmap(CMAP)(round((t + 1) / 2 * 255) / 255)[:3]) * 255)
    underneath = explanation.image[int(y * 64 / height), int(x * 64 / width)].astype(float)
    alpha = opacity * abs(t)
    expected = underneath * (1 - alpha) + colour * alpha
    np.testing.assert_allclose(canvas_pixel(browser, x, y)[:3], expected, atol=2.5)
    # the value under the pointer, as the page writes it
    ActionChains(browser).move_to_element_with_offset(canvas, x - width // 2, y - height // 2).perform()
    readout = browser.find_element("css selector", ".cb-readout")
    assert int(readout.get_attribute("data-patch")) == patch
    assert float(readout.get_attribute("data-value")) == pytest.approx(A[k, 1 + patch], rel=1e-6)
    assert console_errors(browser) == []


def test_a_dragged_box_colours_the_caption_by_its_patches(browser, drawn_pair):
    from selenium.webdriver.common.action_chains import ActionChains

    from captum_bilinear.explain import Explanation

    _, page, saved = drawn_pair
    explanation = Explanation.load(saved)
    open_page(browser, page)
    api(browser, "show({span: null, box: null, method: 'InteractionCAM'})")
    A = explanation.terms[1].cross[0].double().numpy()
    height, width = api(browser, "imageSize")
    cell = width // 8
    canvas = browser.find_element("css selector", "canvas.cb-canvas")
    # from the corner of patch (row 4, column 4) to that of patch (row 7, column 6): patches rows 4-6, columns 4-5
    start, end = (4 * cell + 1, 4 * cell + 1), (6 * cell - 1, 7 * cell - 1)
    (ActionChains(browser).move_to_element_with_offset(canvas, start[0] - width // 2, start[1] - height // 2)
     .click_and_hold().move_to_element_with_offset(canvas, end[0] - width // 2, end[1] - height // 2)
     .release().perform())
    state = api(browser, "state()")
    assert state["box"] == pytest.approx([*start, *end], abs=1)
    patches = [1 + r * 8 + c for r in range(4, 7) for c in range(4, 6)]
    expected = A[:, patches].sum(-1)
    tokens = browser.find_elements("css selector", "[data-token]")
    written = [float(node.get_attribute("data-value")) for node in tokens]
    np.testing.assert_allclose(written, expected, rtol=1e-6, atol=1e-9)
    # and the numbers drawn under the tokens, as written
    drawn = [node.find_element("css selector", ".cb-value").text for node in tokens]
    assert all(text.startswith(("+", "-")) for text in drawn)
    # boxMap for a box that cuts patches: weights by their share inside, as the figure computes them
    box = [10.5, 20.0, 200.25, 333.0]
    page_values = api(browser, "boxMap(arguments[0], arguments[1], arguments[2], arguments[3], arguments[4])",
                      "InteractionCAM", *box)
    python_values = box_token_map(torch.as_tensor(A), box, (height, width), (8, 8)).numpy()
    np.testing.assert_allclose(page_values, python_values, rtol=1e-9, atol=1e-12)
    assert console_errors(browser) == []


def test_two_explorers_share_a_page_under_their_own_ids(browser, tmp_path):
    _browser_or_skip()
    from captum_bilinear.page import interaction_explorer

    picture = np.zeros((16, 16, 3), dtype=np.uint8)
    first = interaction_explorer(torch.arange(20.0).reshape(4, 5), picture, ["[BOS]", "a", "b", "[EOS]"],
                                 method="first")
    second = interaction_explorer(-torch.arange(20.0).reshape(4, 5), picture, ["[BOS]", "c", "d", "[EOS]"],
                                  method="second")
    page = tmp_path / "two.html"
    page.write_text("<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>"
                    f"{first.fragment()}<p>between</p>{second.fragment()}</body></html>", encoding="utf-8")
    open_page(browser, page)
    explorers = browser.execute_script("return Object.keys(window.captumBilinearExplorers)")
    assert explorers == [first.id, second.id]
    assert browser.execute_script("return window.captumBilinear.id") == first.id
    values = browser.execute_script(f"return window.captumBilinearExplorers['{second.id}'].spanMap('second', 1, 3)")
    assert values == [-(6 + 11), -(7 + 12), -(8 + 13), -(9 + 14)]
    assert len(browser.find_elements("css selector", "[data-token]")) == 8
    assert console_errors(browser) == []


def test_the_address_opens_a_method_span_and_box(browser, tmp_path):
    """As the evaluation report's links open a pair's page: #method=...&span=...&box=... (box
    in the model image's pixels)."""
    _browser_or_skip()
    from captum_bilinear.page import interaction_explorer

    from captum_bilinear import InteractionTerms

    A = torch.arange(20.0).reshape(4, 5)
    zeros = torch.zeros
    explorer = interaction_explorer(
        [InteractionTerms(zeros(1), zeros(1, 4), zeros(1, 5), sign * A[None], method=name)
         for sign, name in ((1, "first"), (-1, "second"))],
        np.zeros((16, 16, 3), np.uint8), ["[BOS]", "a", "b", "[EOS]"])
    page = tmp_path / "pair.html"
    explorer.save(page)
    browser.get(page.resolve().as_uri() + "#method=second&span=1,3&box=0,0,8,16")
    state = api(browser, "state()")
    scale = api(browser, "imageSize")[0] / 16
    assert state["method"] == "second" and state["pinned"] == [1, 3] and state["span"] == [1, 3]
    assert state["box"] == [0, 0, 8 * scale, 16 * scale]
    np.testing.assert_allclose(state["shown"], -(A[1, 1:] + A[2, 1:]).numpy())
    np.testing.assert_allclose(state["caption"], -(A[:, 1] + A[:, 3]).numpy())  # the left column of patches
    assert console_errors(browser) == []
