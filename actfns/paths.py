"""Where data and checkpoints live: argument, else environment variable, else default.

- data: ``$ACTFNS_DATA``, default ``~/.cache/actfns/data``
- checkpoints: ``$ACTFNS_CHECKPOINTS``, default ``~/.cache/actfns/checkpoints``
"""

import os
from pathlib import Path

__all__ = ["data_dir", "checkpoint_dir"]

_CACHE = Path("~/.cache/actfns")


def _resolve(path, env, default):
    path = path if path is not None else os.environ.get(env) or default
    return Path(path).expanduser().resolve()


def data_dir(path=None):
    """Dataset root (torchvision layout: ``<root>/FashionMNIST/raw``)."""
    return _resolve(path, "ACTFNS_DATA", _CACHE / "data")


def checkpoint_dir(path=None):
    """Folder of trained networks (``NAME.config``, ``.tar``, ``.history.json``)."""
    return _resolve(path, "ACTFNS_CHECKPOINTS", _CACHE / "checkpoints")
