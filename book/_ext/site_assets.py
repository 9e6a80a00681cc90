"""Sphinx extension: what the site needs beyond the chapters.

- Logo and favicon: drawn by the package at every build (``python -m actfns.logo``,
  in a subprocess so that Sphinx itself never imports torch) into the folder of the
  files that _config.yml names (``logo``, ``html.favicon``); book/_static/.gitignore
  keeps them out of the repository.
- The repository the site is built from: on GitHub Actions (``$GITHUB_REPOSITORY``,
  ``$GITHUB_SERVER_URL``) it replaces ``repository.url`` of _config.yml, so the
  repository, issues, edit and Binder buttons of a fork's site point at the fork.
- MathJax from the site itself: the pinned copy in the ``django-static-mathjax`` wheel
  (MathJax 3, see requirements.txt) is copied into ``_static/mathjax/``, where
  _config.yml's ``mathjax_path`` points; a page needs no CDN and a local build renders
  its formulas offline. Only the ``es5`` files the ``tex-chtml`` component loads are
  copied (about 10 MB), with MathJax's licence.

Only public configuration values and events are used (nothing here is fenced).
"""

import importlib.resources
import os
import shutil
import subprocess
import sys
from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

MATHJAX_FILES = ("tex-chtml.js", "core.js", "loader.js", "startup.js", "a11y",
                 "adaptors", "input", "output", "sre", "ui")
"""The parts of MathJax's ``es5`` folder a page can load."""


def mathjax_source():
    """The folder of the pinned MathJax copy (``django-static-mathjax``)."""
    root = importlib.resources.files("mathjax") / "static" / "mathjax"
    return Path(str(root))


def draw_logo(app, config):
    """Draw logo and favicon where the configuration expects them (before Sphinx
    checks that they exist)."""
    wanted = [getattr(config, key) for key in ("html_logo", "html_favicon")]
    folders = {(Path(app.confdir) / path).parent for path in wanted
               if path and "://" not in path}
    for folder in sorted(folders):
        result = subprocess.run([sys.executable, "-m", "actfns.logo", str(folder)],
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ExtensionError(f"drawing the logo with `python -m actfns.logo "
                                 f"{folder}` failed:\n{result.stderr[-2000:]}")
    missing = [path for path in wanted if path and "://" not in path
               and not (Path(app.confdir) / path).is_file()]
    if missing:
        raise ExtensionError(f"_config.yml names {missing}, but actfns.logo draws "
                             "only logo.svg and favicon.png")


def repository_from_environment(app, config):
    """``html_theme_options.repository_url`` from GitHub Actions' variables."""
    repository = os.environ.get("GITHUB_REPOSITORY")
    if not repository:
        return
    server = os.environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
    url = f"{server}/{repository}"
    options = config.html_theme_options
    if options.get("repository_url") != url:
        logger.info("repository buttons point at %s ($GITHUB_REPOSITORY)", url)
        options["repository_url"] = url


def copy_mathjax(app, exception):
    """Copy MathJax into the HTML output's ``_static/mathjax``."""
    if exception is not None or app.builder.format != "html":
        return
    source = mathjax_source() / "es5"
    target = Path(app.outdir) / "_static" / "mathjax"
    if not (source / "tex-chtml.js").is_file():
        raise ExtensionError(f"no MathJax in {source}: install the pinned "
                             "django-static-mathjax (pip install -r requirements.txt)")
    shutil.rmtree(target, ignore_errors=True)
    for name in MATHJAX_FILES:
        if (source / name).is_dir():
            shutil.copytree(source / name, target / name)
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, target / name)
    shutil.copy2(mathjax_source() / "LICENSE", target / "LICENSE")


def setup(app):
    app.connect("config-inited", repository_from_environment)
    app.connect("config-inited", draw_logo, priority=400)  # Sphinx checks at 800
    app.connect("build-finished", copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
