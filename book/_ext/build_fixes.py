"""Sphinx extension: fixes found by the build and browser tests.

Each fix is fenced (book/_ext/checked_versions.py): it is applied only with the versions
it was checked with, and names the upstream change that will let it go.

1. Every page is read again on every build. MyST-NB executes the pages Sphinx reads,
   but an incremental build reads only pages whose source changed: after an edit to
   ``actfns/`` alone, ``jupyter-book build book`` would publish outputs computed by the
   old package code. Re-reading everything makes every build execute every page
   (tests/test_build_cache.py checks it); trained networks stay cached by actfns's run
   store. Goes when MyST-NB can invalidate pages on changes to other files
   (executablebooks/MyST-NB#299, open).
2. Sphinx 7.4 writes each inline script that sphinx-thebe and sphinx-togglebutton add
   at ``env-before-read-docs`` twice into every page (registered with filename
   ``None``, re-added from the registry with filename ``""``, so they do not compare
   equal); the second copy of sphinx-thebe's ``const THEBE_JS_URL = ...`` is a
   SyntaxError ("Identifier has already been declared"). Script and stylesheet
   entries with the same file and attributes are written once. Fixed upstream by
   sphinx-doc/sphinx#13402 (merged March 2025, Sphinx 8.2), which jupyter-book 1
   (Sphinx 7) cannot use: goes with the move to a newer Sphinx.
3. MyST-NB gives a cell's image output no alt text, so the HTML writer falls back to
   the file name. An image inside a figure gets the figure's caption as its alt text
   (unless the cell sets ``mystnb: image: alt``). No upstream fix yet
   (executablebooks/MyST-NB#211 asks for alt text on glued figures,
   jupyter-book/mystmd#2201 on cell outputs).
4. Sphinx numbers the figures of all unnumbered pages (the appendices) with one
   counter, keyed by their empty section number: the second appendix with figures
   started at "Fig. 2". Each unnumbered page now numbers its own figures from 1; the
   numbered chapters keep Sphinx's "Fig. 3.1". Goes with a Sphinx option to restart
   figure numbers (sphinx-doc/sphinx#8170; pull request sphinx-doc/sphinx#14081, open).

The theme's light default mode, set here before, is now ``html_context.default_mode``
in _config.yml.
"""

import re

import checked_versions
from docutils import nodes


def read_every_page(app, env, added, changed, removed):
    return sorted(env.found_docs - set(added) - set(changed) - set(removed))


def _key(asset):
    attributes = getattr(asset, "attributes", {}) or {}
    return (getattr(asset, "filename", None) or "",
            tuple(sorted((k, str(v)) for k, v in attributes.items())))


def _dedupe(assets):
    seen, unique = set(), []
    for asset in assets:
        if _key(asset) not in seen:
            seen.add(_key(asset))
            unique.append(asset)
    return unique


def dedupe_assets(app, pagename, templatename, context, doctree):
    for name in ("script_files", "css_files"):
        if name in context:
            context[name] = _dedupe(context[name])


def alt_from_caption(app, doctree):
    for figure in doctree.findall(nodes.figure):
        captions = list(figure.findall(nodes.caption))
        if not captions:
            continue
        text = re.sub(r"\s+", " ", captions[0].astext()).strip()
        for image in figure.findall(nodes.image):
            if not image.get("alt"):
                image["alt"] = text


def number_figures_per_page(app, env):
    """Renumber each unnumbered page's figures 1, 2, ... in page order (after Sphinx's
    toctree collector, which numbers them at ``env-get-updated`` too); returns the
    pages to write again."""
    renumbered = set()
    for docname, by_type in env.toc_fignumbers.items():
        if env.toc_secnumbers.get(docname):
            continue  # a numbered chapter
        for numbers in by_type.values():
            for k, figure_id in enumerate(list(numbers), start=1):  # in page order
                if numbers[figure_id] != (k,):
                    numbers[figure_id] = (k,)
                    renumbered.add(docname)
    return sorted(renumbered)


FIXES = [  # (description, packages it was checked with, event, handler, priority)
    ("1. re-read every page on every build", ("sphinx", "myst-nb"),
     "env-get-outdated", read_every_page, 500),
    ("2. write each script and stylesheet once", ("sphinx",),
     "html-page-context", dedupe_assets, 900),
    ("3. figure images get their caption as alt text", ("sphinx", "myst-nb"),
     "doctree-read", alt_from_caption, 500),
    ("4. figures numbered per unnumbered page", ("sphinx",),
     "env-get-updated", number_figures_per_page, 900),
]


def setup(app):
    app.setup_extension("checked_versions")
    for description, packages, event, handler, priority in FIXES:
        if checked_versions.allowed(app, f"book/_ext/build_fixes.py, {description}",
                                    packages):
            app.connect(event, handler, priority=priority)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
