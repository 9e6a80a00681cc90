"""book/_ext/parallel_execution.py: how many chapters run at once, and in what order;
the fence that switches the patches of book/_ext off outside the versions they were
checked with (book/_ext/checked_versions.py), with one warning; and the site's assets
(book/_ext/site_assets.py).

That the built book really executed two chapters at a time, with the speed appendix
alone, is checked on the real build in test_site.py.
"""

import json
import re
import sys
import tomllib
from types import SimpleNamespace

import pytest
from book_helpers import ROOT

sys.path.insert(0, str(ROOT / "book" / "_ext"))
import build_fixes  # noqa: E402
import checked_versions  # noqa: E402
import parallel_execution as pe  # noqa: E402
import site_assets  # noqa: E402


@pytest.mark.parametrize("cpus, jobs", [(1, 1), (2, 2), (16, 2), (None, 1)])
def test_default_jobs_is_two_where_there_are_two_cpus(monkeypatch, cpus, jobs):
    monkeypatch.delenv("ACTFNS_BUILD_JOBS", raising=False)
    monkeypatch.setattr(pe.os, "cpu_count", lambda: cpus)
    assert pe.default_jobs() == jobs


def test_jobs_from_the_environment(monkeypatch):
    monkeypatch.setenv("ACTFNS_BUILD_JOBS", "3")
    assert pe.default_jobs() == 3


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", ""])
def test_bad_jobs_value_is_refused_with_what_to_set(monkeypatch, value):
    monkeypatch.setenv("ACTFNS_BUILD_JOBS", value)
    with pytest.raises(ValueError, match=r"ACTFNS_BUILD_JOBS must be a whole number"):
        pe.default_jobs()


def test_each_chapter_is_a_task_of_its_own():
    assert pe.one_per_chunk(["a", "b", "c"], nproc=2) == [["a"], ["b"], ["c"]]


def test_schedule_puts_listed_chapters_first_in_their_order():
    config = SimpleNamespace(actfns_execution_order=["slow", "slower", "missing"],
                             actfns_execute_alone=[])
    app = SimpleNamespace(parallel=2, config=config)
    env = SimpleNamespace()
    docnames = ["a", "slower", "b", "slow"]
    pe.schedule(app, env, docnames)
    assert docnames == ["slow", "slower", "a", "b"]
    assert pe.report_alone(app, env) == []


