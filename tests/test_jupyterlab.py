"""The reader's test (issue 13): every chapter opened in a real JupyterLab as a Binder
reader opens it, then "Run all", in headless Chromium.

JupyterLab runs with the Binder image's versions (binder/requirements.txt), on
127.0.0.1, with Binder's settings (binder/postBuild: jupytext opens MyST markdown as a
notebook, binder/lab_settings.py) and Binder's environment (started through
binder/start under ``taskset -c 0``: one core, so torch gets one thread), an empty
store of trained networks, and ``ACTFNS_PRETRAINED_URL`` pointing at a loopback server
holding the built site's networks and manifest (``_build/html/networks/``, or, when the
site was built without them, the build's store published as the Pages workflow does).
Each chapter is opened by the launch button's path (``lab/tree/book/<chapter>.md``) and
run with Run > Run All Cells. A chapter passes when:

- its kernel started with no "Select Kernel" dialog;
- every code cell ran, and no output is an error or a warning;
- the rendered Markdown holds no raw role or directive text (``{eval}``, ``{glue``,
  ``{doc}``, ``:::`` ...), no unresolved cross-reference, every ``{eval}`` evaluated;
- the ``{eval}`` values equal the built site's, in order, except on pages that measure
  time (``actfns_execute_alone`` in _config.yml) and expressions naming a duration
  or a cost (``MACHINE_STATE``): those differ from run to run by nature, and a cost
  (``af.run_cost``: what training would take here) depends on what the machine's
  store already holds (the site's build has every run, the reader's store none);
- at least as many figures (loaded images) and code listings as the site's page.

The same with the network source unreachable: the chapter says why it trains
("cannot reach ..."), and still passes.

``ACTFNS_BOOK_HTML`` points the tests at an existing build (else the book is built
once per session, as for test_site.py). Screenshots of failures go to
test-artifacts/jupyterlab/.
"""

import contextlib
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import jupytext
import pytest
import yaml
from book_helpers import (
    ROOT,
    USER_ENV,
    closed_port_url,
    eval_expressions,
    eval_values,
    notebook_docnames,
    read_notebook,
    serve,
    source_of,
)
from bs4 import BeautifulSoup

BIN = Path(sys.executable).parent
BINDER = ROOT / "binder"
CHAPTERS = notebook_docnames()
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
SPHINX = CONFIG.get("sphinx", {}).get("config", {})
TIMED_PAGES = set(SPHINX.get("actfns_execute_alone", []))
MACHINE_STATE = re.compile(
    r"(?i)time|second|minute|elapsed|duration|speed|cost|_s\b|_min\b")
TRAINS = re.compile(r"\b(train_run|train_runs|train_or_load|train_model)\(")
ARTIFACTS = ROOT / "test-artifacts" / "jupyterlab"
# role or directive text MyST would have rendered: `{name}` + backtick, ```{name}, :::
RAW_MYST = re.compile(r"\{eval\}|\{glue|\{doc\}|:::|\{[a-z][\w:-]*\}`|```\{")
LAB_TIMEOUT = 180  # seconds for the server to answer, the notebook to open


# ---- the JupyterLab a Binder reader gets -------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def lab_settings(config_dir):
    """Binder's JupyterLab settings (what binder/postBuild runs) in ``config_dir``,
    plus two for the test: no autosave (the repository's chapters are never
    rewritten) and every cell in the DOM (windowing off)."""
    env = dict(USER_ENV, JUPYTER_CONFIG_DIR=str(config_dir))
    for command in ([str(BIN / "jupytext-config"), "set-default-viewer", "markdown",
                     "myst"], [sys.executable, str(BINDER / "lab_settings.py")]):
        subprocess.run(command, env=env, check=True, capture_output=True, timeout=120)
    path = config_dir / "labconfig" / "default_setting_overrides.json"
    settings = json.loads(path.read_text())
    settings.setdefault("@jupyterlab/docmanager-extension:plugin", {})[
        "autosave"] = False
    settings.setdefault("@jupyterlab/notebook-extension:tracker", {})[
        "windowingMode"] = "none"
    path.write_text(json.dumps(settings, indent=2))


