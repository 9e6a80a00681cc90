"""show_source: the package's current code, highlighted as the site's code blocks are,
with clear errors for objects without source and for files edited after import."""

import ast
import importlib
import inspect
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import nbformat
import pytest
import torch
from IPython.core.formatters import DisplayFormatter

import actfns.activations as A
from actfns.source import Source, show_source

ROOT = Path(__file__).resolve().parents[1]
ACTIVATIONS_PY = ROOT / "actfns" / "activations.py"


def segment(path, dotted):
    """The lines of ``Class.method`` (or a top-level name) in ``path``, read with ast
    (independently of inspect), dedented; and the first line number."""
    text = path.read_text()
    body = ast.parse(text).body
    for part in dotted.split("."):
        node = next(n for n in body if getattr(n, "name", None) == part)
        body = getattr(node, "body", [])
    first = min([node.lineno] + [d.lineno for d in node.decorator_list])
    lines = text.splitlines(keepends=True)[first - 1:node.end_lineno]
    return textwrap.dedent("".join(lines)), first


@pytest.mark.parametrize("obj, dotted", [
    (A.Sigmoid, "Sigmoid"),
    (A.Sigmoid.derivative, "Sigmoid.derivative"),
    (A.ELU.__init__, "ELU.__init__"),
    (A.get_grads, "get_grads"),
    (A._WithDerivative.backward, "_WithDerivative.backward"),
])
def test_shows_the_text_of_the_file(obj, dotted):
    text, first = segment(ACTIVATIONS_PY, dotted)
    source = show_source(obj)
    assert str(source) == text
    assert source.origin == f"actfns.activations, line {first}"


def test_an_instance_shows_its_class_and_a_bound_method_its_function():
    assert str(show_source(A.LeakyReLU(alpha=0.3))) == str(show_source(A.LeakyReLU))
    assert str(show_source(A.Tanh().derivative)) == segment(ACTIVATIONS_PY,
                                                           "Tanh.derivative")[0]


def test_a_module_is_shown_whole():
    assert str(show_source(A)) == ACTIVATIONS_PY.read_text()


@pytest.mark.parametrize("spec, want", [
    ("1", [0]), ("2-3", [1, 2]), ("1,3-", "1,3-"), ("-2", [0, 1]), (" 1 , 4 ", [0, 3]),
])
def test_lines_selects_like_literalinclude(spec, want):
    lines = str(show_source(A.Sigmoid.derivative)).splitlines(keepends=True)
    if want == "1,3-":
        want = [0, *range(2, len(lines))]
    assert str(show_source(A.Sigmoid.derivative, lines=spec)) == "".join(
        lines[i] for i in want)


@pytest.mark.parametrize("spec", ["0-2", "3-1", "1-99", "x", "1-b", "2--3"])
def test_bad_lines_are_refused(spec):
    with pytest.raises(ValueError, match=r"lines="):
        show_source(A.Sigmoid.derivative, lines=spec)


def test_it_displays_as_a_highlighted_python_code_block():
    source = show_source(A.Sigmoid)
    data, _ = DisplayFormatter().format(source)
    assert set(data) == {"text/plain", "text/html", "text/markdown"}
    assert data["text/plain"] == str(source).rstrip("\n")
    page = data["text/html"]
    assert page.startswith('<div class="highlight-python notranslate"')
    assert '<div class="highlight"><pre>' in page
    assert '<span class="k">class</span>' in page  # Pygments token classes
    assert '<span class="nc">Sigmoid</span>' in page
    assert "&lt;= 1/4" in page  # escaped, not raw HTML
    assert data["text/markdown"] == f"```python\n{source}```\n"


def test_markdown_fence_outgrows_backticks_in_the_code():
    source = Source('x = """```"""\n')
    assert source._repr_markdown_().startswith("````python\n")


@pytest.mark.parametrize("obj, why", [
    (len, "built into Python"),
    (torch.exp, "built into Python"),
    (torch.Tensor.exp, "built into Python"),
    (dict, "built into Python"),
    (A.ACTIVATIONS, "got a dict"),
    (3.0, "got a float"),
])
def test_objects_without_python_source_are_refused(obj, why):
    with pytest.raises(ValueError, match=re.escape(why)):
        show_source(obj)


def test_code_typed_at_a_prompt_is_refused():
    namespace = {}
    exec("square = lambda x: x * x\nclass Typed:\n    pass\n", namespace)
    with pytest.raises(ValueError, match="kept no source for <lambda>.*interactive"):
        show_source(namespace["square"])
    with pytest.raises(ValueError, match="Typed"):
        show_source(namespace["Typed"])


