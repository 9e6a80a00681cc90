"""Networks on disk in the course's checkpoint format, written whole or not at all.

A network named ``NAME`` is two files: ``NAME.config`` (JSON, the network's
``config``) and ``NAME.tar`` (a ``torch.save``d state dict). actfns writes them into a
folder of their own and makes that folder current with one rename::

    FOLDER/NAME -> .NAME.v-3f2a9c1d0b7e   (a symbolic link, replaced by one rename)
    FOLDER/.NAME.v-3f2a9c1d0b7e/NAME.config, NAME.tar (and more files of the run)
    FOLDER/.NAME.lock                    (held while NAME is written or trained)

so a reader, whatever process dies when, sees the previous complete checkpoint or the
new one, never the config of one save with the weights of another. The course's own
files, ``FOLDER/NAME.config`` and ``FOLDER/NAME.tar`` side by side, load as they are;
actfns never writes over such a pair. Loading checks the whole zip archive (its
structure and every member's CRC-32) before torch reads it, and reads only tensors
(``weights_only``), so a damaged file is an error that names it, never wrong weights,
and a file cannot run code.
"""

import io
import json
import os
import re
import secrets
import shutil
import stat
import struct
import zipfile
import zlib
from pathlib import Path

import torch
from filelock import FileLock

from .env import checkpoint_dir, fsync_dir, get_device, read_json
from .model import BaseNetwork

__all__ = ["CheckpointError", "save_model", "load_model", "publish_files",
           "read_files", "run_lock", "checkpoint_layout", "network_from_bytes",
           "clean_versions"]


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, damaged, or does not fit the network.

    ``kind`` says which: ``"missing"``, ``"unreadable"`` (the file exists but cannot
    be read, e.g. no permission: it is not damaged), ``"damaged"``, ``"mismatch"``
    (intact, but not for this network), ``"foreign"`` (files actfns did not write,
    which it will not replace) or ``"ambiguous"``.
    """

    def __init__(self, message, kind="damaged"):
        super().__init__(message)
        self.kind = kind


_VERSION = re.compile(r"\.v-[0-9a-f]{12}$")
_LINK = re.compile(r"\.link-[0-9a-f]{12}$")


def run_lock(folder, name):
    """The lock that writers of ``NAME`` in ``folder`` hold (one per process and
    name, re-entrant, released by the system if the process dies)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(folder / f".{name}.lock", is_singleton=True)


def checkpoint_layout(folder, name):
    """``"run"`` (actfns's folder ``NAME``), ``"flat"`` (``NAME.config`` and
    ``NAME.tar`` side by side, as the course saves them) or None (neither).

    Raises:
        CheckpointError: both exist (kind ``"ambiguous"``).
    """
    folder = Path(folder)
    run = (folder / name).is_dir()
    flat = (folder / f"{name}.config").is_file() or (folder / f"{name}.tar").is_file()
    if run and flat:
        raise CheckpointError(
            f"{folder} holds both a run {name}/ and the files {name}.config/"
            f"{name}.tar; load one explicitly (af.load_model({str(folder / name)!r}, "
            f"{name!r}) for the run) or move the other away", kind="ambiguous")
    return "run" if run else "flat" if flat else None


def read_files(folder, name, suffixes, optional=()):
    """The bytes of ``NAME<suffix>`` for each suffix, all from one checkpoint.

    For a run, the link ``NAME`` is resolved once and every file is read from the
    folder it points to (retried if a writer replaced it meanwhile).

    Returns:
        ``({suffix: bytes or None}, {suffix: path})``; None for a missing optional file.
    Raises:
        CheckpointError: a file is missing (``"missing"``) or cannot be read
            (``"unreadable"``).
    """
    folder = Path(folder)
    for _attempt in range(10):
        layout = checkpoint_layout(folder, name)
        if layout is None:
            raise CheckpointError(f"no checkpoint {name} in {folder} (neither {name}/ "
                                  f"nor {name}.config and {name}.tar)", kind="missing")
        where = folder
        if layout == "run":
            try:
                where = folder / os.readlink(folder / name)
            except OSError:
                continue  # replaced while we looked; look again
        contents, paths = {}, {}
        try:
            for suffix in suffixes:
                path = paths[suffix] = where / f"{name}{suffix}"
                try:
                    contents[suffix] = path.read_bytes()
                except FileNotFoundError:
                    if suffix not in optional:
                        raise
                    contents[suffix] = None
        except FileNotFoundError as err:
            if layout == "run" and not where.is_dir():
                continue  # the version we resolved was removed: read the new one
            raise CheckpointError(f"checkpoint file not found: {err.filename}",
                                  kind="missing") from None
        except PermissionError as err:
            raise CheckpointError(
                f"cannot read {err.filename}: permission denied. The file is not "
                "damaged; give yourself read permission (chmod u+r) or point "
                "ACTFNS_CHECKPOINTS elsewhere", kind="unreadable") from None
        except IsADirectoryError as err:
            raise CheckpointError(f"{err.filename} is a folder, not a checkpoint "
                                  "file", kind="damaged") from None
        except OSError as err:
            raise CheckpointError(f"cannot read {err.filename or where}: {err}",
                                  kind="unreadable") from None
        return contents, paths
    raise CheckpointError(f"{folder / name} kept changing while it was read (another "
                          "process saving it over and over?)", kind="unreadable")