class ReaderLab:
    """``jupyter lab`` on 127.0.0.1 started as Binder starts it, on one core.

    Args:
        folder: a scratch folder (settings, runtime files, the reader's store).
        networks_url: ``ACTFNS_PRETRAINED_URL`` (the site's networks, or a dead URL).
        root: the repository the launch paths are relative to.
        extra_env: more environment for the server and its kernels.
    """

    def __init__(self, folder, networks_url, root=ROOT, extra_env=None):
        self.folder, self.root = Path(folder), Path(root)
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}/"
        config = self.folder / "jupyter-config"
        lab_settings(config)
        self.store = self.folder / "reader-store"
        skip = ("ACTFNS_CHECKPOINTS", "ACTFNS_PRETRAINED_URL", "ACTFNS_PROGRESS",
                "CPU_LIMIT")
        self.env = {k: v for k, v in USER_ENV.items()
                    if k not in skip and not k.endswith("_NUM_THREADS")}
        self.env.update(
            JUPYTER_CONFIG_DIR=str(config),
            JUPYTER_RUNTIME_DIR=str(self.folder / "runtime"),
            IPYTHONDIR=str(self.folder / "ipython"),
            ACTFNS_CHECKPOINTS=str(self.store), ACTFNS_PRETRAINED_URL=networks_url,
            ACTFNS_PROGRESS="1", PATH=f"{BIN}:{USER_ENV.get('PATH', '')}")
        self.env.update(extra_env or {})
        checkpoints = self.folder / "lab-checkpoints"  # not in the repository's book/
        command = ["taskset", "-c", "0", str(BINDER / "start"),
                   str(BIN / "jupyter-lab"), "--no-browser", "--ip=127.0.0.1",
                   f"--port={self.port}", "--ServerApp.port_retries=0",
                   f"--IdentityProvider.token={self.token}",
                   f"--ServerApp.root_dir={self.root}",
                   f"--FileCheckpoints.checkpoint_dir={checkpoints}"]
        if os.geteuid() == 0:
            command.append("--allow-root")
        self.log = open(self.folder / "jupyterlab.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(command, cwd=self.root, env=self.env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        self._wait_until_up()

    def api(self, path, method="GET"):
        request = urllib.request.Request(
            self.base + path, method=method,
            headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            body = response.read()
        return json.loads(body) if body else None

    def _wait_until_up(self):
        deadline = time.monotonic() + LAB_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {self.read_log()}")
            try:
                self.api("api/status")
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"jupyter lab did not answer in {LAB_TIMEOUT} s: "
                           f"{self.read_log()}")

    def read_log(self):
        self.log.flush()
        return (self.folder / "jupyterlab.log").read_text()[-4000:]

    def url(self, path):
        """The launch button's path in this server, with a fresh workspace."""
        return f"{self.base}lab/tree/{path}?token={self.token}&reset"

    def shutdown_kernels(self):
        for session in self.api("api/sessions") or []:
            self.api(f"api/sessions/{session['id']}", method="DELETE")

    def stop(self):
        with contextlib.suppress(OSError):
            self.shutdown_kernels()
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)
        self.log.close()


# ---- one chapter, as a reader runs it ------------------------------------------------

PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"
PROMPTS = f"{PANEL} .jp-CodeCell .jp-InputPrompt"
MARKDOWN = f"{PANEL} .jp-MarkdownCell .jp-InputArea > .myst"
# jupyterlab-myst writes an evaluated {eval} as a bare <span> (text) or a
# .myst-RenderedExpression (Markdown, HTML); unevaluated, it is <code>expression</code>
EVAL_VALUES_JS = """(sel) => {
  const values = [];
  for (const root of document.querySelectorAll(sel)) {
    for (const el of root.querySelectorAll("span, .myst-RenderedExpression")) {
      if (el.parentElement.closest(
          ".myst-RenderedExpression, .katex, .katex-display, pre, code, svg")) continue;
      if (el.classList.contains("myst-RenderedExpression")
          || (el.attributes.length === 0 && el.children.length === 0)) {
        values.push(el.textContent.trim());
      }
    }
  }
  return values;
}"""
UNRESOLVED = (f"{MARKDOWN} [title='Cross Reference Not Found'], "
              f"{MARKDOWN} [title='Citation Not Found']")
OUTPUTS = f"{PANEL} .jp-OutputArea-output"
# a code listing shown by a cell (af.show_source: highlighted HTML, or its Markdown
# form as jupyterlab-myst renders it)
LISTINGS = f"{OUTPUTS} .highlight, {OUTPUTS} .myst-code"
CELLS_JS = """(sel) => Array.from(document.querySelectorAll(sel)).map(cell => [
  (cell.querySelector(".jp-InputArea-editor .cm-content") || {}).textContent || "",
  Array.from(cell.querySelectorAll(".jp-OutputArea-output"))
    .filter(o => !o.querySelector(".highlight-python"))  // code listings
    .map(o => o.textContent)])"""
