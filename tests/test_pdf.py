"""The whole book as a PDF (``make pdf``: Jupyter Book's LaTeX builder, XeLaTeX),
published beside the HTML, read back with poppler-utils (``pdfinfo``, ``pdftotext``,
``pdfimages``) and compared with the HTML site of the same session's build
(tests/test_site.py builds both, once).

What a reader of the PDF must find: a document of plausible length, every page's
title, the figures, and the numbers the chapters compute (the values the text shows
inline with {eval}), equal to the site's where a chapter is
deterministic.
"""

import re
import shutil
import subprocess
import unicodedata

import pytest
from book_helpers import ROOT, notebook_docnames, site_builds
from bs4 import BeautifulSoup
from test_site import PAGES, PDF_NAME, article, page_soup

pytestmark = pytest.mark.slow

# Chapters whose numbers depend only on seeds and the trained networks, not on time:
# their inline values must be the same in the PDF (built by a second execution).
DETERMINISTIC = ["activation_functions", "data_and_network", "gradient_flow",
                 "training", "appendix_backward", "appendix_cross_entropy",
                 "appendix_backprop_matrices"]


def poppler(tool, *args):
    """Run a poppler-utils tool; fail with how to install it if it is missing."""
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} not found: install Debian's poppler-utils (`make latex` "
                    "does)", pytrace=False)
    result = subprocess.run([tool, *args], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, f"{tool} {' '.join(args)}: {result.stderr}"
    return result.stdout


def normalise(text):
    """Text for comparison: compatibility forms (ligatures, the math alphabet),
    Unicode minus as '-', words split at a line end joined, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).replace("\u2212", "-")
    text = re.sub(r"(\w)-\n(\w)", r"\1\2", text)
    return " ".join(text.split())


@pytest.fixture(scope="module")
def pdf():
    """The PDF in the site, after the session's builds."""
    _, result, site = site_builds()
    if result is not None:
        assert result.returncode == 0, (
            f"`make pdf` failed (exit {result.returncode}); see "
            f"_build/pdf/_build/latex/actfns.log:\n{result.stdout[-8000:]}")
    path = site / PDF_NAME
    if not path.is_file():
        pytest.fail(f"no {PDF_NAME} in {site}: the PDF build failed", pytrace=False)
    return path


@pytest.fixture(scope="module")
def pdf_text(pdf):
    return normalise(poppler("pdftotext", "-enc", "UTF-8", str(pdf), "-"))


@pytest.fixture(scope="module")
def site(pdf):
    return pdf.parent


def test_pdf_is_built_into_the_site(pdf):
    """`make pdf` builds in _build/pdf (its own doctrees and executed notebooks) and
    copies the PDF into the site."""
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(rf"^PDF := {re.escape(PDF_NAME)}$", makefile, re.M), (
        "the Makefile's PDF name differs from _config.yml's latex targetname")
    latex = ROOT / "_build" / "pdf" / "_build" / "latex" / PDF_NAME
    if site_builds()[1] is not None:  # built by this session
        assert latex.read_bytes() == pdf.read_bytes()
    assert pdf.read_bytes()[:5] == b"%PDF-"


def test_page_count_is_plausible(pdf):
    """At least two pages per page of the site (chapters open on a right-hand page,
    with figures and code), and not runaway output."""
    info = poppler("pdfinfo", str(pdf))
    pages = int(re.search(r"^Pages:\s+(\d+)$", info, re.M)[1])
    assert 2 * len(PAGES) <= pages <= 80 * len(PAGES), f"{pages} pages"


@pytest.mark.parametrize("docname", PAGES)
def test_pdf_has_every_title(site, pdf_text, docname):
    title = normalise(article(page_soup(site, docname)).find("h1").get_text(" "))
    title = title.replace("#", "").strip()
    assert title.casefold() in pdf_text.casefold(), (
        f"{docname}: its title {title!r} is not in the PDF")


def test_pdf_has_the_figures(site, pdf):
    """Every image the site's chapters show is in the PDF (poppler lists each image
    once, and its transparency mask as an 'smask')."""
    listing = poppler("pdfimages", "-list", str(pdf)).splitlines()[2:]
    images = sum(1 for line in listing if line.split()[2] == "image")
    shown = sum(len(out.find_all("img"))
                for docname in notebook_docnames()
                for out in page_soup(site, docname).select("div.cell_output"))
    assert shown > 0
    assert images >= shown, f"{images} images in the PDF, {shown} on the site"


def inline_values(site, docname):
    """The {eval} values a page's paragraphs and list items show."""
    soup = BeautifulSoup((site / f"{docname}.html").read_text(encoding="utf-8"),
                         "html.parser")
    spans = article(soup).select("p span.output.text_plain, li span.output.text_plain")
    return [normalise(span.get_text()) for span in spans]


def test_pdf_numbers_equal_the_sites(site, pdf_text):
    """The deterministic chapters' inline numbers appear in the PDF as on the site."""
    checked, missing = 0, []
    for docname in DETERMINISTIC:
        for value in inline_values(site, docname):
            if not re.search(r"\d", value):
                continue
            checked += 1
            if value not in pdf_text:
                missing.append((docname, value))
    assert checked >= 50, f"only {checked} numbers to compare"
    assert not missing, (
        f"{len(missing)} of {checked} values not in the PDF: {missing[:20]}")
