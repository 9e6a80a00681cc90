"""Every ``literalinclude`` in the book names a package file and object that exist, so
moving a function between modules cannot silently empty a code listing."""

import ast
import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
INCLUDE = re.compile(r"```\{literalinclude\}\s+(\S+)\n((?::\w+:.*\n)*)")


def includes():
    for md in sorted(BOOK.glob("*.md")):
        for m in INCLUDE.finditer(md.read_text()):
            obj = re.search(r"^:pyobject:\s*(\S+)", m.group(2), re.M)
            yield pytest.param(md.name, m.group(1), obj and obj.group(1),
                               id=f"{md.stem}-{obj.group(1) if obj else m.group(1)}")


def defined(tree, dotted):
    """True if ``Class.method`` (or a top-level name) is defined in ``tree``."""
    body = tree.body
    for part in dotted.split("."):
        node = next((n for n in body if getattr(n, "name", None) == part), None)
        if node is None:
            return False
        body = getattr(node, "body", [])
    return True


def test_the_book_has_literalincludes():
    assert len(list(includes())) > 10


@pytest.mark.parametrize("chapter, path, pyobject", list(includes()))
def test_literalinclude_target_exists(chapter, path, pyobject):
    source = (BOOK / path).resolve()
    assert source.is_file(), f"{chapter}: {path} does not exist"
    if pyobject:
        assert defined(ast.parse(source.read_text()), pyobject), (
            f"{chapter}: {path} defines no {pyobject}")