IMAGES_JS = """(sel) => Array.from(document.querySelectorAll(sel)).map(
  img => [img.getAttribute("src") ? img.getAttribute("src").slice(0, 40) : "",
          img.naturalWidth])"""


@dataclass
class ChapterRun:
    """What a reader saw in JupyterLab after "Run all"."""

    path: str
    problems: list = field(default_factory=list)
    markdown: list = field(default_factory=list)  # rendered text of Markdown cells
    values: list = field(default_factory=list)  # rendered {eval} values, in order
    outputs: list = field(default_factory=list)  # text of every output
    images: list = field(default_factory=list)  # [(src, natural width)]
    listings: int = 0  # highlighted code listings in outputs
    seconds: float = 0.0  # Run all, until every {eval} was evaluated


def timeout_of(source_path):
    """The chapter's execution timeout: its ``mystnb: execution_timeout``, else the
    book's ``execute: timeout``."""
    nb = jupytext.read(source_path)
    own = nb.metadata.get("mystnb", {}).get("execution_timeout")
    return int(own or CONFIG.get("execute", {}).get("timeout", 900))


# What the site renders and JupyterLab does not (one test page rendered by both,
# side by side: jupyter-book 1.0.4 + MyST-NB 1.4, JupyterLab 4.6 + jupyterlab-myst 2.7).
NOT_IN_LAB = {
    r"\{glue(:\w+)?\}`": "a glue role (shows its key in JupyterLab; use {eval})",
    r"\{doc\}`": "{doc} (a broken link in JupyterLab; use [text](other.md))",
    r"\{(literalinclude)\}": "literalinclude (nothing shows in JupyterLab; show the "
                              "code from a cell, af.show_source)",
    r"\{numref\}`": "{numref} (shown as not found in JupyterLab)",
    r"\{term\}`": "{term} (no glossary in JupyterLab)",
    r"\{margin\}": "a margin (overlaps the text in JupyterLab; use a note)",
}


def myst_not_in_lab(source_path):
    """``[(construct, why)]``: what the chapter's Markdown uses that JupyterLab
    cannot show."""
    nb = jupytext.read(source_path)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return [(m.group(0), why) for pattern, why in NOT_IN_LAB.items()
            for m in [re.search(pattern, text)] if m]


def run_in_lab(browser, lab, source_path, timeout=None):  # noqa: F811
    """Open ``source_path`` by its launch path in ``lab``, Run all, and collect what
    the page shows. Never raises for what the chapter does wrong: see ``problems``."""
    path = Path(source_path).relative_to(lab.root).as_posix()
    run, timeout = ChapterRun(path), timeout or timeout_of(source_path)
    run.problems += [f"uses {what}: {why}"
                     for what, why in myst_not_in_lab(source_path)]
    expressions = eval_expressions(source_path)
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.on("pageerror", lambda err: run.problems.append(f"page error: {err}"))
    try:
        page.goto(lab.url(path))
        page.wait_for_selector(f"{PANEL} .jp-Cell", timeout=LAB_TIMEOUT * 1000)
        if not _kernel_ready(page, run):
            return run
        start = time.monotonic()
        page.click(".lm-MenuBar-itemLabel:text-is('Run')")
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')")
        _wait_for_cells(page, run, timeout)
        _wait_for_evals(page, run, expressions)
        run.seconds = time.monotonic() - start
        _collect(page, run)
    except Exception as err:  # a timeout or a vanished page: report, with a picture
        run.problems.append(f"{type(err).__name__}: {str(err).splitlines()[0]}")
    finally:
        if run.problems:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(Exception):
                page.screenshot(path=str(ARTIFACTS / (path.replace("/", "_") + ".png")))
        context.close()
        with contextlib.suppress(OSError):
            lab.shutdown_kernels()
    return run


def _kernel_ready(page, run):
    """Wait for the kernel to start; report a kernel dialog instead."""
    deadline = time.monotonic() + LAB_TIMEOUT
    status = ""
    while time.monotonic() < deadline:
        if page.locator(".jp-Dialog").count():
            text = page.locator(".jp-Dialog").inner_text().replace("\n", " | ")
            run.problems.append(f"a dialog asks the reader first: {text}")
            return False
        status = page.locator("#jp-main-statusbar").inner_text()
        if "Idle" in status and "No Kernel" not in status:
            return True
        time.sleep(0.3)
    run.problems.append(f"the kernel did not start (status bar: {status!r})")
    return False


