"""Sphinx extension: execute the chapters two at a time.

MyST-NB executes a chapter while Sphinx reads it, one chapter after another. About
half of a warm rebuild (checkpoints present) is fixed cost per chapter: starting a
kernel and importing torch, single-threaded. Reading with Sphinx's parallel reader
overlaps those costs: a warm rebuild on 2 cores drops from about 120 s to about 80 s.

- Jobs: ``$ACTFNS_BUILD_JOBS`` (``1``: one chapter at a time, as plain Sphinx does);
  default 2 where the machine has 2 or more CPUs. ``sphinx-build -j N`` is respected.
- Threads: every kernel keeps torch's default thread count, so a chapter computes
  bit-for-bit what it computes alone (a different thread count changes the rounding of
  the matrix multiplications). Two kernels with spinning OpenMP threads on the same
  cores slow each other down several times over, so the kernels get
  ``OMP_WAIT_POLICY=PASSIVE`` (idle threads sleep) unless it is set already; measured
  on 2 cores, two such trainings side by side do an epoch each in 2.35 s, i.e. 1.18 s
  per epoch overall, against 1.34 s for one training alone.
- Schedule: one chapter per task, so a free worker takes the next chapter, in the order
  of ``actfns_execution_order`` (chapters not listed come last). The order matters in a
  cold build: the chapter that trains the course's six networks starts first, and the
  chapters that only load them come last, so that no worker waits long for a network
  that the other worker is training. Sphinx's ``ParallelTasks`` starts waiting tasks
  last in, first out (``dict.popitem``), which ran that order backwards after the first
  two chapters: a cold build had the conclusion chapter wait 450 s for the training
  chapter's networks while eleven chapters queued behind it. ``FifoParallelTasks``
  starts them in order.
- ``actfns_execute_alone``: chapters executed on their own, before the others (the speed
  appendix: its live measurements must not share the CPU with another chapter).
- Trained networks: two kernels that need the same network do not both train it;
  ``actfns.train_or_load`` holds a lock per checkpoint while it trains.

Two extensions that Jupyter Book loads do not declare whether they are safe for
parallel reading, so Sphinx would warn and read serially. Both were checked
(sphinx-multitoc-numbering 0.1.3 replaces the section-numbering method that runs after
reading; sphinx-jupyterbook-latex 1.0 adds LaTeX-only transforms and config handlers)
and keep no per-document state, so they are marked safe here.

Fenced (book/_ext/checked_versions.py): all of this is applied only with the Sphinx,
MyST-NB and extension versions it was checked with; otherwise chapters run one at a
time, as plain Sphinx runs them, and the build warns. What lets each piece go:
- ``one_per_chunk`` and ``FifoParallelTasks``: a Sphinx that hands out parallel work
  from a queue in order (sphinx-doc/sphinx#6330, pull request sphinx-doc/sphinx#13738,
  open);
- ``mark_checked_safe``: the two extensions declaring ``parallel_read_safe``
  (executablebooks/sphinx-multitoc-numbering#27, open; sphinx-jupyterbook-latex has
  no issue yet);
- the schedule itself stays while MyST-NB executes pages one by one as Sphinx reads
  them (no parallel execution of its own).
"""

import contextlib
import os

import checked_versions
import sphinx.builders
import sphinx.util.parallel
from sphinx.util import logging

logger = logging.getLogger(__name__)

CHECKED_SAFE = ("sphinx_multitoc_numbering", "sphinx_jupyterbook_latex")
PATCH = "parallel chapter execution (book/_ext/parallel_execution.py)"
PACKAGES = ("sphinx", "myst-nb", "sphinx-multitoc-numbering",
            "sphinx-jupyterbook-latex")
USER_WAIT_POLICY = os.environ.get("OMP_WAIT_POLICY")


def set_wait_policy(value):
    if value is None:
        os.environ.pop("OMP_WAIT_POLICY", None)
    else:
        os.environ["OMP_WAIT_POLICY"] = value


@contextlib.contextmanager
def wait_policy(value):
    """``$OMP_WAIT_POLICY`` (None: unset) for the kernels started inside."""
    before = os.environ.get("OMP_WAIT_POLICY")
    set_wait_policy(value)
    try:
        yield
    finally:
        set_wait_policy(before)


def default_jobs():
    value = os.environ.get("ACTFNS_BUILD_JOBS")
    if value is None:
        return 2 if (os.cpu_count() or 1) >= 2 else 1
    try:
        jobs = int(value)
    except ValueError:
        jobs = 0
    if jobs < 1:
        raise ValueError(f"ACTFNS_BUILD_JOBS must be a whole number >= 1 (1: one "
                         f"chapter at a time); got {value!r}")
    return jobs


class _FirstInFirstOut(dict):
    def popitem(self):
        key = next(iter(self))
        return key, self.pop(key)


class FifoParallelTasks(sphinx.util.parallel.ParallelTasks):
    """Sphinx's ``ParallelTasks``, starting waiting tasks in the order they came."""

    def __init__(self, nproc):
        super().__init__(nproc)
        self._precvsWaiting = _FirstInFirstOut()


def one_per_chunk(docnames, nproc, maxbatch=10):
    """Replaces Sphinx's batching: each document is a task of its own."""
    return [[docname] for docname in docnames]


def mark_checked_safe(app, config):
    for name in CHECKED_SAFE:
        extension = app.extensions.get(name)
        if extension is not None and extension.parallel_read_safe is None:
            extension.parallel_read_safe = True


def schedule(app, env, docnames):
    """Slow chapters first; the chapters that run alone are read here, serially."""
    if app.parallel <= 1:
        return
    order = list(app.config.actfns_execution_order)
    docnames.sort(key=lambda d: order.index(d) if d in order else len(order))
    alone = [d for d in app.config.actfns_execute_alone if d in docnames]
    with wait_policy(USER_WAIT_POLICY):  # alone, a kernel's threads may spin
        for docname in alone:
            logger.info("executing %s on its own", docname)
            app.emit("env-purge-doc", env, docname)
            env.clear_doc(docname)
            app.builder.read_doc(docname)
            docnames.remove(docname)
    env.actfns_read_alone = alone


def report_alone(app, env):
    """Docs read by ``schedule`` still count as updated (so they are written)."""
    alone = getattr(env, "actfns_read_alone", [])
    env.actfns_read_alone = []
    return alone


def setup(app):
    app.setup_extension("checked_versions")
    app.add_config_value("actfns_execution_order", [], "env", [list])
    app.add_config_value("actfns_execute_alone", [], "env", [list])
    if not checked_versions.allowed(app, PATCH + ": chapters run one at a time",
                                    PACKAGES):
        return {"parallel_read_safe": True, "parallel_write_safe": True}
    if app.parallel <= 1:
        app.parallel = default_jobs()
    if app.parallel > 1:
        set_wait_policy(USER_WAIT_POLICY or "PASSIVE")
        sphinx.builders.make_chunks = one_per_chunk
        sphinx.builders.ParallelTasks = FifoParallelTasks
    app.connect("config-inited", mark_checked_safe)
    app.connect("env-before-read-docs", schedule, priority=900)
    app.connect("env-updated", report_alone, priority=100)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