def _write_new(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # less the umask
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def clean_versions(folder, name, keep=None):
    """Remove the versions of ``NAME`` that are not current, and links left by a
    killed writer. Call with ``run_lock`` held. Returns the paths removed."""
    folder = Path(folder)
    current = keep
    if current is None and (folder / name).is_symlink():
        current = os.readlink(folder / name)
    removed = []
    for path in folder.glob(f".{name}.*"):
        rest = path.name[len(name) + 1:]
        if not (_VERSION.fullmatch(rest) or _LINK.fullmatch(rest)):
            continue  # another name's file, or the lock
        if path.name == current:
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
            removed.append(path)
        except OSError:
            pass
    return removed


def publish_files(folder, name, files):
    """Write ``{suffix: bytes}`` as ``NAME<suffix>`` into a new version of ``NAME``
    and make it current with one rename; older versions are removed.

    Returns:
        the folder of the new version.
    Raises:
        CheckpointError: ``folder`` holds ``NAME.config``/``NAME.tar`` that actfns did
            not write (kind ``"foreign"``), or ``NAME`` is not actfns's link.
    """
    folder = checkpoint_dir(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with run_lock(folder, name):
        link = folder / name
        if (folder / f"{name}.config").exists() or (folder / f"{name}.tar").exists():
            raise CheckpointError(
                f"{folder} holds {name}.config/{name}.tar written by someone else (the "
                "course's published network?); actfns does not replace them. Load them "
                f"with af.load_model({str(folder)!r}, {name!r}); to save or train "
                f"{name} here, move them to another folder first", kind="foreign")
        if link.exists() and not link.is_symlink():
            raise CheckpointError(f"{link} is not a checkpoint link written by actfns; "
                                  "move it away to save here", kind="foreign")
        version = folder / f".{name}.v-{secrets.token_hex(6)}"
        os.mkdir(version, 0o777)  # less the umask
        try:
            for suffix, data in files.items():
                _write_new(version / f"{name}{suffix}", data)
            fsync_dir(version)
            tmp_link = folder / f".{name}.link-{secrets.token_hex(6)}"
            os.symlink(version.name, tmp_link)
            os.replace(tmp_link, link)  # the one step that makes the new files current
        except BaseException:
            shutil.rmtree(version, ignore_errors=True)
            raise
        fsync_dir(folder)
        clean_versions(folder, name, keep=version.name)
    return version


def save_model(model, model_path, model_name):
    """Save ``model.config`` and ``model.state_dict()`` as checkpoint ``model_name``.

    Both files become visible together (see the module docstring). Returns the
    ``(config_file, model_file)`` paths.

    Args:
        model: a ``BaseNetwork`` (anything with ``config`` and ``state_dict``).
        model_path: folder (``None``: :func:`actfns.checkpoint_dir`).
        model_name: checkpoint name, e.g. ``"FashionMNIST_relu"``.
    """
    version = publish_files(model_path, model_name, checkpoint_bytes(model))
    folder = version.parent / model_name
    return folder / f"{model_name}.config", folder / f"{model_name}.tar"


def checkpoint_bytes(model):
    """``{".config": bytes, ".tar": bytes}`` of a network, in the course's format."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return {".config": json.dumps(model.config).encode(), ".tar": buffer.getvalue()}


def _check_archive(data, path):
    """Check the zip archive that ``torch.save`` writes, before torch reads it.

    torch's reader does not check the CRC-32s it stores, and trusts the zip directory:
    a member marked as a folder there loads as uninitialised memory. Every member must
    be a plain stored file whose bytes match its CRC. Files in torch's legacy format
    (not zip) are left to ``torch.load``.
    """
    if data[:2] != b"PK":
        return
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            infos = archive.infolist()
            if len({i.filename for i in infos}) != len(infos):
                raise zipfile.BadZipFile("two members share a name")
            for info in infos:
                mode = info.external_attr >> 16
                if (info.is_dir() or info.external_attr & 0x10
                        or stat.S_ISDIR(mode) or stat.S_ISLNK(mode)):
                    raise zipfile.BadZipFile(f"member {info.filename} is marked as a "
                                             "folder or link")
                if info.flag_bits & 0x1:
                    raise zipfile.BadZipFile(f"member {info.filename} is encrypted")
                if info.compress_type != zipfile.ZIP_STORED or (
                        info.file_size != info.compress_size):
                    raise zipfile.BadZipFile(f"member {info.filename} is not stored "
                                             "as torch.save stores it")
                if info.CRC == 0 and info.file_size:  # torch's compute_crc32=False
                    continue
                with archive.open(info) as member:  # raises at the end on a bad CRC
                    while member.read(1 << 20):
                        pass
    except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, ValueError,
            OSError, EOFError, RuntimeError, struct.error, KeyError, IndexError,
            OverflowError, UnicodeDecodeError, zlib.error) as err:
        raise CheckpointError(
            f"{path} is damaged ({type(err).__name__}: {err}); delete it and retrain, "
            "or download it again") from None


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


def _map_location(map_location):
    if map_location is None:
        return None
    if callable(map_location) or isinstance(map_location, dict):
        return map_location
    return get_device(map_location)


def read_state(data, path, map_location="cpu"):
    """The state dict in a ``.tar``'s bytes: archive checked, tensors only.

    Raises:
        CheckpointError: damaged, or not a state dict of tensors.
    """
    _check_archive(data, path)
    try:
        state = torch.load(io.BytesIO(data), map_location=map_location,
                           weights_only=True)
    except Exception as err:  # torch raises many types for damaged files
        refused = re.search(r"(?i)unsupported GLOBAL:? (?:GLOBAL )?([\w.]+)", str(err))
        if refused:  # a readable pickle with Python objects in it (a whole model?)
            raise CheckpointError(
                f"{path} is not a state dict of tensors: it stores "
                f"{refused.group(1)}, which weights-only loading refuses (loading it "
                "could run untrusted code); save the weights with actfns.save_model "
                "or torch.save(model.state_dict(), path)", kind="mismatch") from None
        raise CheckpointError(
            f"cannot load {path}: the file is truncated or corrupt "
            f"({_load_error_cause(err)}); delete it and retrain, or download it again"
        ) from None
    if not isinstance(state, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor)
            for k, v in state.items()):
        raise CheckpointError(f"{path} holds a {type(state).__name__}, not a state "
                              "dict of tensors", kind="mismatch")
    bad = [k for k, v in state.items()
           if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{path} holds NaN or infinite weights in {bad[0]} (a "
                              "diverged training run?)", kind="mismatch")
    return state


def network_from_bytes(config_bytes, tar_bytes, paths, net=None, map_location="cpu"):
    """Build (or fill ``net``) from a checkpoint's bytes; see :func:`load_model`."""
    config_file, model_file = paths[".config"], paths[".tar"]
    try:
        config = json.loads(config_bytes.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"model config file {config_file} is not valid JSON "
                              f"({err}); delete it and retrain, or download it "
                              "again") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_file} holds {json.dumps(config)[:60]}, not a "
                              "network config (a JSON object)")
    if net is None:
        try:
            net = BaseNetwork(act_fn=config.pop("act_fn"), **config)
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(
                f"{config_file} does not describe a BaseNetwork: {err}") from None
        except RuntimeError as err:  # an allocation the machine cannot make
            raise CheckpointError(f"the network of {config_file} cannot be built on "
                                  f"this machine: {str(err)[:200]}") from None
    state = read_state(tar_bytes, model_file, _map_location(map_location))
    try:
        net.load_state_dict(state)
    except RuntimeError as err:
        raise CheckpointError(
            f"weights in {model_file} do not fit the network described by "
            f"{config_file}:\n{err}", kind="mismatch") from None
    return net


def load_model(model_path, model_name, net=None, map_location="cpu"):
    """Load checkpoint ``model_name`` from ``model_path`` (an actfns run or the
    course's ``NAME.config`` + ``NAME.tar``).

    Args:
        net: if given, the weights are loaded into it; else a new ``BaseNetwork`` is
            built from the config.
        map_location: device for the loaded tensors.
    Raises:
        CheckpointError: naming the file: missing, unreadable, truncated or corrupt
            (every zip member is checked), names an unknown activation, or its tensors
            do not fit the network. ``ValueError`` for a device this machine lacks.
    """
    folder = checkpoint_dir(model_path)
    _map_location(map_location)  # a bad device is the caller's error, not the file's
    contents, paths = read_files(folder, model_name, (".config", ".tar"))
    return network_from_bytes(contents[".config"], contents[".tar"], paths, net,
                              map_location)


def read_config(path):
    """A checkpoint's config as a dict (CheckpointError if missing or malformed)."""
    return read_json(path, "model config", CheckpointError)
