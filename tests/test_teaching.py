"""The chapters read as a textbook and render in JupyterLab as on the site.

Checked on the MyST sources (fast, no build):

- the tutorial (the intro and the first part of ``_toc.yml``) has at most
  ``MAIN_LINE_WORDS`` words of main-line prose: text outside code, outputs, folded
  blocks (dropdowns), tables, math blocks and exercises;
- each tutorial chapter opens with two or three sentences and ends with a summary of
  at most five points; chapters 1, 3 and 5 show their first figure within the first
  ``FIRST_FIGURE_WITHIN`` words;
- "the course" is rare in the tutorial's main line (it is named where its published
  numbers are compared; its mistakes are gathered in one appendix);
- no page uses what JupyterLab (jupyterlab-myst) does not render: glue roles,
  ``literalinclude``, ``{doc}``, ``{cite}``, ``{numref}``, ``{ref}``;
- every ``{eval}`` name is assigned exactly once in a code cell above its first use
  (jupyterlab-myst evaluates all of them after the last cell, so a name assigned twice
  would show its last value; a forward reference is an error on the site);
- no page stores evaluated values (``user_expressions``, written when a reader saves a
  chapter in JupyterLab).
"""

import ast
import re

import pytest
from book_helpers import BOOK, docnames, notebook_docnames, read_notebook
from sphinx_external_toc.parsing import parse_toc_yaml

MAIN_LINE_WORDS = 6000
FIRST_FIGURE_WITHIN = 400
SUMMARY_POINTS = 5
COURSE_MENTIONS = 12  # in the whole tutorial's main line

FOLDED = re.compile(r"^(:{3,}|`{3,})\{(dropdown|exercise|solution)\}", re.M)
DIRECTIVE_OPEN = re.compile(r"^(?P<fence>:{3,}|`{3,})\{(?P<name>[\w:-]+)\}(?P<arg>.*)$")
EVAL = re.compile(r"\{eval\}`([^`]+)`")
UNSUPPORTED = {
    "a glue role": re.compile(r"\{glue(:\w+)?\}`"),
    "a glue directive": re.compile(r"\{glue(:\w+)?\}\s"),
    "literalinclude": re.compile(r"\{literalinclude\}"),
    "a {doc} role": re.compile(r"\{doc\}`"),
    "a {cite} role": re.compile(r"\{cite(:\w+)?\}`"),
    "a {numref} role": re.compile(r"\{numref\}`"),
    "a {ref} role": re.compile(r"\{ref\}`"),
}


def tutorial():
    """The intro and the chapters of the first part of the table of contents."""
    root = parse_toc_yaml(BOOK / "_toc.yml").root
    return [root.docname] + [str(item) for item in root.subtrees[0].items]


def _blocks(text):
    """Split markdown into ``(kind, text)``: kind is "prose", "folded", "code",
    "math", "table" or "directive" (a visible directive's body is prose)."""
    out, lines, i = [], text.split("\n"), 0
    while i < len(lines):
        line = lines[i]
        m = DIRECTIVE_OPEN.match(line.strip())
        if m:
            fence, name = m["fence"], m["name"]
            body, depth, i = [], 1, i + 1
            while i < len(lines):
                inner = lines[i].strip()
                if DIRECTIVE_OPEN.match(inner) and inner.startswith(fence[0] * 3):
                    depth += inner.startswith(fence) or inner[:len(fence)] == fence
                if inner == fence or (inner.startswith(fence[0] * 3) and
                                      set(inner) == {fence[0]} and
                                      len(inner) >= len(fence)):
                    depth -= 1
                    if depth == 0:
                        i += 1
                        break
                body.append(lines[i])
                i += 1
            options = [b for b in body if b.strip().startswith(":")]
            folded = name in ("dropdown", "exercise", "solution") or any(
                re.match(r":class:.*\bdropdown\b", o.strip()) for o in options)
            if folded:
                out.append(("folded", "\n".join(body)))
            elif name in ("math",):
                out.append(("math", "\n".join(body)))
            elif fence.startswith("`") and name in ("code", "code-block", "code-cell"):
                out.append(("code", "\n".join(body)))
            else:
                text_body = [b for b in body if not b.strip().startswith(":")]
                out.append(("prose", m["arg"] + "\n" + "\n".join(text_body)))
            continue
        if line.strip().startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            out.append(("code", "\n".join(lines[i + 1:j])))
            i = j + 1
            continue
        if line.strip().startswith("$$"):
            j = i if line.strip().count("$$") >= 2 and line.strip() != "$$" else i + 1
            while j < len(lines) and "$$" not in (lines[j] if j > i else ""):
                j += 1
            out.append(("math", "\n".join(lines[i:j + 1])))
            i = j + 1
            continue
        if line.lstrip().startswith("|"):
            out.append(("table", line))
            i += 1
            continue
        out.append(("prose", line))
        i += 1
    return out


