"""The book builds with ``-W`` and the built site works, checked in its HTML and in a
real browser.

The build runs once per session (``book_helpers.site_builds``): ``jupyter-book build
book -W --keep-going``, re-executing every chapter, then ``make pdf`` (the whole
book as a PDF, put beside the HTML; tests/test_pdf.py reads it). The browser tests
serve the HTML on localhost and open each page in headless Chromium (the system's,
driven by Playwright; nothing is downloaded). Every request that does not go to that
local server is blocked and reported: the site must work offline, MathJax included
(it is served from the site's own ``_static/mathjax``). Screenshots go to
``test-artifacts/screenshots/``.

Set ``ACTFNS_BOOK_HTML=<folder>`` to check an existing build (and its PDF) instead of
building (for working on these tests); the two build tests then fail.
"""

import json
import os
import re
import sys
from pathlib import Path

import pytest
import yaml
from book_helpers import (
    ROOT,
    docnames,
    eval_expressions,
    eval_values,
    notebook_docnames,
    read_notebook,
    serve,
    source_of,
)
from bs4 import BeautifulSoup

sys.path[:0] = [str(ROOT / "book" / "_ext"), str(ROOT / "benchmarks")]
import bench_book  # noqa: E402  (reads the build's execution records)
import parallel_execution  # noqa: E402

pytestmark = pytest.mark.slow

PAGES = docnames()
NOTEBOOKS = notebook_docnames()
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
PDF_NAME = Path(CONFIG["latex"]["latex_documents"]["targetname"]).with_suffix(
    ".pdf").name


def test_book_builds_with_warnings_as_errors(built_book):
    result, html = built_book
    assert result is not None, (
        "ACTFNS_BOOK_HTML is set, so the book was not built by this session")
    reports = sorted((html / "reports").glob("*.log"))
    details = "\n".join(f"--- {r.name}\n{r.read_text()[-3000:]}" for r in reports)
    assert result.returncode == 0, (
        f"jupyter-book build book -W --keep-going failed (exit {result.returncode}):\n"
        f"{result.stdout[-8000:]}\n{details}")


def page_soup(site, docname):
    path = site / f"{docname}.html"
    assert path.is_file(), f"{docname} is in _toc.yml but {path} was not built"
    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


def article(soup):
    """The page's own content (without the theme's navigation)."""
    return soup.find("article") or soup.find("main") or soup


@pytest.mark.parametrize("docname", PAGES)
def test_page_exists_with_title(site, docname):
    soup = page_soup(site, docname)
    assert article(soup).find("h1"), f"{docname}.html has no <h1> title"


@pytest.mark.parametrize("docname", PAGES)
def test_images_exist_on_disk(site, docname):
    soup = page_soup(site, docname)
    for img in soup.find_all("img"):
        src = img.get("src", "")
        assert src and not src.startswith(("http:", "https:", "//")), (
            f"{docname}: image {src!r} is not part of the site")
        if src.startswith("data:"):
            continue
        path = (site / src.split("#")[0].split("?")[0]).resolve()
        assert path.is_file() and path.stat().st_size > 0, (
            f"{docname}: <img src={src!r}> points to a missing or empty file")


def shown_image_outputs(executed_nb):
    """Number of image outputs the page displays (cells not tagged remove-*). An output
    that also offers HTML shows that instead on the site (MyST-NB's priority, e.g. the
    activation explorer, whose PNG is for the PDF)."""
    count = 0
    for cell in executed_nb.get("cells", []):
        tags = set(cell.get("metadata", {}).get("tags", []))
        if cell["cell_type"] != "code" or tags & {"remove-cell", "remove-output"}:
            continue
        count += sum(1 for out in cell.get("outputs", [])
                     if {"image/png", "image/svg+xml", "image/jpeg"}
                     & set(out.get("data", {})) and "text/html" not in out["data"])
    return count


def figure_names(docname):
    """``name`` of every figure declared in cell metadata (``mystnb: figure:``)."""
    names = []
    for cell in read_notebook(docname).cells:
        figure = cell.metadata.get("mystnb", {}).get("figure", {})
        if figure.get("name"):
            names.append(figure["name"])
    return names