def _wait_for_cells(page, run, timeout):
    deadline, prompts = time.monotonic() + timeout, []
    time.sleep(1)
    while time.monotonic() < deadline:
        prompts = page.locator(PROMPTS).all_inner_texts()
        if not any("*" in p for p in prompts):
            break
        time.sleep(1)
    else:
        run.problems.append(f"Run all did not finish in {timeout} s")
    unrun = sum(1 for p in prompts if p.strip() and not re.search(r"\[\d+\]", p))
    if unrun:
        run.problems.append(f"{unrun} code cell(s) did not run (an error stops "
                            "Run all)")


def _wait_for_evals(page, run, expressions, wait=60):
    """jupyterlab-myst evaluates the page's {eval} roles after the last cell ran; an
    unevaluated one shows its expression as inline code."""
    deadline, left = time.monotonic() + wait, []
    while time.monotonic() < deadline:
        shown = set(page.locator(f"{MARKDOWN} code").all_text_contents())
        left = [expr for expr in expressions if expr in shown]
        if not left:
            return
        time.sleep(0.5)
    run.problems.append(f"{len(left)} of {len(expressions)} {{eval}} roles were not "
                        f"evaluated, e.g. {left[0]!r} (jupyterlab-myst evaluates none "
                        "after an error)")


def _collect(page, run):
    run.markdown = page.locator(MARKDOWN).all_text_contents()
    run.values = page.evaluate(EVAL_VALUES_JS, MARKDOWN)
    cells = page.evaluate(CELLS_JS, f"{PANEL} .jp-CodeCell")
    run.outputs = [text for _, outputs in cells for text in outputs]
    run.images = page.evaluate(IMAGES_JS, f"{PANEL} .jp-OutputArea-output img")
    run.listings = page.locator(LISTINGS).count()
    for text in run.markdown:
        raw = RAW_MYST.search(text)
        if raw:
            at = text[max(0, raw.start() - 40):raw.end() + 40].replace("\n", " ")
            run.problems.append(f"raw MyST in the rendered Markdown: ...{at}...")
    for element in page.locator(UNRESOLVED).all():
        run.problems.append(f"shown as not found: {element.get_attribute('title')} "
                            f"{element.text_content().strip()!r}")
    for code, outputs in cells:
        # as on the site (test_site.py): an exception the cell catches to show it is
        # no error; a traceback always is
        caught = re.search(r"\bexcept\b", code)
        for text in outputs:
            if "Traceback (most recent call last)" in text or (not caught and re.search(
                    r"^\s*\w*(Error|Exception|Warning)\b:", text, re.M)):
                first = next((line for line in text.splitlines()
                              if re.search(r"(Error|Exception|Warning)\b", line)), "")
                run.problems.append(
                    f"an output reports an error or warning: {first[:200]}")
    broken = [src for src, width in run.images if not width]
    if broken:
        run.problems.append(f"{len(broken)} figure(s) did not load: {broken[:3]}")


# ---- the built site's page ---------------------------------------------------------

@dataclass
class SitePage:
    values: list  # the {eval} values MyST-NB wrote as text, in order
    images: int
    listings: int


def site_page(html_path):
    soup = BeautifulSoup(Path(html_path).read_text(encoding="utf-8"), "html.parser")
    body = soup.find("article") or soup
    values = eval_values(body)
    images = len(body.select("div.cell_output img"))
    # af.show_source's HTML (MyST-NB also wraps text outputs in div.highlight)
    listings = len(body.select("div.cell_output div.highlight-python > div.highlight"))
    return SitePage(values, images, listings)


def compare_with_site(run, site_page, expressions, timed_page=False):
    """Problems: ``{eval}`` values that differ from the site's; fewer figures or code
    listings than the site shows."""
    problems = []
    if run.problems:
        return problems  # the values of a failed run say nothing more
    if len(run.images) < site_page.images:
        problems.append(f"{len(run.images)} figures shown, the site shows "
                        f"{site_page.images}")
    if run.listings < site_page.listings:
        problems.append(f"{run.listings} code listings shown, the site shows "
                        f"{site_page.listings}")
    if timed_page:
        return problems
    if not (len(run.values) == len(site_page.values) == len(expressions)):
        problems.append(
            f"{len(expressions)} {{eval}} roles: JupyterLab shows {len(run.values)} "
            f"values, the site {len(site_page.values)} as text (an {{eval}} whose "
            "value is Markdown or HTML has no text form on the site: format it as a "
            "string)")
        return problems
    for expr, lab_value, site_value in zip(expressions, run.values, site_page.values):
        if lab_value != site_value and not MACHINE_STATE.search(expr):
            problems.append(f"{{eval}}`{expr}` is {lab_value!r} in JupyterLab, "
                            f"{site_value!r} on the site")
    return problems


