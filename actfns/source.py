"""Show the package's own code in a chapter: ``show_source(af.Sigmoid)``.

The listing is the object's current source, read from its file when asked, so the book
can never show a copy that has drifted from the code that runs. It displays as
Pygments-highlighted HTML in the markup Sphinx gives a ``python`` code block
(``div.highlight-python > div.highlight > pre``), so the site's theme styles it like
every other code block, and JupyterLab styles it with its editor colours (through
``jupyterlab_pygments``, which every JupyterLab installs). MyST-NB picks ``text/html``
before ``text/markdown`` for HTML builds, JupyterLab does too; the Markdown form (a
fenced block) serves front ends without HTML.
"""

import html
import inspect
import linecache
import os
import textwrap

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

__all__ = ["Source", "show_source"]


class Source:
    """Python source text that displays syntax-highlighted in notebooks and MyST-NB.

    ``str(source)`` is the plain text; ``source.origin`` says where it comes from.
    """

    def __init__(self, text, origin=""):
        self.text = text if text.endswith("\n") else text + "\n"
        self.origin = origin

    def __str__(self):
        return self.text

    def __repr__(self):
        return f"<Source of {self.origin or 'code'}: {self.text.count(chr(10))} lines>"

    def _repr_pretty_(self, printer, cycle):  # IPython's plain-text display
        printer.text(self.text.rstrip("\n"))

    def _repr_html_(self):
        # Sphinx's options for a python code block: PythonLexer(stripnl=False) and
        # HtmlFormatter's default wrapping <div class="highlight"><pre>
        body = highlight(self.text, PythonLexer(stripnl=False), HtmlFormatter())
        title = f' title="{html.escape(self.origin)}"' if self.origin else ""
        return f'<div class="highlight-python notranslate"{title}>{body}</div>'

    def _repr_markdown_(self):
        fence = "`" * max(3, _longest_run(self.text, "`") + 1)
        return f"{fence}python\n{self.text}{fence}\n"


def _longest_run(text, char):
    run = best = 0
    for c in text:
        run = run + 1 if c == char else 0
        best = max(best, run)
    return best


def show_source(obj, lines=None):
    """The source of a function, class, method or module, ready to display.

    Args:
        obj: a Python function, class, method (``af.Sigmoid.derivative``), property,
            module, or an instance of a Python class (its class is shown).
        lines: optional selection relative to the object's first line, as in Sphinx's
            ``literalinclude``: ``"3-7"``, ``"1,4-"``, ``"-5"``.

    Returns:
        A ``Source``; as the last expression of a cell it displays highlighted.

    Raises:
        ValueError: ``obj`` has no Python source (built-ins, C extensions, code typed
            at an interactive prompt), or ``lines`` is malformed or out of range.
        RuntimeError: the file changed since ``obj`` was imported, so the listing
            would not be the code that runs (restart the kernel, or reload).
    """
    obj = _target(obj)
    builtin = inspect.isbuiltin(obj) or inspect.ismethoddescriptor(obj)
    name = getattr(obj, "__name__" if builtin else "__qualname__", repr(obj))
    try:
        source_lines, first = inspect.getsourcelines(obj)
    except TypeError:  # a built-in function or class: compiled, not Python
        if inspect.isclass(obj) and not builtin and obj.__module__ == "__main__":
            raise ValueError(
                f"show_source: Python cannot find the source of {name}: it looks for "
                "a class in its module's file, and classes defined in a notebook or "
                "at a prompt (module __main__) have none") from None
        raise ValueError(
            f"show_source: {name} is built into Python or a compiled extension and "
            "has no Python source; show a function, class, method or module written "
            "in Python") from None
    except OSError:
        raise ValueError(
            f"show_source: Python kept no source for {name}: it was defined at an "
            "interactive prompt, with python -c or exec; define it in a module or a "
            "notebook cell") from None
    if not _matches(obj):
        raise RuntimeError(
            f"show_source: the file of {name} has changed since it was imported, so "
            "its text is no longer the code that runs; restart the kernel (or "
            "importlib.reload its module) and run this again")
    text = textwrap.dedent("".join(source_lines))  # a method is shown unindented
    if lines is not None:
        text = "".join(_select(text.splitlines(keepends=True), lines, name))
    module = obj.__name__ if inspect.ismodule(obj) else obj.__module__
    origin = f"{module}, line {max(first, 1)}"  # a module's first line is given as 0
    return Source(text, origin)