@pytest.mark.parametrize("docname", NOTEBOOKS)
def test_chapter_shows_its_figures(site, docname):
    soup = page_soup(site, docname)
    executed = site.parent / "jupyter_execute" / f"{docname}.ipynb"
    assert executed.is_file(), f"{executed} missing: was {docname} executed?"
    expected = shown_image_outputs(json.loads(executed.read_text(encoding="utf-8")))
    shown = [img for out in soup.select("div.cell_output")
             for img in out.find_all("img")]
    assert len(shown) >= expected, (
        f"{docname}: the executed notebook has {expected} image outputs but the page "
        f"shows {len(shown)}")
    for name in figure_names(docname):
        figure = soup.find(id=name)
        assert figure is not None and figure.find("img"), (
            f"{docname}: figure {name!r} (cell metadata) is not shown as an image")


@pytest.mark.parametrize("docname", PAGES)
def test_figure_numbers_restart_on_each_page(site, docname):
    """Numbered chapters: "Fig. N.1", "Fig. N.2", ... with the chapter's number N;
    unnumbered pages (the appendices): "Fig. 1", "Fig. 2", ..., each page its own."""
    soup = page_soup(site, docname)
    numbers = [span.get_text(strip=True).removeprefix("Fig.").strip()
               for span in soup.select("figure span.caption-number")]
    if not numbers:
        return
    prefixes = {n.rpartition(".")[0] for n in numbers}
    assert len(prefixes) == 1, f"{docname}: figures of several sections: {numbers}"
    prefix = prefixes.pop()
    expected = [f"{prefix}.{k}" if prefix else str(k)
                for k in range(1, len(numbers) + 1)]
    assert numbers == expected, f"{docname}: figure numbers {numbers}"


@pytest.mark.parametrize("docname", NOTEBOOKS)
def test_figures_have_alt_text_and_retina_pixels(site, docname):
    """Each figure's image has its caption as alt text (not its file name), and a PNG
    has at least twice the pixels of the width it is shown at."""
    soup = page_soup(site, docname)
    for img in [img for out in soup.select("div.cell_output")
                for img in out.find_all("img")]:
        src, alt = img["src"], img.get("alt", "")
        figure = img.find_parent("figure")
        caption = figure.find("figcaption") if figure else None
        assert alt and Path(src).stem not in alt, f"{docname}: {src} has no alt text"
        if caption is not None:  # the caption, less its "Fig. N" label
            words = " ".join(caption.get_text(" ").split())
            assert " ".join(alt.split()[:3]) in words, (
                f"{docname}: alt text {alt!r} is not the caption {words!r}")
        if src.endswith(".png"):
            width_px = int.from_bytes((site / src).read_bytes()[16:20], "big")
            style = re.search(r"width:\s*([\d.]+)px", img.get("style", ""))
            shown = float(img.get("width") or (style[1] if style else 0))
            assert shown and width_px >= 1.9 * shown, (
                f"{docname}: {src} is {width_px} px wide, shown at {shown}: not retina")


def test_chapters_execute_side_by_side_and_the_speed_appendix_alone(site):
    """book/_ext/parallel_execution.py: two chapters at a time (on 2+ CPUs), and the
    chapters that measure time (actfns_execute_alone) with no other chapter running."""
    spans = bench_book.chapter_times(site.parent.parent)  # {doc: (start, end)}
    assert set(spans) == set(NOTEBOOKS), "a chapter was not executed by the build"

    def overlap(a, b):
        return min(spans[a][1], spans[b][1]) - max(spans[a][0], spans[b][0])

    alone = [d for d in CONFIG["sphinx"]["config"]["actfns_execute_alone"]
             if d in spans]
    assert "appendix_speed" in alone
    for doc in alone:
        shared = {o: round(overlap(doc, o), 2) for o in spans
                  if o != doc and overlap(doc, o) > 0}
        assert not shared, f"{doc} shared the CPU with other chapters (s): {shared}"
    jobs = parallel_execution.default_jobs()
    most = bench_book.most_at_once(list(spans.values()))
    assert most == jobs, (f"at most {most} chapters executed at once; expected {jobs} "
                          f"(ACTFNS_BUILD_JOBS, or 2 on a machine with 2+ CPUs)")
    # the others started in _config.yml's actfns_execution_order (the first `jobs`
    # of them at the same moment, in either order), then the ones it does not list
    order = [d for d in CONFIG["sphinx"]["config"]["actfns_execution_order"]
             if d in spans and d not in alone]
    started = sorted((d for d in spans if d not in alone), key=lambda d: spans[d][0])
    assert set(started[:jobs]) == set(order[:jobs]), started
    assert started[jobs:len(order)] == order[jobs:], started
    assert set(started[len(order):]) == set(spans) - set(order) - set(alone), started


