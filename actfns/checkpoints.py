"""Saving and loading networks in the course's checkpoint format.

A network named ``NAME`` is two files in one folder: ``NAME.config`` (JSON, the
network's ``config``) and ``NAME.tar`` (a ``torch.save``d state dict). The course's
published pretrained files load unchanged. Writes are atomic: a file is written beside
its target and renamed over it, so an interrupted save leaves the old file intact.
"""

import json
import os
import re
import tempfile
import zipfile
from pathlib import Path

import torch

from .model import BaseNetwork
from .paths import checkpoint_dir

__all__ = ["CheckpointError", "save_model", "load_model", "atomic_write", "read_json"]


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, unreadable or does not fit the network."""


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, write):
    """Call ``write(file_object)`` on a temporary file, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path, what):
    """Parse a JSON file; a missing or malformed file raises CheckpointError."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{what} file not found: {path}")
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(
            f"{what} file {path} is not valid JSON ({err}); delete it and retrain, "
            "or download it again"
        ) from None


def _check_crc(model_file):
    """Check the CRC-32s that ``torch.save`` stores in its zip archive.

    ``torch.load`` does not check them, so a damaged byte inside a tensor would load
    silently as a wrong weight. Legacy (non-zip) files are left to ``torch.load``.
    """
    if not zipfile.is_zipfile(model_file):
        return
    try:
        with zipfile.ZipFile(model_file) as archive:
            for info in archive.infolist():
                if info.CRC == 0:  # saved without CRC (torch's compute_crc32=False)
                    continue
                with archive.open(info) as member:  # raises at the end if CRC differs
                    while member.read(1 << 20):
                        pass
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        raise CheckpointError(
            f"{model_file} is corrupt ({err}); delete it and retrain, or download it "
            "again"
        ) from None


def _files(model_path, model_name):
    folder = checkpoint_dir(model_path)
    return folder / f"{model_name}.config", folder / f"{model_name}.tar"


def save_model(model, model_path, model_name):
    """Write ``model.config`` and ``model.state_dict()`` as NAME.config and NAME.tar.

    Args:
        model: a ``BaseNetwork`` (anything with ``config`` and ``state_dict``).
        model_path: folder (``None``: :func:`actfns.checkpoint_dir`).
        model_name: file stem, e.g. ``"FashionMNIST_relu"``.
    Returns:
        ``(config_file, model_file)`` paths.
    """
    config_file, model_file = _files(model_path, model_name)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    text = json.dumps(model.config).encode()
    atomic_write(model_file, lambda f: torch.save(state, f))
    atomic_write(config_file, lambda f: f.write(text))
    return config_file, model_file


def _load_error_cause(err):
    """The cause in a ``torch.load`` error, e.g. "UnpicklingError: Unsupported operand
    110", without torch's advice: for a weights-only load that advice is to retry with
    ``weights_only=False``, which would run whatever a damaged or foreign file holds."""
    text = str(err)
    unpickler = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    if unpickler:
        text = unpickler.group(1)
    elif text.startswith("Weights only load failed"):
        text = "not a weights-only checkpoint"
    cause = re.split(r"\.\s|\n", text.strip(), maxsplit=1)[0][:200]
    return f"{type(err).__name__}: {cause}" if cause else type(err).__name__


def load_model(model_path, model_name, net=None, map_location="cpu"):
    """Load NAME.config and NAME.tar from ``model_path``.

    Args:
        net: if given, the weights are loaded into it; else a new ``BaseNetwork`` is
            built from the config.
        map_location: device for the loaded tensors.
    Raises:
        CheckpointError: naming the file, if a file is missing, truncated or corrupt,
            names an unknown activation, or its tensors do not fit the network.
    """
    config_file, model_file = _files(model_path, model_name)
    config = read_json(config_file, "model config")
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_file} holds {json.dumps(config)[:60]}, not a "
                              "network config (a JSON object)")
    if not model_file.is_file():
        raise CheckpointError(f"model weights file not found: {model_file}")
    if net is None:
        try:
            net = BaseNetwork(act_fn=config.pop("act_fn"), **config)
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(
                f"{config_file} does not describe a BaseNetwork: {err}"
            ) from None
    _check_crc(model_file)
    try:
        state = torch.load(model_file, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for truncated/garbled files
        refused = re.search(r"(?i)unsupported GLOBAL:? (?:GLOBAL )?([\w.]+)", str(err))
        if refused:  # a readable pickle with Python objects in it (a whole model?)
            raise CheckpointError(
                f"{model_file} is not a state dict of tensors: it stores "
                f"{refused.group(1)}, which weights-only loading refuses (loading it "
                "could run untrusted code); save the weights with actfns.save_model "
                "or torch.save(model.state_dict(), path)"
            ) from None
        raise CheckpointError(
            f"cannot read {model_file}: the file is truncated or corrupt "
            f"({_load_error_cause(err)}); delete it and retrain, or download it again"
        ) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{model_file} holds a {type(state).__name__}, "
                              "not a state dict")
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(
            f"weights in {model_file} do not fit the network described by "
            f"{config_file}:\n{err}"
        ) from None
    return net