def test_a_real_interactive_session_gets_the_same_message():
    # source.py alone (no torch): the prompt is the point, not the package
    path = str(ROOT / "actfns" / "source.py")
    code = ("import importlib.util as u\n"
            f"spec = u.spec_from_file_location('source', {path!r})\n"
            "m = u.module_from_spec(spec); spec.loader.exec_module(m)\n"
            "show_source = m.show_source\n"
            "f = lambda x: x\n"
            "try:\n    show_source(f)\nexcept ValueError as e:\n    print(e)\n\n")
    out = subprocess.run([sys.executable, "-i"], input=code, capture_output=True,
                         text=True, timeout=120)
    assert "kept no source for <lambda>" in out.stdout + out.stderr


@pytest.fixture
def module_file(tmp_path, monkeypatch):
    """A module ``edited_mod`` written to a temporary folder and imported."""
    monkeypatch.syspath_prepend(str(tmp_path))
    path = tmp_path / "edited_mod.py"
    path.write_text("import math\n\n\ndef f(x):\n    return math.exp(x) + 1\n\n\n"
                    "class C:\n    def g(self):\n        return super().g()\n")
    module = importlib.import_module("edited_mod")
    yield path, module
    sys.modules.pop("edited_mod", None)


def test_a_file_edited_after_import_is_detected(module_file):
    path, module = module_file
    assert str(show_source(module.f)) == "def f(x):\n    return math.exp(x) + 1\n"
    path.write_text(path.read_text().replace("+ 1", "+ 2"))
    with pytest.raises(RuntimeError, match="changed since it was imported"):
        show_source(module.f)
    assert str(show_source(module.C)).startswith("class C:")  # C is unchanged
    importlib.reload(module)
    assert str(show_source(module.f)) == "def f(x):\n    return math.exp(x) + 2\n"


def test_moved_lines_are_detected_and_a_class_is_found_by_name(module_file):
    path, module = module_file
    path.write_text("# a new first line, and a longer file\n" + path.read_text())
    with pytest.raises(RuntimeError, match="restart the kernel"):
        show_source(module.f)  # its first line number now points one line too high
    # a class is found by name, and its methods' code is unchanged: shown as it is
    assert str(show_source(module.C)).startswith("class C:\n    def g(self):")


def test_an_unchanged_package_passes_the_check_for_every_public_object():
    for name in A.__all__:
        obj = getattr(A, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert str(show_source(obj))


def test_mystnb_renders_it_exactly_like_a_literalinclude(tmp_path):
    """A real Sphinx + MyST-NB build of a notebook holding show_source's output and a
    literalinclude of the same class: MyST-NB picks the HTML, and the highlighted
    block is the same markup Sphinx writes for the literalinclude."""
    source = show_source(A.Sigmoid)
    data, _ = DisplayFormatter().format(source)
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    cell = nbformat.v4.new_code_cell("af.show_source(af.Sigmoid)", execution_count=1)
    cell.outputs = [nbformat.v4.new_output("execute_result", data=data,
                                           execution_count=1)]
    relative = os.path.relpath(ACTIVATIONS_PY, tmp_path)
    include = (f"```{{literalinclude}} {relative}\n:pyobject: Sigmoid\n"
               ":language: python\n```\n")
    nb.cells = [nbformat.v4.new_markdown_cell(f"# Page\n\n{include}"), cell]
    nbformat.write(nb, tmp_path / "index.ipynb")
    (tmp_path / "conf.py").write_text('extensions = ["myst_nb"]\n'
                                      'nb_execution_mode = "off"\n')
    build = subprocess.run(
        [sys.executable, "-m", "sphinx", "-q", "-W", "-b", "html", str(tmp_path),
         str(tmp_path / "_build")], capture_output=True, text=True, timeout=300)
    assert build.returncode == 0, build.stderr
    page = (tmp_path / "_build" / "index.html").read_text()
    assert '<div class="output text_html"><div class="highlight-python' in page
    block = (r'<div class="highlight-python notranslate"[^>]*>'
             r'(<div class="highlight">.*?</pre></div>)')
    included = re.search(r'<section id="page">.*?' + block, page, re.S).group(1)
    shown = re.search('<div class="output text_html">' + block, page, re.S).group(1)
    assert '<span class="nc">Sigmoid</span>' in shown
    assert shown == included