@pytest.mark.parametrize("docname", PAGES)
def test_eval_values_are_resolved(site, docname):
    """Every ``{eval}`` role of the source is a value on the page (MyST-NB's inline
    execution writes it as ``span.output.text_plain``), and none is empty, ``nan`` or
    ``None``, except where a page shows a broken formula on purpose (an expression
    naming ``naive`` or ``course``)."""
    content = article(page_soup(site, docname))
    for code in content.find_all(["pre", "code"]):
        code.decompose()  # code may legitimately show role syntax
    assert "{eval}" not in content.get_text(), (
        f"{docname}: an {{eval}} role was rendered as text")
    expressions = eval_expressions(source_of(docname))
    values = eval_values(content)
    assert len(values) == len(expressions), (
        f"{docname}: {len(expressions)} {{eval}} roles in the source, {len(values)} "
        "values on the page")
    bad = [(expr, value) for expr, value in zip(expressions, values, strict=True)
           if value.strip("'\"").lower() in {"", "nan", "-nan", "none"}
           and not re.search(r"course|naive", expr)]
    assert not bad, f"{docname}: {{eval}} values that are not values: {bad}"


@pytest.mark.parametrize("docname", NOTEBOOKS)
def test_binder_button_opens_this_chapter(site, docname):
    links = [a["href"] for a in page_soup(site, docname).find_all("a", href=True)
             if a["href"].startswith("https://mybinder.org/v2/gh/")]
    assert links, f"{docname}: no Binder launch button"
    path = re.search(r"urlpath=lab/tree/([^&#]+)", links[0])
    assert path, f"{docname}: the Binder link does not open JupyterLab: {links[0]}"
    assert path[1] == source_of(docname).relative_to(ROOT).as_posix(), (
        f"{docname}: the Binder link opens {path[1]}")


@pytest.mark.parametrize("docname", NOTEBOOKS)
def test_no_error_outputs(site, docname):
    """No traceback, error or stderr output. A line such as ``ValueError: ...`` is an
    error too, unless the cell's own code catches the exception to show it."""
    soup = page_soup(site, docname)
    for cell in soup.select("div.cell"):
        out = cell.select_one("div.cell_output")
        if out is None:
            continue
        for listing in out.select("div.highlight-python"):
            listing.decompose()  # af.show_source's code (a docstring's "Raises:")
        text = out.get_text()
        assert "Traceback" not in text, f"{docname}: a cell output holds a traceback"
        found = re.search(r"^\s*\w*(Error|Exception|Warning)\b:", text, re.M)
        code = cell.select_one("div.cell_input")
        caught = code is not None and re.search(r"\bexcept\b", code.get_text())
        assert not found or caught, (
            f"{docname}: a cell output reports {found.group(0).strip()!r}")
    stderr = soup.select("div.cell_output .stderr, div.cell_output .traceback")
    assert not stderr, f"{docname}: {len(stderr)} stderr/traceback outputs on the page"


# ---- in a real browser ------------------------------------------------------------

@pytest.fixture(scope="session")
def server(site):
    """``http://127.0.0.1:PORT/`` serving the built site."""
    with serve(site) as url:
        yield url


class Visit:
    """One page opened in a fresh browser context, with everything that went wrong."""

    def __init__(self, browser, server, path):
        self.problems = []
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.context.route("**/*", self.route)
        self.page = self.context.new_page()
        self.page.on("console", self.on_console)
        self.page.on("pageerror",
                     lambda err: self.problems.append(f"page error: {err}"))
        self.page.on("requestfailed", lambda req: self.problems.append(
            f"request failed: {req.url} ({req.failure})"))
        self.page.on("response", self.on_response)
        self.server = server
        self.page.goto(server + path, wait_until="load")

    def route(self, route):
        """Only the local server: any other request is blocked and reported."""
        url = route.request.url
        if url.startswith(self.server):
            route.continue_()
        else:
            self.problems.append(f"request outside the site: {url}")
            route.abort()

    def on_console(self, msg):
        if msg.type == "error":
            self.problems.append(f"console error: {msg.text} ({msg.location})")

    def on_response(self, response):
        if response.status >= 400:
            self.problems.append(f"HTTP {response.status}: {response.url}")

    def close(self):
        self.context.close()


@pytest.fixture
def visit(browser, server):
    visits = []

    def open_page(path):
        visits.append(Visit(browser, server, path))
        return visits[-1]

    yield open_page
    for v in visits:
        v.close()


IMAGES_JS = """async () => {
  const imgs = Array.from(document.images);
  imgs.forEach(img => { img.loading = "eager"; });
  await Promise.all(imgs.map(img => img.complete ? null : new Promise(done => {
    img.addEventListener("load", done); img.addEventListener("error", done); })));
  return imgs.map(img => [img.getAttribute("src"), img.naturalWidth]);
}"""

