"""Write requirements.txt: the exact versions of actfns[book,test,lab,cluster] and all
it needs.

Run it with the environment the book is built and tested with:

    .venv/bin/python .ci/pin_requirements.py > requirements.txt

The closure is read from the installed metadata. torch's CUDA runtime packages
(nvidia-*, cuda-*, triton) are left out: they are dependencies of one particular
torch build, not of actfns, and pip brings the right ones for the torch it installs
(none for the CPU wheels used by GitHub Actions and Binder).
"""

import re
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT, EXTRAS = "actfns", {"book", "test", "lab", "cluster"}
TORCH_BUILD_DEPS = re.compile(r"^(nvidia-.*|cuda-.*|triton)$")
HEADER = """\
# The exact environment the book is built and tested with (CI, Binder, README).
# Regenerate from a working .venv:
#   .venv/bin/python .ci/pin_requirements.py > requirements.txt
# Version ranges for users of the package live in pyproject.toml.
# torch's CUDA runtime wheels are not pinned here (see .ci/pin_requirements.py);
# GitHub Actions and Binder install the CPU-only torch build of the same version.
-e .[book,test,lab,cluster]
"""


def closure(root=ROOT, extras=EXTRAS):
    """Installed distributions reachable from ``root[extras]``: {name: version}."""
    found, todo = {}, [(root, set(extras))]
    while todo:
        name, wanted = todo.pop()
        key = canonicalize_name(name)
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            raise SystemExit(f"{name} is required but not installed") from None
        done = found.get(key, (None, set()))[1]
        if key in found and wanted <= done:
            continue
        found[key] = (dist, done | wanted)
        for line in dist.requires or []:
            req = Requirement(line)
            envs = [{"extra": e} for e in (wanted or {""})]
            if req.marker is None or any(req.marker.evaluate(e) for e in envs):
                todo.append((req.name, set(req.extras)))
    return {d.metadata["Name"]: d.version for k, (d, _) in found.items()
            if k != canonicalize_name(root)}


def main():
    pins = closure()
    lines = [f"{name}=={version.split('+')[0]}"
             for name, version in sorted(pins.items(), key=lambda kv: kv[0].lower())
             if not TORCH_BUILD_DEPS.match(canonicalize_name(name))]
    print(HEADER + "\n".join(lines))


if __name__ == "__main__":
    main()