WORD = re.compile(r"[A-Za-z0-9][\w'’.-]*")


def words(prose):
    prose = re.sub(r"<!--.*?-->", " ", prose, flags=re.S)
    prose = re.sub(r"^\([\w-]+\)=\s*$", " ", prose, flags=re.M)  # labels
    prose = EVAL.sub(" N ", prose)
    prose = re.sub(r"\$[^$\n]+\$", " X ", prose)  # inline math: one word
    prose = re.sub(r"\]\([^)]*\)", "]", prose)  # a link's target is not read
    return len(WORD.findall(prose))


def main_line_words(cell_source):
    return sum(words(t) for kind, t in _blocks(cell_source) if kind == "prose")


def main_line_text(cell_source):
    return "\n".join(t for kind, t in _blocks(cell_source) if kind == "prose")


def _is_figure(cell):
    return cell.cell_type == "code" and "figure" in cell.metadata.get("mystnb", {})


# ---------------------------------------------------------------------------------
# Length and shape of the tutorial


def test_the_tutorial_is_found():
    assert len(tutorial()) >= 7 and tutorial()[0] == "intro"


def test_main_line_of_the_tutorial_fits_an_hour():
    counts = {d: sum(main_line_words(c.source) for c in read_notebook(d).cells
                     if c.cell_type == "markdown") for d in tutorial()}
    total = sum(counts.values())
    assert total <= MAIN_LINE_WORDS, (
        f"{total} words of main-line prose in the tutorial (at most "
        f"{MAIN_LINE_WORDS}); per page: {counts}")


@pytest.mark.parametrize("docname", ["activation_functions", "gradient_flow",
                                     "dead_neurons"])
def test_first_figure_comes_early(docname):
    seen = 0
    for cell in read_notebook(docname).cells:
        if _is_figure(cell):
            break
        if cell.cell_type == "markdown":
            seen += main_line_words(cell.source)
    else:
        pytest.fail(f"{docname} has no captioned figure (mystnb: figure: caption)")
    assert seen <= FIRST_FIGURE_WITHIN, (
        f"{docname}: {seen} words before its first figure (at most "
        f"{FIRST_FIGURE_WITHIN})")


def _sentences(text):
    text = re.sub(r"\$[^$]+\$", "X", text)
    text = re.sub(r"\b(e\.g|i\.e|etc|vs|cf|Fig|et al)\.", "", text)
    return [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if WORD.search(s)]


@pytest.mark.parametrize("docname", tutorial()[1:])
def test_chapter_opens_with_two_or_three_sentences(docname):
    cells = [c for c in read_notebook(docname).cells if c.cell_type == "markdown"]
    text = cells[0].source
    after_title = re.split(r"^# .*$", text, maxsplit=1, flags=re.M)[-1]
    first = next(p for p in re.split(r"\n\s*\n", after_title) if WORD.search(p)
                 and not p.lstrip().startswith(("(", ":::", "```", "#")))
    assert 2 <= len(_sentences(first)) <= 3, (
        f"{docname} opens with {len(_sentences(first))} sentences: {first[:300]}")