MATH_JS = """async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
  }
  const math = document.querySelectorAll("article .math").length;
  return {math: math,
          typeset: document.querySelectorAll("article .math mjx-container").length,
          errors: document.querySelectorAll("mjx-merror").length,
          mathjax: !!(window.MathJax && MathJax.version)};
}"""


@pytest.mark.parametrize("docname", PAGES)
def test_page_in_browser(visit, docname):
    page = visit(f"{docname}.html")
    images = page.page.evaluate(IMAGES_JS)
    broken = [src for src, width in images if not width]
    assert not broken, f"{docname}: images that did not load: {broken}"
    math = page.page.evaluate(MATH_JS)
    if math["math"]:
        assert math["mathjax"], f"{docname}: has math but MathJax did not load"
        assert math["typeset"] >= math["math"], (
            f"{docname}: {math['typeset']} of {math['math']} formulas rendered")
        assert not math["errors"], f"{docname}: {math['errors']} TeX errors"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.page.screenshot(path=str(SCREENSHOTS / f"{docname}.png"), full_page=True)
    assert not page.problems, f"{docname}:\n" + "\n".join(page.problems)


def test_some_page_has_rendered_math(visit):
    """The math check above is not vacuous: the book has formulas and they render."""
    rendered = {}
    for docname in NOTEBOOKS:
        math = visit(f"{docname}.html").page.evaluate(MATH_JS)
        rendered[docname] = math["typeset"]
        if math["typeset"]:
            break
    assert any(rendered.values()), f"no page rendered any math: {rendered}"


def test_search_finds_relu(visit):
    page = visit("search.html?q=ReLU")
    results = page.page.locator("#search-results ul.search li")
    results.first.wait_for(timeout=30_000)
    links = results.locator("a").evaluate_all("els => els.map(e => e.href)")
    assert links, "search for ReLU returned no result"
    pages = {Path(link.split("#")[0].split("?")[0]).stem for link in links}
    assert pages & set(PAGES), f"search results link to no chapter: {links}"
    assert not page.problems, "\n".join(page.problems)


# ---- site identity: footer, favicon and logo, buttons, math without a CDN ------------

def site_repository():
    """The repository the buttons must point at: the one being built on GitHub
    Actions (``$GITHUB_REPOSITORY``), else _config.yml's."""
    if os.environ.get("GITHUB_REPOSITORY"):
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        return f"{server}/{os.environ['GITHUB_REPOSITORY']}"
    return CONFIG["repository"]["url"].rstrip("/")


@pytest.mark.parametrize("docname", PAGES)
def test_footer_has_licences_and_the_pdf(site, docname):
    footer = page_soup(site, docname).select_one("footer .actfns-footer")
    assert footer is not None, f"{docname}: no footer with the licences"
    links = {a.get_text(" ", strip=True): a["href"]
             for a in footer.find_all("a", href=True)}
    assert links.get("CC BY 4.0", "").startswith(
        "https://creativecommons.org/licenses/by/4.0"), f"{docname}: {links}"
    assert "opensource.org/license" in links.get("MIT", ""), f"{docname}: {links}"
    pdf = [href for href in links.values() if href.endswith(".pdf")]
    assert pdf == [PDF_NAME], f"{docname}: PDF links {pdf}"
    target = (site / docname).parent / pdf[0]
    assert target.is_file() and target.read_bytes()[:5] == b"%PDF-", (
        f"{docname}: the footer links {pdf[0]}, which is not a PDF in the site "
        "(`make pdf` puts it there)")


