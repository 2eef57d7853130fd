"""Sphinx configuration of the captum-bilinear documentation.

Build (warnings are errors):

    .venv/bin/python -m sphinx -W --keep-going -b html docs docs/_build/html

The tutorials are the executed notebooks in ``tutorials/``, each paired with its
jupytext percent-format source ``tutorials/NN_name.py`` (``make tutorials``, i.e.
``python tutorials/notebooks.py``, executes the sources into them); they are copied
into ``docs/tutorials/`` at every build and rendered without executing. The
evaluation page includes ``docs/evaluation/report.md`` when an evaluation run has
been written there (``captum-bilinear evaluate --out docs/evaluation``).
"""

import glob
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import captum_bilinear  # noqa: E402

# -- project -------------------------------------------------------------------------

project = "captum-bilinear"
author = "captum-bilinear developers"
copyright = "2025, captum-bilinear developers"
version = release = captum_bilinear.__version__

# -- extensions ----------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    # MathJax from the docs' own _static/mathjax (a copy the package ships), not a CDN:
    # the formulas render offline
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
    "myst_parser",
    "nbsphinx",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "**.ipynb_checkpoints",
    # Evaluation runs write markdown next to their plots; the evaluation page includes
    # report.md, so no file there is a page of its own.
    "evaluation/*.md",
    "_evaluation_body.md",
    # the embedded explorer is an HTML fragment the explorer page includes
    "explorer/*",
]
templates_path = []

# autodoc + napoleon: Google-style docstrings (Args / Returns / Example).
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autoclass_content = "class"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# Attributes sections as :ivar: fields, not as attribute directives that would clash
# with the attributes autodoc finds on dataclasses.
napoleon_use_ivar = True
napoleon_use_rtype = False

# MyST (markdown pages and the included evaluation report).
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

# nbsphinx: the notebooks are committed with their outputs. No require.js from a CDN (it
# serves only Jupyter widgets, which the tutorials do not have): the pages load nothing
# from the network (docs/check_offline.py checks the build).
nbsphinx_execute = "never"
nbsphinx_requirejs_path = ""
nbsphinx_allow_errors = False
nbsphinx_prolog = r"""
{% set name = env.docname.split('/')[-1] %}
.. note::

   This page is the executed notebook ``tutorials/{{ name }}.ipynb``; its source is
   ``tutorials/{{ name }}.py`` (jupytext percent format). Regenerate the notebook with
   ``make tutorials`` (``python tutorials/notebooks.py {{ name[:2] }}``).
"""

# -- HTML ----------------------------------------------------------------------------

try:
    import sphinx_rtd_theme  # noqa: F401

    html_theme = "sphinx_rtd_theme"
except ImportError:  # pragma: no cover - the docs extra installs it
    html_theme = "alabaster"
html_static_path = ["_static"]
html_title = f"captum-bilinear {release}"


# -- generated inputs ----------------------------------------------------------------


def _pandoc_on_path() -> None:
    """nbsphinx converts markdown cells with pandoc; use the binary that the
    ``pypandoc-binary`` wheel ships when no system pandoc is installed."""
    if shutil.which("pandoc"):
        return
    try:
        import pypandoc

        folder = os.path.dirname(pypandoc.get_pandoc_path())
    except (ImportError, OSError):
        return
    os.environ["PATH"] = folder + os.pathsep + os.environ.get("PATH", "")


def _copy_tutorials() -> None:
    """The executed notebooks of ``tutorials/`` into ``docs/tutorials/`` (generated)."""
    target = os.path.join(HERE, "tutorials")
    os.makedirs(target, exist_ok=True)
    sources = sorted(glob.glob(os.path.join(ROOT, "tutorials", "*.ipynb")))
    names = {os.path.basename(path) for path in sources}
    for stale in glob.glob(os.path.join(target, "*.ipynb")):
        if os.path.basename(stale) not in names:
            os.remove(stale)
    for path in sources:
        destination = os.path.join(target, os.path.basename(path))
        with open(path, "rb") as source:
            content = source.read()
        if os.path.exists(destination):
            with open(destination, "rb") as existing:
                if existing.read() == content:
                    continue
        with open(destination, "wb") as out:
            out.write(content)