@pytest.mark.parametrize("docname", tutorial()[1:])
def test_chapter_ends_with_a_short_summary(docname):
    text = "\n".join(c.source for c in read_notebook(docname).cells
                     if c.cell_type == "markdown")
    parts = re.split(r"^## Summary\s*$", text, flags=re.M)
    assert len(parts) == 2, f"{docname} needs one '## Summary' section"
    summary = re.split(r"^#{1,2} ", parts[1], flags=re.M)[0]
    points = re.findall(r"^\s*(?:[-*]|\d+\.)\s", summary, re.M)
    assert 1 <= len(points) <= SUMMARY_POINTS, (
        f"{docname}: summary of {len(points)} points (1 to {SUMMARY_POINTS})")


def test_the_course_is_named_rarely_in_the_main_line():
    mentions = {}
    for d in tutorial():
        text = "\n".join(main_line_text(c.source) for c in read_notebook(d).cells
                         if c.cell_type == "markdown")
        mentions[d] = len(re.findall(r"\bcourse(?:'s)?\b", text, re.I))
    assert sum(mentions.values()) <= COURSE_MENTIONS, (
        f"'course' {sum(mentions.values())} times in the tutorial's main line (at most "
        f"{COURSE_MENTIONS}); per page: {mentions}")


def test_the_course_notes_appendix_is_in_the_book():
    assert "appendix_course_notes" in docnames()
    text = (BOOK / "appendix_course_notes.md").read_text()
    assert re.search(r"^\|.*\|.*\|.*\|", text, re.M), "a table of the course's errors"


# ---------------------------------------------------------------------------------
# One source for the site and JupyterLab


@pytest.mark.parametrize("docname", docnames())
def test_no_syntax_that_jupyterlab_does_not_render(docname):
    nb = read_notebook(docname)
    found = [(what, cell.source[m.start():m.start() + 60]) for cell in nb.cells
             if cell.cell_type == "markdown" for what, rx in UNSUPPORTED.items()
             for m in rx.finditer(cell.source)]
    assert not found, f"{docname}: {found[:5]}"


def _assigned_names(source):
    try:
        tree = ast.parse(source)
    except SyntaxError:  # IPython magics: not in the chapters' code
        return []
    names = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign, ast.For)):
            targets = [node.target]
        elif isinstance(node, (ast.With,)):
            targets = [i.optional_vars for i in node.items if i.optional_vars]
        for t in targets:
            names += [n.id for n in ast.walk(t) if isinstance(n, ast.Name)]
    return names


@pytest.mark.parametrize("docname", notebook_docnames())
def test_eval_names_are_assigned_once_above_their_use(docname):
    assigned, problems = {}, []
    for cell in read_notebook(docname).cells:
        if cell.cell_type == "code":
            for name in _assigned_names(cell.source):
                assigned[name] = assigned.get(name, 0) + 1
        elif cell.cell_type == "markdown":
            for expr in EVAL.findall(cell.source):
                if not re.fullmatch(r"[A-Za-z_]\w*", expr):
                    problems.append(f"{{eval}}`{expr}` is not a variable name")
                elif expr not in assigned:
                    problems.append(f"{expr} is used before it is assigned")
    for cell in read_notebook(docname).cells:
        if cell.cell_type == "markdown":
            problems += [f"{expr} is assigned {assigned[expr]} times"
                         for expr in EVAL.findall(cell.source)
                         if assigned.get(expr, 0) > 1]
    assert not problems, f"{docname}: {sorted(set(problems))}"


@pytest.mark.parametrize("docname", docnames())
def test_no_stored_evaluations(docname):
    assert "user_expressions" not in (BOOK / f"{docname}.md").read_text(), (
        f"{docname}.md holds values saved by JupyterLab (user_expressions): remove "
        "them, the build computes them")


@pytest.mark.parametrize("docname", notebook_docnames())
def test_no_code_cell_is_removed_before_it_runs(docname):
    """MyST-NB's inline mode does not execute a ``remove-cell`` cell, so an assert
    there would guard nothing on the site: guard cells are ``remove-input`` and
    ``remove-output`` instead."""
    removed = [c.source[:60] for c in read_notebook(docname).cells
               if c.cell_type == "code" and "remove-cell" in c.metadata.get("tags", [])]
    assert not removed, f"{docname}: remove-cell code cells {removed}"
