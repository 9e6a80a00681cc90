"""Draw the README's picture: the course's six activation functions and their
derivatives, by the package function the book's first chapter uses.

    python docs/readme_figure.py docs/activation_functions.png
    make readme-figure  # the same

tests/test_readme.py redraws it and fails if the committed picture is out of date.
"""

import sys

import matplotlib

matplotlib.use("Agg")

import actfns as af  # noqa: E402

DPI = 72


def draw():
    """The figure: the first six activations of the registry (the course's)."""
    acts = [af.get_activation(name) for name in list(af.ACTIVATIONS)[:6]]
    return af.plot_activation_functions(acts)


def main(path):
    draw().savefig(path, dpi=DPI, metadata={"Software": None})


if __name__ == "__main__":
    main(sys.argv[1])