# ---- fixtures ------------------------------------------------------------------------

@pytest.fixture(scope="session")
def networks(site, tmp_path_factory):  # noqa: F811
    """The built site's networks folder; when the site was built without one, the
    build's store published as the Pages workflow publishes it."""
    folder = site / "networks"
    if (folder / "manifest.json").is_file():
        return folder
    folder = tmp_path_factory.mktemp("site") / "networks"
    result = subprocess.run([sys.executable, "-m", "actfns", "runs", "publish",
                             str(folder)], env=USER_ENV, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return folder


@pytest.fixture(scope="module")
def lab_with_networks(networks, tmp_path_factory):
    with serve(networks) as url:
        lab = ReaderLab(tmp_path_factory.mktemp("lab"), url)
        try:
            yield lab
        finally:
            lab.stop()


@pytest.fixture(scope="module")
def lab_offline(tmp_path_factory):
    lab = ReaderLab(tmp_path_factory.mktemp("lab-offline"), closed_port_url())
    try:
        yield lab
    finally:
        lab.stop()


def trains(docname):
    return any(cell.cell_type == "code" and TRAINS.search(cell.source)
               for cell in read_notebook(docname).cells)


TRAINING_CHAPTERS = [name for name in CHAPTERS if trains(name)]
# what a training page says its networks cost to train (af.run_cost, at its top)
STATED_COST = re.compile(r"Training them from scratch takes about (\d+) minutes")


def cheapest_training_chapter(site):
    """The training chapter whose built page states the fewest minutes of training
    (the offline test trains its networks, on one core)."""
    costs = {}
    for name in TRAINING_CHAPTERS:
        text = " ".join(BeautifulSoup((site / f"{name}.html").read_text(
            encoding="utf-8"), "html.parser").get_text().split())
        found = STATED_COST.search(text)
        if found:
            costs[name] = int(found[1])
    assert costs, ("no training chapter states its training cost ('Training them "
                   "from scratch takes about N minutes')")
    return min(costs, key=costs.get)


# ---- the tests ---------------------------------------------------------------------

def test_chapters_and_training_chapters_are_found():
    assert CHAPTERS, "no executable chapter found from _toc.yml"
    assert TRAINING_CHAPTERS, "no chapter trains a network: the fallback test is void"


def test_jupyterlab_is_the_binder_images():
    """The versions this test runs are the ones binder/requirements.txt installs."""
    from importlib.metadata import version

    pinned = {}
    for line in (BINDER / "requirements.txt").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)$", line.strip())
        if m:
            pinned[m[1].lower().replace("_", "-")] = m[2]
    for name in ("jupyterlab", "jupyterlab-myst", "jupytext", "ipykernel"):
        assert version(name) == pinned[name], (
            f"{name} {version(name)} is installed, Binder installs {pinned[name]}")


@pytest.mark.slow
@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_runs_in_jupyterlab_as_on_the_site(docname, browser,  # noqa: F811
                                                   lab_with_networks, site):  # noqa: F811
    source = source_of(docname)
    run = run_in_lab(browser, lab_with_networks, source)
    problems = run.problems + compare_with_site(
        run, site_page(site / f"{docname}.html"), eval_expressions(source),
        timed_page=docname in TIMED_PAGES)
    assert not problems, (f"{docname} in JupyterLab ({run.seconds:.0f} s):\n  "
                          + "\n  ".join(problems))


@pytest.mark.slow
def test_training_chapter_without_the_network_source(browser, lab_offline, site):
    """The published networks cannot be reached: the chapter says why it trains,
    trains, and still runs to the end (the chapter that trains least, in full)."""
    docname = cheapest_training_chapter(site)
    run = run_in_lab(browser, lab_offline, source_of(docname))
    said = [t for t in run.outputs if "cannot reach" in t and "training it" in t]
    problems = list(run.problems)
    if not said:
        problems.append("no output says why the networks are trained ('cannot reach "
                        "... training it'); outputs: "
                        + " | ".join(t[:80] for t in run.outputs[:8]))
    assert not problems, f"{docname} offline:\n  " + "\n  ".join(problems)


