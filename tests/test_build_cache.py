"""A rebuild never publishes outputs computed by older package code.

A throwaway book, laid out like this repository (the real ``_config.yml`` and
``book/_ext``), has one page that prints a value from ``actfns``. It is built, the
package is changed, and the same build command runs again in the same folder (an
incremental build, as a user or CI with a cached ``_build`` would run it). The second
site must show the new value. MyST-NB's ``cache`` mode would fail this (its cache keys
on the page's code only), and so would ``force`` alone, which executes only the pages
Sphinx re-reads.

The package is changed in a copy of ``actfns/`` put first on ``PYTHONPATH`` (the
kernel inherits it), so the real package is never touched.
"""

import re
import shutil

import pytest
from book_helpers import ROOT, USER_ENV, build_book

PAGE = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# Probe

```{code-cell} ipython3
import actfns as af

print("actfns version:", af.__version__)
print("actfns file:", af.__file__)
```
"""

TOC = "format: jb-book\nroot: probe\n"
VERSION = re.compile(r'^__version__ = ".*"$', re.M)


def set_version(package, version):
    module = package / "version.py"  # where actfns.__version__ is defined
    text, count = VERSION.subn(f'__version__ = "{version}"', module.read_text())
    assert count == 1, f"no __version__ line in {module}"
    module.write_text(text)


def built_output(result, site):
    assert result.returncode == 0, f"build failed:\n{result.stdout[-6000:]}"
    return (site / "probe.html").read_text(encoding="utf-8")


@pytest.mark.slow  # two small book builds, about 30 s
def test_rebuild_shows_output_of_changed_package(tmp_path):
    book = tmp_path / "repo" / "book"
    shutil.copytree(ROOT / "book" / "_ext", book / "_ext")
    shutil.copy(ROOT / "_config.yml", book.parent / "_config.yml")
    (book / "_toc.yml").write_text(TOC)
    (book / "probe.md").write_text(PAGE)
    (book / "references.bib").write_text("")
    package = tmp_path / "pkg" / "actfns"
    shutil.copytree(ROOT / "actfns", package,
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = dict(USER_ENV, ACTFNS_PROGRESS="0",
               PYTHONPATH=f"{package.parent}:{USER_ENV.get('PYTHONPATH', '')}")
    site = book.parent / "_build" / "html"

    set_version(package, "probe-first")
    first = built_output(build_book(book, env, timeout=300), site)
    assert "actfns version: probe-first" in first
    assert str(package) in first, "the page did not import the changed copy"

    set_version(package, "probe-second")
    second = built_output(build_book(book, env, timeout=300), site)
    assert "probe-first" not in second, (
        "the rebuild published the output of the old package code")
    assert "actfns version: probe-second" in second