@pytest.mark.parametrize("docname", PAGES)
def test_page_has_favicon_logo_and_light_default(site, docname):
    soup = page_soup(site, docname)
    icon = soup.find("link", rel="icon")
    assert icon is not None, f"{docname}: no favicon"
    assert (site / icon["href"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    logos = soup.select("img.logo__image")
    assert logos, f"{docname}: no logo"
    assert all((site / img["src"]).read_text().lstrip().startswith(("<?xml", "<svg"))
               for img in logos), f"{docname}: the logo is not the drawn SVG"
    mode = re.search(r'dataset\.mode = localStorage\.getItem\("mode"\) \|\| "(\w*)"',
                     str(soup))
    assert mode and mode[1] == "light", (
        f"{docname}: default mode {mode and mode[1]!r}, expected light")


@pytest.mark.parametrize("docname", PAGES)
def test_page_loads_nothing_from_elsewhere(site, docname):
    """Scripts, stylesheets and icons come from the site; MathJax is its own copy."""
    soup = page_soup(site, docname)
    loaded = [tag["src"] for tag in soup.find_all(["script", "img"], src=True)]
    loaded += [tag["href"] for tag in soup.find_all("link", href=True)
               if {"stylesheet", "icon", "preload"} & set(tag.get("rel") or [])]
    outside = [url for url in loaded if re.match(r"^(https?:)?//", url)]
    assert not outside, f"{docname}: loads {outside}"
    mathjax = [tag["src"] for tag in soup.find_all("script", src=True)
               if "mathjax" in tag["src"]]
    for src in mathjax:
        assert (site / src.split("?")[0]).is_file(), f"{docname}: {src} missing"


@pytest.mark.parametrize("docname", PAGES)
def test_buttons_follow_the_repository(site, docname):
    """Repository, issues, edit and Binder buttons point at the repository the site
    was built from."""
    repository = site_repository()
    owner_repo = "/".join(repository.split("/")[-2:])
    branch = CONFIG["repository"]["branch"]
    soup = page_soup(site, docname)
    for content in soup.select("article, div.bd-sidebar-secondary"):
        content.decompose()  # links in the text are the chapters' own
    hrefs = [a["href"] for a in soup.find_all("a", href=True)]
    github = [h for h in hrefs if h.startswith("https://github.com/")]
    assert github and all(h.startswith(repository) for h in github), (
        f"{docname}: repository links {github}, expected {repository}")
    if docname in NOTEBOOKS or source_of(docname).suffix == ".md":
        source = source_of(docname).relative_to(ROOT).as_posix()
        assert f"{repository}/edit/{branch}/{source}" in hrefs, (
            f"{docname}: no edit button for {source}")
    binder = [h for h in hrefs if h.startswith("https://mybinder.org/v2/gh/")]
    assert all(f"/v2/gh/{owner_repo}/{branch}?" in h for h in binder), binder


FETCH_JS = """async (urls) => Promise.all(urls.map(async (u) => {
  const r = await fetch(u);
  const b = new Uint8Array(await r.arrayBuffer());
  return [u, r.status, r.headers.get("content-type"), Array.from(b.slice(0, 5))];
}))"""


def test_favicon_logo_and_pdf_load_in_browser(visit):
    page = visit(f"{PAGES[0]}.html")  # the root page (index.html only redirects)
    urls = page.page.evaluate("""() => [
      document.querySelector('link[rel="icon"]').href,
      document.querySelector('img.logo__image').src,
      document.querySelector('footer a.actfns-pdf').href]""")
    favicon, logo, pdf = page.page.evaluate(FETCH_JS, urls)
    assert favicon[1] == 200 and favicon[2] == "image/png", favicon
    assert logo[1] == 200 and logo[2] == "image/svg+xml", logo
    assert pdf[1] == 200 and pdf[2] == "application/pdf", pdf
    assert bytes(pdf[3]) == b"%PDF-", pdf
    assert page.page.locator("img.logo__image").first.evaluate(
        "img => img.naturalWidth") > 0
    assert "CC BY 4.0" in page.page.locator(".actfns-footer").first.inner_text()
    assert not page.problems, "\n".join(page.problems)


# ---- the activation explorer, without a kernel ------------------------------------

def test_activation_explorer_works_on_the_site(site, visit):
    """Chapter 1's explorer (af.activation_explorer) is on the page and answers its
    slider and menu with the precomputed curves."""
    pages = [d for d in PAGES if page_soup(site, d).select(".actfns-explorer")]
    assert pages, ("no page shows the activation explorer: activation_functions.md "
                   "should display af.activation_explorer() in an executed cell")
    page = visit(f"{pages[0]}.html")
    root = page.page.locator(".actfns-explorer").first
    root.scroll_into_view_if_needed()
    title, curve = root.locator("text.title"), root.locator("path.f")
    options = root.locator("select option").evaluate_all(
        "els => els.map(e => e.value)")
    assert len(options) >= 3, options
    for name in options:
        root.locator("select").select_option(name)
        first, before = title.text_content(), curve.get_attribute("d")
        slider = root.locator("input[type=range]")
        top = slider.get_attribute("max")
        slider.fill(top)
        assert title.text_content() != first and title.text_content().endswith(
            f"={float(top):g}"), (name, first, title.text_content())
        assert curve.get_attribute("d") != before, f"{name}: the curve did not change"
    page.page.screenshot(path=str(SCREENSHOTS / "activation_explorer.png"))
    assert not page.problems, "\n".join(page.problems)
