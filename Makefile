# actfns: two commands on a fresh machine (see README.md)
#   make book   install everything into .venv and build the book (-W) into _build/html
#   make test   ruff, then every test: the -W book build, its HTML, the browser and
#               Binder checks, and the package's unit tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: book test test-fast setup browser serve readme-figure requirements clean

book: setup
	$(BIN)/jupyter-book build book -W --keep-going
	@echo "The book is in _build/html: open _build/html/index.html, or run 'make serve'"

test: setup browser
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -ra

# Quick checks only: no book build, no chapter runs, no browser.
test-fast: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -ra -m "not slow"

setup: $(VENV)/.installed

# requirements.txt pins versions that need Python 3.11.5 or newer (soupsieve 4.1.3).
$(VENV)/.installed: requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -c 'import sys; v = sys.version_info[:3]; \
	  sys.exit(None if v >= (3, 11, 5) else "$(PYTHON) is Python %d.%d.%d, but \
	requirements.txt needs 3.11.5 or newer: pass a newer one: make PYTHON=/path/to/python3" % v)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -r requirements.txt
	touch $@

# The browser test drives the system's Chromium (or $$ACTFNS_CHROMIUM); install
# Debian's package when there is none.
browser:
	@if [ -n "$$ACTFNS_CHROMIUM" ] || command -v chromium >/dev/null \
	    || command -v google-chrome >/dev/null; then :; else \
	  echo "No Chromium found: installing Debian's chromium for the browser test"; \
	  $(SUDO) apt-get update && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y chromium; fi

serve:
	$(BIN)/python -m http.server --bind 127.0.0.1 --directory _build/html 8000

# The README's picture, drawn by the package function the book uses.
readme-figure: setup
	$(BIN)/python docs/readme_figure.py docs/activation_functions.png

# Re-pin requirements.txt from the current .venv.
requirements:
	$(BIN)/python .ci/pin_requirements.py > requirements.txt

clean:
	rm -rf _build book/_build test-artifacts
