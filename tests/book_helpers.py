"""Where the book's pages, sources and HTML are, read from ``_toc.yml``/``_config.yml``.

Shared by test_site.py, test_binder.py and test_build_cache.py, so no test hard-codes
a chapter name or an output folder.
"""

import contextlib
import functools
import http.server
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import jupytext
import pytest
from jupyter_book.cli.main import find_config_path
from sphinx_external_toc.parsing import parse_toc_yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
JUPYTER_BOOK = Path(sys.executable).with_name("jupyter-book")

# The environment for book builds and chapter runs: the one pytest was started with.
# tests/conftest.py points $ACTFNS_CHECKPOINTS at a temporary folder for every test,
# but a build must use the real checkpoint cache (else it retrains every network).
# MPLBACKEND is dropped: conftest sets it to Agg, and in a kernel that stops figures
# from being displayed (the book's figures would vanish from the pages).
USER_ENV = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}


def docnames(book=BOOK):
    """Every page of the book in table-of-contents order (root first)."""
    return list(parse_toc_yaml(book / "_toc.yml"))


def source_of(docname, book=BOOK):
    """The source file of a page (``.md`` or ``.ipynb``)."""
    for suffix in (".md", ".ipynb"):
        path = book / f"{docname}{suffix}"
        if path.is_file():
            return path
    raise FileNotFoundError(f"_toc.yml lists {docname!r} but book/ has no "
                            f"{docname}.md or {docname}.ipynb")


def read_notebook(docname, book=BOOK):
    """The page as a notebook (jupytext reads MyST markdown)."""
    return jupytext.read(source_of(docname, book))


def is_notebook(docname, book=BOOK):
    """True for pages MyST-NB executes: a kernelspec and at least one code cell.

    A page without a source is not one (tests that need the source report it).
    """
    try:
        nb = read_notebook(docname, book)
    except FileNotFoundError:
        return False
    return "kernelspec" in nb.metadata and any(c.cell_type == "code" for c in nb.cells)


def notebook_docnames(book=BOOK):
    """The pages that are executable notebooks (the chapters Binder opens)."""
    return [name for name in docnames(book) if is_notebook(name, book)]


def build_dir(book=BOOK):
    """``_build`` next to the ``_config.yml`` that ``jupyter-book build book`` finds."""
    return find_config_path(book)[0] / "_build"


def html_dir(book=BOOK):
    """Where ``jupyter-book build book`` writes the site."""
    return build_dir(book) / "html"


def build_book(book=BOOK, env=None, timeout=3600):
    """Run ``jupyter-book build <book> -W --keep-going``; return the CompletedProcess.

    Output (stdout and stderr together) is captured in ``.stdout``.
    """
    env = dict(USER_ENV if env is None else env)
    return subprocess.run(
        [str(JUPYTER_BOOK), "build", str(book), "-W", "--keep-going"],
        cwd=book.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=timeout, check=False)


EVAL_ROLE = re.compile(r"\{eval\}`([^`]+)`")


def eval_expressions(source_path):
    """The ``{eval}`` expressions of a chapter's Markdown cells, in order."""
    nb = jupytext.read(source_path)
    return [expr for cell in nb.cells if cell.cell_type == "markdown"
            for expr in EVAL_ROLE.findall(cell.source)]


def eval_values(body):
    """The values MyST-NB's inline execution wrote for a built page's ``{eval}`` roles
    (``span.output.text_plain`` outside cell outputs), in order; ``body`` is the
    page's BeautifulSoup (or its article)."""
    return [span.get_text().strip() for span in body.select("span.output.text_plain")
            if not span.find_parent("div", class_="cell_output")]


# ---- loopback HTTP ------------------------------------------------------------------

class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # no line per request on stderr
        pass


@contextlib.contextmanager
def serve(folder):
    """An HTTP server on 127.0.0.1 serving ``folder``; yields its base URL."""
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def closed_port_url():
    """A loopback URL nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/networks/"


# ---- the site build and the browser (fixtures in conftest.py) ----------------------

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]


def chromium_path():
    """The system's Chromium (``$ACTFNS_CHROMIUM`` to choose another)."""
    path = os.environ.get("ACTFNS_CHROMIUM") or next(
        filter(None, map(shutil.which, ("chromium", "google-chrome",
                                        "google-chrome-stable"))), None)
    if not path:
        pytest.fail("no Chromium found: install Debian's `chromium` (make test does) "
                    "or set $ACTFNS_CHROMIUM", pytrace=False)
    return path


def build_pdf():
    """``make pdf``: the PDF build and its copy into the site (the command the
    workflows run); output (stdout and stderr together) in ``.stdout``."""
    return subprocess.run(
        ["make", "--no-print-directory", "pdf", f"BIN={Path(sys.executable).parent}"],
        cwd=ROOT, env=USER_ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, timeout=3600, check=False)


@functools.cache
def site_builds():
    """``(HTML build, PDF build, html folder)``, built once per session (also for
    tests/test_pdf.py): the HTML first, then the PDF. No builds (None, None) if
    ACTFNS_BOOK_HTML is set."""
    given = os.environ.get("ACTFNS_BOOK_HTML")
    if given:
        return None, None, Path(given).resolve()
    html = build_book()
    return html, build_pdf(), html_dir()
