"""Binder: every chapter runs as a notebook, as a reader pressing "Run all" would.

Each page of ``_toc.yml`` that is a notebook is converted with jupytext and executed
top to bottom in a fresh kernel, from a fresh empty working folder (a Binder user's
folder holds no build output). The Binder configuration itself is checked too:
CPU-only torch of the tested versions, the pinned environment, the postBuild that
makes JupyterLab open MyST markdown as notebooks, and the Python version.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbclient
import pytest
import yaml
from book_helpers import ROOT, USER_ENV, docnames, notebook_docnames, source_of

BINDER = ROOT / "binder"
CHAPTERS = notebook_docnames()


def pins(path):
    """``{name: version}`` for the ``name==version`` lines of a requirements file."""
    found = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line.split("#")[0].strip())
        if m:
            found[m[1].lower()] = m[2]
    return found


@pytest.mark.slow
@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_runs_top_to_bottom_in_fresh_kernel(docname, tmp_path):
    nb = jupytext.read(source_of(docname))
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    timeout = config.get("execute", {}).get("timeout", 600)
    workdir = tmp_path / "binder-user"
    workdir.mkdir()
    client = nbclient.NotebookClient(
        nb, timeout=timeout, kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}})
    env = dict(USER_ENV, ACTFNS_PROGRESS="0")
    try:
        client.execute(env=env)
    except nbclient.exceptions.CellExecutionError as err:
        pytest.fail(f"{docname}: 'Run all' stops with an error:\n{err}", pytrace=False)
    errors = [out for cell in nb.cells if cell.cell_type == "code"
              for out in cell.get("outputs", []) if out.get("output_type") == "error"
              and "raises-exception" not in cell.metadata.get("tags", [])]
    assert not errors, f"{docname}: error outputs {errors}"


def test_chapters_are_found():
    """The toc lists executable chapters (the test above is not vacuous)."""
    assert len(CHAPTERS) >= 1, "no executable chapter found from _toc.yml"


@pytest.mark.parametrize("docname", docnames())
def test_every_toc_entry_has_a_source(docname):
    assert source_of(docname).is_file()


def test_binder_installs_cpu_torch_of_the_tested_versions():
    top, binder = pins(ROOT / "requirements.txt"), pins(BINDER / "requirements.txt")
    text = (BINDER / "requirements.txt").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text
    assert re.search(r"^-r \.\./requirements\.txt$", text, re.M), (
        "binder/requirements.txt must install the pinned environment")
    for name in ("torch", "torchvision"):
        assert binder[name] == f"{top[name]}+cpu", (
            f"binder pins {name}=={binder[name]}, the tested version is {top[name]}")


def test_requirements_install_the_package_with_its_extras():
    lines = (ROOT / "requirements.txt").read_text().splitlines()
    assert "-e .[book,test]" in lines
    assert pins(ROOT / "requirements.txt")["jupyter-book"].startswith("1.")


def test_requirements_pin_the_tested_environment():
    """Every package actfns[book,test] needs is pinned, at the installed version."""
    result = subprocess.run([sys.executable, str(ROOT / ".ci" / "pin_requirements.py")],
                            capture_output=True, text=True, check=True)
    wanted = {k.lower(): v for k, v in (
        line.split("==") for line in result.stdout.splitlines() if "==" in line)}
    pinned = pins(ROOT / "requirements.txt")
    missing = sorted(set(wanted) - set(pinned))
    assert not missing, f"requirements.txt lacks {missing}"
    differ = {k: (pinned[k], v) for k, v in wanted.items() if pinned[k] != v}
    assert not differ, (
        f"requirements.txt pins differ from this environment (pinned, installed): "
        f"{differ}; run `.venv/bin/python .ci/pin_requirements.py > requirements.txt`")


def test_binder_python_is_the_ci_python():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    version = re.search(r"python-version:\s*\"?([\d.]+)", workflow)[1]
    assert runtime == f"python-{version}"


def test_postbuild_opens_markdown_as_notebooks(tmp_path):
    """Run binder/postBuild as repo2docker does; JupyterLab's settings must then
    open MyST markdown with jupytext's notebook viewer."""
    postbuild = BINDER / "postBuild"
    assert os.access(postbuild, os.X_OK), "binder/postBuild must be executable"
    env = dict(USER_ENV, JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter"),
               ACTFNS_DATA=str(tmp_path / "data"),
               PATH=f"{Path(sys.executable).parent}:{USER_ENV.get('PATH', '')}")
    result = subprocess.run([str(postbuild)], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    settings = json.loads((tmp_path / "jupyter" / "labconfig" /
                           "default_setting_overrides.json").read_text())
    viewers = settings["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers["markdown"] == viewers["myst"] == "Jupytext Notebook"
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    assert len(list(raw.glob("*-ubyte"))) == 4, "postBuild did not fetch FashionMNIST"