def _evaluation_body() -> None:
    """``_evaluation_body.md``: the evaluation report if a run has been written to
    ``docs/evaluation/``, else a note on how to produce one. (It sits in ``docs/`` like
    the page that includes it, so that the report's image paths resolve.)"""
    report = os.path.join(HERE, "evaluation", "report.md")
    if os.path.exists(report):
        body = "```{include} evaluation/report.md\n:relative-images:\n:heading-offset: 1\n```\n"
    else:
        body = (
            "```{note}\n"
            "No evaluation run has been written to `docs/evaluation/` yet. Produce one with\n\n"
            "    captum-bilinear evaluate --scenes 300 --out docs/evaluation\n\n"
            "and rebuild the documentation: this page then shows its `report.md` (the table of "
            "every method and metric) with the plots it links to (`completeness.png`, "
            "`curves.png`, `pge.png`).\n"
            "```\n"
        )
    path = os.path.join(HERE, "_evaluation_body.md")
    if not os.path.exists(path) or open(path, encoding="utf-8").read() != body:
        with open(path, "w", encoding="utf-8") as out:
            out.write(body)


def _demo_explorer() -> None:
    """``explorer/demo_explorer.html``: the explorer the explorer page embeds, rendered from
    the committed data (``explorer/make_demo_explorer.py`` writes it) with the page's
    current script and style."""
    import json

    from captum_bilinear.page import InteractionExplorer

    with open(os.path.join(HERE, "explorer", "demo_explorer.json"), encoding="utf-8") as handle:
        fragment = InteractionExplorer(json.load(handle)).fragment()
    path = os.path.join(HERE, "explorer", "demo_explorer.html")
    if not os.path.exists(path) or open(path, encoding="utf-8").read() != fragment:
        with open(path, "w", encoding="utf-8") as out:
            out.write(fragment)


_pandoc_on_path()
_copy_tutorials()
_evaluation_body()
_demo_explorer()


# -- every public name is documented -------------------------------------------------

#: The modules whose public names the API reference must cover: their ``__all__``, or
#: else the functions and classes they define whose names do not start with "_".
API_MODULES = (
    "captum_bilinear",
    "captum_bilinear.games",
    "captum_bilinear.adapters",
    "captum_bilinear.adapters.hf",
    "captum_bilinear.adapters.open_clip",
    "captum_bilinear.adapters.sentence_transformers",
    "captum_bilinear.images",
    "captum_bilinear.registry",
    "captum_bilinear.datasets",
    "captum_bilinear.selection",
    "captum_bilinear.visualization",
    "captum_bilinear.page",
    "captum_bilinear.evaluation.pages",
    "captum_bilinear.references",
    "captum_bilinear.metrics",
    "captum_bilinear.zoo",
    "captum_bilinear.evaluation",
    "captum_bilinear.explain",
    "captum_bilinear.loading",
)


def _public_names(module_name):
    import importlib
    import inspect

    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and getattr(value, "__module__", None) == module_name
    ]


def _check_api_coverage(app, env):
    from sphinx.util import logging

    logger = logging.getLogger("captum_bilinear.docs")
    documented = set(env.domains["py"].objects)
    for module_name in API_MODULES:
        for name in _public_names(module_name):
            if f"{module_name}.{name}" not in documented:
                logger.warning(
                    f"API reference: {module_name}.{name} is public but not documented (add it to docs/api/)"
                )


# -- docstring repairs ---------------------------------------------------------------


def _reexported_constant_doc(app, what, name, obj, options, lines):
    """A constant re-exported by a package (``captum_bilinear.zoo.COLOURS``) has its
    ``#:`` comment in the module that defines it; autodoc would show the docstring of
    its type (``dict``) instead. Take the comment from the package's submodules."""
    if what != "data" or not name.startswith("captum_bilinear."):
        return
    import importlib
    import pkgutil

    from sphinx.pycode import ModuleAnalyzer

    package_name, _, attribute = name.rpartition(".")
    package = importlib.import_module(package_name)
    if not hasattr(package, "__path__"):
        return
    own = ModuleAnalyzer.for_module(package_name).find_attr_docs()
    if ("", attribute) in own:
        return
    for module in pkgutil.iter_modules(package.__path__, package_name + "."):
        try:
            docs = ModuleAnalyzer.for_module(module.name).find_attr_docs()
        except Exception:  # pragma: no cover - a module without source
            continue
        if ("", attribute) in docs:
            lines[:] = list(docs[("", attribute)])
            return
    lines[:] = []


def setup(app):
    app.connect("env-check-consistency", _check_api_coverage)
    app.connect("autodoc-process-docstring", _reexported_constant_doc, priority=400)