def _target(obj):
    """The object whose source to show: unwraps decorators, properties, instances."""
    if isinstance(obj, (staticmethod, classmethod)):
        obj = obj.__func__
    if isinstance(obj, property):
        obj = obj.fget
    if inspect.ismethod(obj):
        obj = obj.__func__
    if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismodule(obj)
            or inspect.isbuiltin(obj) or inspect.ismethoddescriptor(obj)):
        if type(obj).__module__ == "builtins":
            raise ValueError(
                f"show_source: got a {type(obj).__name__} ({obj!r:.40}), not a "
                "function, class, method or module")
        obj = type(obj)  # an instance, e.g. af.Sigmoid(): show its class
    return inspect.unwrap(obj) if inspect.isfunction(obj) else obj


def _select(lines_of_text, spec, name):
    """Lines chosen by a literalinclude-style spec such as ``"1,3-5,8-"`` (1-based)."""
    n = len(lines_of_text)
    chosen = []
    for part in str(spec).replace(" ", "").split(","):
        start, dash, end = part.partition("-")
        try:
            lo = int(start) if start else 1
            hi = (int(end) if end else n) if dash else lo
        except ValueError:
            raise ValueError(
                f"show_source: bad lines={spec!r}; write e.g. '3-7', '1,4-' or '-5' "
                "(1-based, relative to the object's first line)") from None
        if not 1 <= lo <= hi <= n:
            raise ValueError(f"show_source: lines={spec!r} is outside {name}'s "
                             f"{n} lines")
        chosen.extend(lines_of_text[lo - 1:hi])
    return chosen


def _matches(obj):
    """True if ``obj``'s file, as it is now, compiles to the functions as loaded.

    ``inspect`` finds a function's text from its first line number in the file as it
    is now: after an edit that can be other lines, or this function changed. Compiling
    the whole file (so imports and enclosing classes compile as they did) and
    comparing bytecode, names and constants by qualified name detects both; for a
    function, so does its first line. (A class is found by name, wherever it is.)
    """
    live = list(_codes(obj))
    if not live:
        return True  # nothing compiled to compare with (a module, a class of data)
    path = live[0].co_filename
    try:
        tree = compile("".join(linecache.getlines(path)), path, "exec")
    except SyntaxError:  # it compiled when imported, unless it is not a plain file
        return not os.path.isfile(path)
    line = inspect.isfunction(obj)  # a function's first line must not have moved
    compiled = {}
    for code in _walk(tree):
        compiled.setdefault(code.co_qualname, []).append(_signature(code, line))
    return all(_signature(code, line) in compiled.get(code.co_qualname, ())
               for code in live)


def _codes(obj):
    """The code objects defined by ``obj``'s own text (a module's: none checked)."""
    if inspect.isfunction(obj):
        yield obj.__code__
    elif inspect.isclass(obj):
        for value in vars(obj).values():
            func = getattr(value, "__func__", getattr(value, "fget", value))
            if (inspect.isfunction(func) and func.__module__ == obj.__module__
                    and func.__qualname__.startswith(obj.__qualname__ + ".")):
                yield func.__code__


def _walk(code):
    yield code
    for const in code.co_consts:
        if inspect.iscode(const):
            yield from _walk(const)


def _signature(code, line=False):
    """What the code does (bytecode, names, constants), and its first line if asked."""
    consts = tuple(_signature(c) if inspect.iscode(c) else (type(c), c)
                   for c in code.co_consts)
    first = code.co_firstlineno if line else None
    return code.co_code, code.co_names, code.co_varnames, consts, first
