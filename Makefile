# The two commands: `make demo` and `make test`. Each sets up what it needs on a fresh machine
# (a virtual environment with the pinned packages, Debian packages) and is quick the second time.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Debian packages per command (apt runs only when one is missing). The web stage drives Debian's
# Chromium through Playwright; Noto fonts render Latin and CJK pages. PyMuPDF's wheel carries
# MuPDF. The tesseract engine reads Debian's trained data (English, orientation detection); the
# tesserocr wheel carries the library itself. The PDF benchmark's peer tool is poppler's pdftoppm.
BROWSER_DEBIAN := chromium fonts-noto-core fonts-noto-cjk
OCR_DEBIAN := tesseract-ocr-eng tesseract-ocr-osd
DEMO_DEBIAN := $(BROWSER_DEBIAN) $(OCR_DEBIAN)
TEST_DEBIAN := $(BROWSER_DEBIAN) $(OCR_DEBIAN)
BENCH_DEBIAN := $(BROWSER_DEBIAN) $(OCR_DEBIAN) poppler-utils
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
DEMO_OUT := out/demo

.PHONY: setup demo test bench examples clean

setup: $(STAMP)

# Reinstalled only when a requirements file or setup.py changes.
$(STAMP): requirements.txt requirements-dev.txt requirements-nodeps.txt pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -r requirements-nodeps.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

# $(call debian,PACKAGES): install those of PACKAGES that are missing.
define debian
	@missing=""; for package in $(1); do \
	  dpkg -s $$package >/dev/null 2>&1 || missing="$$missing $$package"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q --no-install-recommends $$missing; \
	fi
endef

demo: setup
	$(call debian,$(DEMO_DEBIAN))
	$(BIN)/vlcurate pdf --input examples/pdfs --output $(DEMO_OUT)/pdf --overwrite
	$(BIN)/vlcurate web --input examples/web --output $(DEMO_OUT)/web --overwrite --offline
	$(BIN)/vlcurate ocr --input examples/images --output $(DEMO_OUT)/ocr --overwrite
	$(BIN)/vlcurate charts --input examples/charts --output $(DEMO_OUT)/charts --overwrite
	$(BIN)/vlcurate notebooks --input examples/notebooks --output $(DEMO_OUT)/notebooks --overwrite
	$(BIN)/python examples/make_tiny_clip.py --output $(DEMO_OUT)/tiny-clip.pt
	$(BIN)/vlcurate filter --input $(DEMO_OUT)/pdf --output $(DEMO_OUT)/filtered --overwrite \
	  --clip-model tiny-clip --clip-model-config examples/models/tiny-clip.json \
	  --clip-checkpoint $(DEMO_OUT)/tiny-clip.pt --clip-keep-fraction 0.8 --dedup exact
	$(BIN)/vlcurate filter --input $(DEMO_OUT)/ocr --output $(DEMO_OUT)/deduped --overwrite --dedup exact,near
	$(BIN)/vlcurate taxonomy validate
	$(BIN)/vlcurate taxonomy train --examples examples/sft/labelled.jsonl --output $(DEMO_OUT)/labeler
	$(BIN)/vlcurate sft --input examples/sft/conversations --output $(DEMO_OUT)/sft --overwrite \
	  --image-root examples --labeler $(DEMO_OUT)/labeler --target-mix examples/sft/target-mix.yaml
	$(BIN)/vlcurate run examples/recipes/demo.yaml --overwrite

test: setup
	$(call debian,$(TEST_DEBIAN))
	$(BIN)/python -m pytest -q

bench: setup
	$(call debian,$(BENCH_DEBIAN))
	$(BIN)/python bench/pdf_pages.py
	$(BIN)/python bench/web.py
	$(BIN)/python bench/ocr.py
	$(BIN)/python bench/ocr_accuracy.py
	$(BIN)/python bench/charts.py
	$(BIN)/python bench/clip.py
	$(BIN)/python bench/labeler.py
	$(BIN)/python bench/loader.py
	$(BIN)/python bench/recipe.py
	$(BIN)/python bench/review.py
	$(BIN)/python bench/captions.py

examples: setup
	$(BIN)/python examples/make_examples.py
	$(BIN)/python examples/make_images.py
	$(BIN)/python examples/make_charts.py
	$(BIN)/python examples/make_notebooks.py
	$(BIN)/python examples/make_interleaved.py
	$(BIN)/python examples/make_captions.py

clean:
	rm -rf $(VENV) out .pytest_cache
