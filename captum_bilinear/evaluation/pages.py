"""The evaluation as pages: each pair's terms kept (``--keep-terms``), each pair's
interactive explorer (:mod:`captum_bilinear.page`) and ``report.html`` beside
``report.md``, whose failure gallery and per-object rows open that pair's explorer with
the object's words and box selected.

Layout under the run's directory::

    terms/<pair>/<method>/          InteractionTerms.save of every method of the pair
    terms/<pair>/pair.json          the example's id and caption
    pages/<pair>.html               the pair's explorer (every interaction method kept,
                                    LayerIntegratedGradients' image map as the first-order view)
    report.html
"""

import hashlib
import html
import json
import os
import re
from dataclasses import replace
from typing import Any, Dict, List, Optional, Sequence
from urllib.parse import quote

import numpy as np
import torch

from captum_bilinear.terms import InteractionTerms

TERMS, PAGES = "terms", "pages"
#: At most this many failure cases are listed (as the gallery draws them).
GALLERY_CASES = 12
#: Below this PGE an object is a failure case (as the gallery).
FAILURE_PGE = 0.2


def pair_name(example_id: str) -> str:
    """A file name for an example id (ids may hold ``/``): its safe characters and a hash.

    Example:
        >>> pair_name("scene-00001")
        'scene-00001'
        >>> pair_name("val2017/0001.jpg#2")[:17]
        'val2017_0001.jpg_'
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", str(example_id))
    if safe == str(example_id):
        return safe
    return f"{safe}-{hashlib.sha1(str(example_id).encode('utf-8')).hexdigest()[:8]}"


def keep_pair_terms(out: str, example_id: str, caption: str, method: Any, terms: InteractionTerms,
                    tokens: Sequence[str], grid: Sequence[int], display: Any) -> None:
    """Saves one method's terms of one pair (named as the evaluation names the method: the
    ITSM variants share a class), with its token labels, grid and image."""
    folder = os.path.join(out, TERMS, pair_name(example_id))
    image = torch.tensor(np.asarray(display, dtype=np.uint8))[None]  # a copy: the display may be read-only
    labelled = replace(terms, method=method.name, tokens=[list(tokens)], grid=(int(grid[0]), int(grid[1])), image=image)
    labelled.save(os.path.join(folder, method.short))
    with open(os.path.join(folder, "pair.json"), "w", encoding="utf-8") as handle:
        json.dump({"example_id": example_id, "caption": caption}, handle)


def _kept(out: str, example_id: str, methods: Sequence[Any]) -> List[Any]:
    folder = os.path.join(out, TERMS, pair_name(example_id))
    return [(method, InteractionTerms.load(os.path.join(folder, method.short))) for method in methods
            if os.path.isdir(os.path.join(folder, method.short))]


def write_pair_pages(out: str, methods: Sequence[Any], objects: Sequence[Dict[str, Any]]) -> Dict[str, str]:
    """The explorer of every pair whose terms were kept: ``example_id -> pages/<pair>.html``.

    Args:
        out: the run's directory.
        methods: the run's :class:`~captum_bilinear.evaluation.methods.EvaluationMethod` s.
        objects: the object records (their spans set each method's colour scale).
    """
    from captum_bilinear.page import interaction_explorer
    from captum_bilinear.selection import patch_grid

    if not os.path.isdir(os.path.join(out, TERMS)):
        return {}
    interaction = [m for m in methods if m.order == 2]
    first_order = [m for m in methods if m.name == "LayerIntegratedGradients"]
    spans: Dict[str, List[Any]] = {}
    for record in objects:
        spans.setdefault(record["example_id"], []).append(tuple(record["span"]))
    pages: Dict[str, str] = {}
    os.makedirs(os.path.join(out, PAGES), exist_ok=True)
    example_ids = sorted({record["example_id"] for record in objects} | set(_pair_ids(out)))
    for example_id in example_ids:
        kept = _kept(out, example_id, interaction)
        if not kept:
            continue
        runs = [terms for _, terms in kept]
        with open(os.path.join(out, TERMS, pair_name(example_id), "pair.json"), encoding="utf-8") as handle:
            caption = json.load(handle)["caption"]
        first = None
        lig = _kept(out, example_id, first_order)
        if lig:
            terms = lig[0][1]
            first = patch_grid(terms.first_b[0], runs[0].grid, terms.first_b.shape[1] == runs[0].grid[0] * runs[0].grid[1] + 1)
        explorer = interaction_explorer(
            runs, first_order_map=first, first_order_title="LayerIntegratedGradients (image side)",
            spans=sorted(set(spans.get(example_id, []))), title=f"{example_id}: \"{caption}\"",
        )
        relative = f"{PAGES}/{pair_name(example_id)}.html"
        explorer.save(os.path.join(out, relative))
        pages[example_id] = relative
    return pages


def _pair_ids(out: str) -> List[str]:
    ids = []
    root = os.path.join(out, TERMS)
    for name in sorted(os.listdir(root)):
        path = os.path.join(root, name, "pair.json")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                ids.append(json.load(handle)["example_id"])
    return ids


def explorer_link(page: str, method: str, span: Sequence[int], box: Sequence[float]) -> str:
    """A link that opens ``page`` with ``method``, the span and the box (model pixels) shown.

    Example:
        >>> explorer_link("pages/a.html", "ITSM-H", (2, 4), (0, 8, 16.5, 24))
        'pages/a.html#method=ITSM-H&span=2,4&box=0,8,16.5,24'
    """
    numbers = ",".join(f"{float(v):g}" for v in box)
    return f"{page}#method={quote(method)}&span={span[0]},{span[1]}&box={numbers}"


def main_method(interaction_methods: Sequence[str]) -> Optional[str]:
    """The method the gallery shows: BII, else the first interaction method."""
    if not interaction_methods:
        return None
    return ("BilinearIntegratedInteractions" if "BilinearIntegratedInteractions" in interaction_methods
            else interaction_methods[0])


def failure_cases(objects: Sequence[Dict[str, Any]], interaction_methods: Sequence[str]) -> List[Dict[str, Any]]:
    """The failure gallery's cases, in its order: the main method's objects with PGE below
    :data:`FAILURE_PGE` (their records hold the span's map)."""
    method = main_method(interaction_methods)
    return [r for r in objects if r["method"] == method and "image_map" in r][:GALLERY_CASES]


def _cell(value: Any) -> str:
    from captum_bilinear.evaluation.report import _cell as markdown_cell

    return html.escape(markdown_cell(value))


def _table(results: Dict[str, Any], columns: Any) -> str:
    header = "".join(f"<th>{html.escape(title)} ({better})</th>" for _, title, better in columns)
    rows = "".join(f"<tr><th>{html.escape(name)}</th>" + "".join(f"<td>{_cell(values.get(key))}</td>"
                                                                for key, _, _ in columns) + "</tr>"
                   for name, values in results["methods"].items())
    return f"<table><thead><tr><th>method</th>{header}</tr></thead><tbody>{rows}</tbody></table>"


STYLE = """body { font-family: system-ui, sans-serif; max-width: 72em; margin: 1em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; } th:first-child { text-align: left; }
td.words { text-align: left; } img { max-width: 100%; } .note { color: #555; font-size: 13px; }"""


def write_report_html(results: Dict[str, Any], out: str, objects: Sequence[Dict[str, Any]], methods: Sequence[Any],
                      gallery: Optional[str], pages: Dict[str, str]) -> str:
    """Writes ``report.html`` beside ``report.md``: the tables and plots, the failure
    gallery's cases and one row per named object, each opening its pair's explorer where
    the run kept the pair's terms. Returns its path."""
    from captum_bilinear.evaluation.report import ANALYSIS_COLUMNS, COLUMNS

    interaction = [m.name for m in methods if m.order == 2]
    parts = [f"<h1>Evaluation on {html.escape(str(results['dataset']['name']))}</h1>",
             f"<p>{results['dataset']['examples']} pairs, {results['dataset']['objects']} named objects; "
             f"{html.escape(str(results['model']['name']))}, layer {html.escape(str(results['model']['layer']))}. "
             "The same run as <a href=\"report.md\">report.md</a>.</p>",
             _table(results, COLUMNS), _table(results, ANALYSIS_COLUMNS)]
    for image, alt in (("completeness.png", "completeness error"), ("curves.png", "insertion and deletion curves"),
                       ("pge.png", "pointing-game energy")):
        if os.path.isfile(os.path.join(out, image)):
            parts.append(f'<p><img src="{image}" alt="{alt}"></p>')
    if not pages:
        parts.append("<p class=\"note\">This run kept no pair's terms: run <code>captum-bilinear evaluate ... "
                     "--keep-terms</code> to open each pair's interactive explorer from the rows below.</p>")

    def link(record: Dict[str, Any], method: str, text: str) -> str:
        page = pages.get(record["example_id"])
        if page is None:
            return html.escape(text)
        return f'<a href="{html.escape(explorer_link(page, method, record["span"], record["box"]))}">{html.escape(text)}</a>'

    cases = failure_cases(objects, interaction)
    if cases:
        method = cases[0]["method"]
        parts.append(f"<h2>Failure gallery: {html.escape(method)}, PGE &lt; {FAILURE_PGE}</h2>")
        if gallery:
            parts.append(f'<p><img src="{html.escape(gallery)}" alt="failure cases"></p>')
        rows = "".join(f"<tr><td>{number}</td><td class=\"words\">{link(r, method, r['phrase'])}</td>"
                       f"<td class=\"words\">{html.escape(r['example_id'])}</td><td>{_cell(r['PGE'])}</td></tr>"
                       for number, r in enumerate(cases, 1))
        parts.append("<table><thead><tr><th>case</th><th>words (opens the explorer)</th><th>pair</th><th>PGE</th>"
                     f"</tr></thead><tbody>{rows}</tbody></table>")
    by_object: Dict[Any, Dict[str, Any]] = {}
    for record in objects:
        if record["method"] in interaction:
            entry = by_object.setdefault((record["example_id"], record["object"]), {"record": record, "PGE": {}})
            entry["PGE"][record["method"]] = record["PGE"]
    shown = main_method(interaction)  # None only without interaction methods, when by_object is empty
    if by_object and shown is not None:
        parts.append("<h2>Per object</h2><p class=\"note\">PGE of each interaction method; the words open the "
                     "pair's explorer with them and the object's box selected.</p>")
        header = "".join(f"<th>{html.escape(name)}</th>" for name in interaction)
        object_rows = []
        for (example_id, _), entry in by_object.items():
            record = entry["record"]
            cells = "".join(f"<td>{_cell(entry['PGE'].get(name))}</td>" for name in interaction)
            object_rows.append(f"<tr><td class=\"words\">{html.escape(example_id)}</td>"
                        f"<td class=\"words\">{link(record, shown, record['phrase'])}</td>"
                        f"<td class=\"words\">{html.escape(str(record.get('category', '')))}</td>{cells}</tr>")
        parts.append(f"<table><thead><tr><th>pair</th><th>words</th><th>category</th>{header}</tr></thead>"
                     f"<tbody>{''.join(object_rows)}</tbody></table>")
    page = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Evaluation report</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n")
    path = os.path.join(out, "report.html")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(page)
    return path