def test_the_repository_chapters_hold_no_stored_eval_values():
    """JupyterLab writes the values of ``{eval}`` roles into the ``.md`` when a reader
    saves; a chapter committed that way shows stale numbers."""
    stored = [name for name in CHAPTERS
              if "user_expressions" in source_of(name).read_text(encoding="utf-8")]
    assert not stored, f"chapters with stored {{eval}} values: {stored}"


# ---- the harness itself, on pages of its own ----------------------------------------

HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""
GOOD_PAGE = HEADER + '''
# A page both render

```{code-cell} ipython3
import matplotlib.pyplot as plt
import actfns as af

%matplotlib inline
acc, epochs = 0.87345, 42
```

The network reaches {eval}`f"{acc:.1%}"` after {eval}`epochs` epochs.

:::{note}
Twice as many epochs: {eval}`2 * epochs`. A link to [this page](good.md).
:::

```{code-cell} ipython3
af.show_source(af.Sigmoid)
```

```{code-cell} ipython3
fig, ax = plt.subplots(figsize=(3, 2))
ax.plot([0, 1], [0, acc])
plt.show()
```
'''
BAD_PAGE = HEADER + '''
# A page only the site renders

```{code-cell} ipython3
from myst_nb import glue

x = 5
glue("gx", x, display=False)
```

Glued {glue:text}`gx`, evaluated {eval}`x`, see {doc}`good`.

```{code-cell} ipython3
1 / 0
```

```{code-cell} ipython3
print("never runs")
```
'''
BOOK_CONFIG = """
title: harness
only_build_toc_files: true
execute: {execute_notebooks: inline, timeout: 300}
parse: {myst_enable_extensions: [colon_fence, dollarmath]}
sphinx:
  config:
    nb_execution_mode: inline
    nb_eval_name_regex: '^.+$'
"""


@pytest.mark.slow
def test_harness_passes_a_good_page_and_catches_a_bad_one(browser, tmp_path):  # noqa: F811
    """The checks can fail: a page using glue, {doc} and raising fails them, a page
    written for both passes them, with the site's values."""
    repo = tmp_path / "repo"
    (repo / "book").mkdir(parents=True)
    (repo / "_config.yml").write_text(BOOK_CONFIG)
    (repo / "book" / "_toc.yml").write_text("format: jb-book\nroot: good\n")
    (repo / "book" / "good.md").write_text(GOOD_PAGE)
    build = subprocess.run([str(BIN / "jupyter-book"), "build", "book", "-W"],
                           cwd=repo, env=USER_ENV, capture_output=True, text=True,
                           timeout=600)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (repo / "book" / "bad.md").write_text(BAD_PAGE)  # after the build: -W fails on it
    site_good = site_page(repo / "_build" / "html" / "good.html")
    assert site_good.values == ["87.3%", "42", "84"]
    assert site_good.images == 1 and site_good.listings == 1

    lab = ReaderLab(tmp_path / "lab", closed_port_url(), root=repo)
    try:
        good = run_in_lab(browser, lab, repo / "book" / "good.md", timeout=300)
        bad = run_in_lab(browser, lab, repo / "book" / "bad.md", timeout=300)
    finally:
        lab.stop()

    expressions = eval_expressions(repo / "book" / "good.md")
    assert good.problems == [], good.problems
    assert good.values == ["87.3%", "42", "84"]
    assert compare_with_site(good, site_good, expressions) == []
    wrong = SitePage(["87.4%", "42", "84"], 1, 1)
    assert compare_with_site(good, wrong, expressions) == [
        "{eval}`f\"{acc:.1%}\"` is '87.3%' in JupyterLab, '87.4%' on the site"]
    assert compare_with_site(good, SitePage(site_good.values, 2, 1), expressions) == [
        "1 figures shown, the site shows 2"]

    found = "\n".join(bad.problems)
    for expected in ("uses {glue:text}`", "uses {doc}`", "did not run",
                     "{eval} roles were not evaluated",
                     "an output reports an error or warning: ZeroDivisionError"):
        assert expected in found, f"{expected!r} not reported:\n{found}"
    assert (repo / "book" / "bad.md").read_text() == BAD_PAGE, "the page was rewritten"
