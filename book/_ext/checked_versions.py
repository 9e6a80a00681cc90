"""Sphinx extension: the fence around the patches in book/_ext.

``parallel_execution`` and ``build_fixes`` reach into Sphinx, MyST-NB and jupyter-book
internals, or work around bugs of particular releases. Before a patch is applied it
asks ``allowed(app, patch, packages)``: yes only when every package it depends on is
installed at the version in ``CHECKED`` (the versions pinned in requirements.txt and in
the ``book`` extra of pyproject.toml; tests/test_parallel_execution.py keeps the three
equal). Otherwise the patch stays off, the build goes on without it, and one warning
(per build) names each patch that is off, the versions found and what to do. With
``-W`` that warning fails the build: a version bump cannot publish unchecked patches.
"""

from importlib import metadata
from weakref import WeakKeyDictionary

from sphinx.util import logging

logger = logging.getLogger(__name__)

CHECKED = {
    "sphinx": "7.4.7",
    "myst-nb": "1.4.0",
    "jupyter-book": "1.0.4.post1",
    "sphinx-multitoc-numbering": "0.1.3",
    "sphinx-jupyterbook-latex": "1.0.0",
}
"""Package -> the version the patches were checked with."""

_switched_off = WeakKeyDictionary()  # Sphinx application -> [(patch, {pkg: found})]


def installed(package):
    """The installed version of ``package``, or None."""
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def unchecked(packages):
    """``{package: installed version}`` for each of ``packages`` not at its CHECKED
    version (None: not installed).

    Raises:
        KeyError: a package that CHECKED does not list (a patch must name versions).
    """
    found = {p: installed(p) for p in packages}
    return {p: v for p, v in found.items() if v != CHECKED[p]}


def allowed(app, patch, packages):
    """True if ``patch`` (a description, e.g. "parallel chapter execution") may be
    applied: every one of ``packages`` is at its CHECKED version. Else it is recorded
    for the build's one warning and False is returned."""
    off = unchecked(packages)
    if off:
        _switched_off.setdefault(app, []).append((patch, off))
    return not off


def warning_text(switched_off):
    """The warning for ``[(patch, {package: found version}), ...]``."""
    lines = [f"  - {patch}: needs " + ", ".join(
        f"{p} {CHECKED[p]} (found {v or 'none'})" for p, v in off.items())
        for patch, off in switched_off]
    return ("book/_ext: these patches are switched off, because they were checked "
            "with other versions than the ones installed:\n" + "\n".join(lines) +
            "\nInstall the pinned versions (pip install -r requirements.txt), or check "
            "each patch against the new version (its docstring names the upstream "
            "fix that lets it go) and update CHECKED in book/_ext/checked_versions.py, "
            "requirements.txt and the book extra of pyproject.toml together.")


def report(app):
    """One warning for everything switched off in this build (``builder-inited``)."""
    switched_off = _switched_off.pop(app, [])
    if switched_off:
        logger.warning(warning_text(switched_off))


def setup(app):
    app.connect("builder-inited", report)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
