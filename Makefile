# actfns: two commands on a fresh machine (see README.md)
#   make book   install everything into .venv and build the book (-W) into _build/html,
#               with the whole book as a PDF in _build/html/actfns.pdf (make html and
#               make pdf build one of the two)
#   make test   ruff, then every test: the -W book build and its PDF, the HTML, the
#               browser and Binder checks, and the package's unit tests
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: book html pdf linkcheck test test-fast setup browser latex serve \
	readme-figure requirements clean

book: setup latex
	$(MAKE) html pdf
	@echo "The book is in _build/html: open _build/html/index.html, or run 'make serve'"

html:
	$(BIN)/jupyter-book build book -W --keep-going

# The whole book as one PDF (XeLaTeX; `make latex` installs Debian's TeX Live), put
# beside the HTML, where every page's footer links to it. Executes every chapter again,
# in a build folder of its own (_build/pdf/_build: doctrees, executed notebooks, LaTeX),
# so that it leaves the HTML build's records as they are.
PDF := actfns.pdf
pdf:
	$(BIN)/jupyter-book build book --builder pdflatex -W --keep-going \
	  --path-output _build/pdf
	mkdir -p _build/html
	cp _build/pdf/_build/latex/$(PDF) _build/html/$(PDF)

# The chapters' external links, with Sphinx's linkcheck builder (needs the internet;
# the weekly workflow runs it): a broken link fails (-W). Report:
# _build/linkcheck/_build/html/output.txt (its own folder, not the site's).
linkcheck:
	$(BIN)/jupyter-book build book --builder linkcheck -W --keep-going \
	  --path-output _build/linkcheck

test: setup browser latex
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

# The PDF build's TeX Live (XeLaTeX, fonts, latexmk) and poppler-utils (pdftotext,
# pdfinfo: the PDF test reads the PDF with them), from Debian; nothing is downloaded
# while the book builds.
LATEX_PACKAGES := texlive-xetex texlive-latex-recommended texlive-latex-extra \
	texlive-fonts-recommended tex-gyre latexmk fonts-freefont-otf fonts-dejavu-core \
	poppler-utils
latex:
	@if command -v xelatex >/dev/null && command -v latexmk >/dev/null \
	    && command -v pdftotext >/dev/null \
	    && kpsewhich fncychap.sty unicode-math.sty ucharclasses.sty >/dev/null \
	    && fc-list | grep -q DejaVuSansMono; then :; \
	else echo "Installing Debian's TeX Live for the PDF: $(LATEX_PACKAGES)"; \
	  $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install \
	    -y --no-install-recommends $(LATEX_PACKAGES); fi

serve:
	$(BIN)/python -m http.server --bind 127.0.0.1 --directory _build/html 8000

# The README's picture, drawn by the package function the book uses.
readme-figure: setup
	$(BIN)/python docs/readme_figure.py docs/activation_functions.png

# Re-pin requirements.txt from the current .venv.
requirements:
	$(BIN)/python .ci/pin_requirements.py > requirements.txt

clean:
	rm -rf _build book/_build test-artifacts book/_static/logo.svg book/_static/favicon.png
