"""The README tells the truth: its Python example runs, its picture is current, and the
commands and paths it names exist."""

import re
import subprocess
import sys

import matplotlib.image
import numpy as np
import pytest
from book_helpers import ROOT, USER_ENV, html_dir

README = (ROOT / "README.md").read_text()


def section(title):
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"README has no '## {title}' section"
    return match[1]


def code_blocks(text, language):
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


@pytest.mark.slow
def test_python_example_runs(tmp_path):
    """Runs as a user would, in an empty folder, with the user's data and checkpoint
    folders (the network it trains is the book's, usually already cached)."""
    [example] = code_blocks(section("Use actfns from Python"), "python")
    script = tmp_path / "example.py"
    script.write_text(example)
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path,
                            env=dict(USER_ENV, ACTFNS_PROGRESS="0", MPLBACKEND="Agg"),
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test accuracy" in result.stdout
    assert (tmp_path / "activations.png").stat().st_size > 0


def test_picture_is_current(tmp_path):
    """docs/activation_functions.png is what docs/readme_figure.py draws today."""
    committed = ROOT / "docs" / "activation_functions.png"
    assert f"]({committed.relative_to(ROOT).as_posix()})" in README
    fresh = tmp_path / "fresh.png"
    script = ROOT / "docs" / "readme_figure.py"
    subprocess.run([sys.executable, str(script), str(fresh)], check=True,
                   env=dict(USER_ENV, MPLBACKEND="Agg"))
    old, new = matplotlib.image.imread(committed), matplotlib.image.imread(fresh)
    assert old.shape == new.shape and np.array_equal(old, new), (
        "docs/activation_functions.png is out of date: run `make readme-figure`")


def test_named_paths_and_variables_exist():
    assert html_dir().relative_to(ROOT).as_posix() + "/" in README
    for path in ("requirements.txt", "binder/postBuild", ".ci/run", "LICENSE",
                 "docs/activation_functions.png", "_config.yml", "_toc.yml"):
        assert path in README and (ROOT / path).exists(), path
    for name in ("ACTFNS_DATA", "ACTFNS_CHECKPOINTS", "dataset-fashion-mnist"):
        assert name in README
    assert "benchmarks/README.md" in section("Speed")


def test_setup_is_two_commands():
    setup = section("Set up on a fresh machine")
    blocks = [b.strip() for b in code_blocks(setup, "bash")]
    assert blocks[:2] == ["make book", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    for target in ("book", "test"):
        assert re.search(rf"^{target}:", makefile, re.M)