def test_wait_policy_is_restored(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    with pe.wait_policy(None):
        assert "OMP_WAIT_POLICY" not in pe.os.environ
    assert pe.os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def _start_order(tasks_class, n=5):
    """Order in which ``tasks_class(1)`` runs n tasks added in order 0..n-1."""
    order = []
    tasks = tasks_class(1)
    for i in range(n):
        tasks.add_task(lambda arg: arg, i, lambda arg, result: order.append(result))
    tasks.join()
    return order


def test_waiting_chapters_start_in_the_order_they_were_added():
    assert _start_order(pe.FifoParallelTasks) == [0, 1, 2, 3, 4]
    # why the class exists: Sphinx's own starts the waiting ones last in, first out
    # (if this fails, Sphinx has changed and FifoParallelTasks may be dropped)
    assert _start_order(pe.sphinx.util.parallel.ParallelTasks) == [0, 4, 3, 2, 1]


# ---- the fence around the patches (book/_ext/checked_versions.py) -------------------


def requirement_pins(lines):
    """``{normalised name: version}`` of ``name==version`` lines (extras dropped)."""
    pins = {}
    for line in lines:
        match = re.match(r"^\s*([A-Za-z0-9_.-]+)(\[[^\]]*\])?==([^\s;#]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match[1]).lower()] = match[3]
    return pins


def test_checked_versions_are_the_pinned_ones():
    """CHECKED, requirements.txt and the book extra of pyproject.toml name the same
    versions: bumping one without the others fails here, before any build."""
    required = requirement_pins((ROOT / "requirements.txt").read_text().splitlines())
    extra = requirement_pins(tomllib.loads((ROOT / "pyproject.toml").read_text())
                             ["project"]["optional-dependencies"]["book"])
    for package, version in checked_versions.CHECKED.items():
        assert required.get(package) == version, (package, required.get(package))
    for package in ("sphinx", "myst-nb", "jupyter-book"):
        assert extra.get(package) == checked_versions.CHECKED[package], (
            f"pyproject.toml's book extra pins {package}=={extra.get(package)}, "
            f"book/_ext/checked_versions.py was checked with "
            f"{checked_versions.CHECKED[package]}")


def test_installed_versions_are_the_checked_ones():
    assert checked_versions.unchecked(checked_versions.CHECKED) == {}


def test_unchecked_names_what_differs(monkeypatch):
    monkeypatch.setitem(checked_versions.CHECKED, "sphinx", "0.0.1")
    assert checked_versions.unchecked(["sphinx", "myst-nb"]) == {
        "sphinx": checked_versions.installed("sphinx")}
    with pytest.raises(KeyError):
        checked_versions.unchecked(["a-package-no-patch-was-checked-with"])


def sphinx_project(tmp_path, extensions, parallel=0):
    """A one-page Sphinx project using ``extensions``; returns (app, warnings)."""
    import io

    from sphinx.application import Sphinx

    src = tmp_path / "src"
    src.mkdir()
    (src / "conf.py").write_text(f"extensions = {extensions!r}\n")
    (src / "index.rst").write_text("Probe\n=====\n\nText.\n")
    warnings = io.StringIO()
    app = Sphinx(str(src), str(src), str(tmp_path / "out"), str(tmp_path / "doctrees"),
                 "html", status=io.StringIO(), warning=warnings, parallel=parallel)
    return app, warnings


def test_patches_switch_off_with_one_warning(tmp_path, monkeypatch):
    monkeypatch.setitem(checked_versions.CHECKED, "sphinx", "0.0.1")
    monkeypatch.delenv("ACTFNS_BUILD_JOBS", raising=False)
    original = (pe.sphinx.builders.make_chunks, pe.sphinx.builders.ParallelTasks)
    app, warnings = sphinx_project(tmp_path, ["parallel_execution", "build_fixes"])
    app.build()
    text = warnings.getvalue()
    assert text.count("these patches are switched off") == 1, text
    assert "parallel chapter execution" in text and "build_fixes.py, 1." in text
    assert f"sphinx 0.0.1 (found {checked_versions.installed('sphinx')})" in text
    # nothing was patched or connected
    assert original == (pe.sphinx.builders.make_chunks,
                        pe.sphinx.builders.ParallelTasks)
    assert app.parallel <= 1
    handlers = [listener.handler for listeners in app.events.listeners.values()
                for listener in listeners]
    for fix in build_fixes.FIXES:
        assert fix[3] not in handlers


def test_patches_apply_with_the_checked_versions(tmp_path, monkeypatch):
    monkeypatch.setenv("ACTFNS_BUILD_JOBS", "2")
    for name in ("make_chunks", "ParallelTasks"):  # restored after the test
        monkeypatch.setattr(pe.sphinx.builders, name, getattr(pe.sphinx.builders, name))
    app, warnings = sphinx_project(tmp_path, ["parallel_execution", "build_fixes"])
    assert "switched off" not in warnings.getvalue()
    assert pe.sphinx.builders.make_chunks is pe.one_per_chunk
    assert pe.sphinx.builders.ParallelTasks is pe.FifoParallelTasks
    assert app.parallel == 2
    handlers = [listener.handler for listeners in app.events.listeners.values()
                for listener in listeners]
    for fix in build_fixes.FIXES:
        assert fix[3] in handlers


# ---- book/_ext/site_assets.py -------------------------------------------------------

def test_repository_comes_from_github_actions(monkeypatch):
    """A fork's build (``$GITHUB_REPOSITORY`` on Actions) points the buttons at the
    fork; elsewhere _config.yml's repository stays."""
    config = SimpleNamespace(html_theme_options={
        "repository_url": "https://github.com/actfns/actfns"})
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    site_assets.repository_from_environment(None, config)
    assert config.html_theme_options["repository_url"] == (
        "https://github.com/actfns/actfns")
    monkeypatch.setenv("GITHUB_REPOSITORY", "someone/actfns-fork")
    monkeypatch.setenv("GITHUB_SERVER_URL", "https://github.com")
    site_assets.repository_from_environment(None, config)
    assert config.html_theme_options["repository_url"] == (
        "https://github.com/someone/actfns-fork")


def test_mathjax_copy_is_the_pinned_one():
    """The MathJax the site serves: MathJax 3 from the pinned wheel, with every file
    the copy step names."""
    source = site_assets.mathjax_source()
    assert json.loads((source / "package.json").read_text())["version"].startswith("3.")
    for name in site_assets.MATHJAX_FILES:
        assert (source / "es5" / name).exists(), name
