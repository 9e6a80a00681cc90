"""The bottom layer: the environment the package runs in.

Every ``ACTFNS_*`` variable is read here, and nowhere else:

=========================  ============================================================
``ACTFNS_DATA``            dataset root (default ``~/.cache/actfns/data``)
``ACTFNS_CHECKPOINTS``     folder of trained runs (default
                           ``~/.cache/actfns/checkpoints``)
``ACTFNS_DEVICE``          ``cpu``, ``cuda``, ``cuda:1``, ... (default: CUDA if present)
``ACTFNS_PROGRESS``        progress bars: ``1/true/yes/on`` or ``0/false/no/off``
``ACTFNS_PRETRAINED_URL``  where published trained networks are fetched from (a
                           folder URL holding ``manifest.json``); unset: never fetch
=========================  ============================================================

Also here: seeding, device choice, and safe file writes (a file is written beside its
target under a temporary name and renamed over it, so a reader sees the old file or
the new one, never a half-written one).
"""

import json
import os
import random
import secrets
import socket
from pathlib import Path

import numpy as np
import torch

__all__ = ["data_dir", "checkpoint_dir", "progress_enabled", "pretrained_url",
           "get_device", "device_of", "set_seed", "atomic_write", "read_json",
           "temp_name", "remove_stale_temp_files", "fsync_dir", "folder_exists",
           "as_executor"]

_CACHE = Path("~/.cache/actfns")
_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def _resolve(path, env, default):
    path = path if path is not None else os.environ.get(env) or default
    return Path(path).expanduser().resolve()


def folder_exists(folder, variable):
    """``folder.exists()``, with a parent that cannot be searched said clearly."""
    try:
        return folder.exists()
    except PermissionError:
        raise PermissionError(f"cannot look into {folder}: a parent folder is not "
                              f"searchable (permission denied); point {variable} "
                              "elsewhere or fix its permissions") from None


def data_dir(path=None):
    """Dataset root (torchvision layout: ``<root>/FashionMNIST/raw``)."""
    return _resolve(path, "ACTFNS_DATA", _CACHE / "data")


def checkpoint_dir(path=None):
    """Folder of trained runs (``path``, else ``$ACTFNS_CHECKPOINTS``, else the cache).

    Raises:
        NotADirectoryError: the path exists and is not a folder.
    """
    folder = _resolve(path, "ACTFNS_CHECKPOINTS", _CACHE / "checkpoints")
    if folder_exists(folder, "ACTFNS_CHECKPOINTS") and not folder.is_dir():
        where = "" if path is not None else " ($ACTFNS_CHECKPOINTS or the default)"
        raise NotADirectoryError(
            f"the checkpoint folder {folder}{where} is a file, not a folder: point "
            "ACTFNS_CHECKPOINTS (or model_path) at a folder")
    return folder


def _flag(name, default):
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return default
    if value in _TRUE | _FALSE:
        return value in _TRUE
    raise ValueError(f"{name}={os.environ[name]!r} is not a yes/no value; use one of "
                     f"{', '.join(sorted(_TRUE | _FALSE))}")


def progress_enabled(progress=None):
    """``progress`` if given, else ``$ACTFNS_PROGRESS`` (default: bars shown)."""
    return bool(progress) if progress is not None else _flag("ACTFNS_PROGRESS", True)


def pretrained_url():
    """``$ACTFNS_PRETRAINED_URL`` with a trailing slash, or None when unset/empty."""
    url = os.environ.get("ACTFNS_PRETRAINED_URL", "").strip()
    if not url:
        return None
    return url if url.endswith("/") else url + "/"


def get_device(device=None):
    """``device`` if given, else ``$ACTFNS_DEVICE``, else CUDA if present, else CPU.

    Raises:
        ValueError: the device is not one torch knows, or is a CUDA device on a
            machine without one (the message names the variable if it came from it).
    """
    source = "device"
    if device is None or device == "":
        device = os.environ.get("ACTFNS_DEVICE") or None
        source = "ACTFNS_DEVICE"
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(device)
    except (RuntimeError, TypeError, ValueError) as err:
        raise ValueError(f"{source}={device!r} is not a device torch knows ({err}); "
                         "use e.g. 'cpu', 'cuda' or 'cuda:0'") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{source}={str(device)!r}, but torch finds no CUDA device "
                         "on this machine; use 'cpu'")
    if device.type == "cuda" and device.index is not None and (
            device.index >= torch.cuda.device_count()):
        raise ValueError(f"{source}={str(device)!r}, but this machine has "
                         f"{torch.cuda.device_count()} CUDA device(s) (cuda:0 to "
                         f"cuda:{torch.cuda.device_count() - 1})")
    return device


def device_of(net):
    """The device of ``net``'s first parameter or buffer (CPU if it has none)."""
    for tensor in (*net.parameters(), *net.buffers()):
        return tensor.device
    return torch.device("cpu")


def set_seed(seed):
    """Seed Python's ``random``, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def temp_name(path, kind="tmp"):
    """A unique hidden name beside ``path``: ``.NAME.<host>.<pid>.<random>.<kind>``.

    The host and process id let :func:`remove_stale_temp_files` tell files of dead
    writers from files being written right now.
    """
    path = Path(path)
    host = socket.gethostname().replace(".", "-") or "host"
    return path.with_name(f".{path.name}.{host}.{os.getpid()}.{secrets.token_hex(4)}"
                          f".{kind}")


def _writer_is_dead(name):
    """For a :func:`temp_name`: True if its writer ran on this host and has exited."""
    parts = name.split(".")
    if len(parts) < 5 or parts[-4] != socket.gethostname().replace(".", "-"):
        return False  # another host's (or not ours): leave it
    try:
        os.kill(int(parts[-3]), 0)
    except ProcessLookupError:
        return True
    except (ValueError, PermissionError, OSError):
        return False
    return False


def remove_stale_temp_files(folder, stem):
    """Delete ``.STEM.*`` temporary files and folders left by writers that died.

    Returns the paths removed. Files of live writers, and of other hosts, stay.
    """
    import shutil

    removed = []
    try:
        candidates = list(Path(folder).glob(f".{stem}.*"))
    except OSError:
        return removed
    for path in candidates:
        if path.suffix not in (".tmp", ".link", ".new") or not _writer_is_dead(
                path.name):
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


def _create(path, mode):
    """Open a new file for writing, with ``mode`` less the umask (as ``open`` does)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(path, flags, mode)
    return os.fdopen(fd, "wb")


def fsync_dir(folder):
    """Make a rename or a new entry in ``folder`` durable (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write(path, write, mode=0o666):
    """Call ``write(file_object)`` on a temporary file, then rename it to ``path``.

    The file gets ``mode`` less the process's umask, like any new file; nothing
    process-wide is changed. An error or a kill leaves the old ``path`` as it was (a
    killed writer's temporary file is removed by the next write of the same file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temp_files(path.parent, path.name)
    tmp = temp_name(path)
    try:
        with _create(tmp, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def read_json(path, what, error=ValueError):
    """Parse a JSON file; a missing, unreadable or malformed file raises ``error``
    with a message that names the file and says what is wrong."""
    path = Path(path)
    try:
        text = path.read_bytes().decode()
    except FileNotFoundError:
        raise error(f"{what} file not found: {path}") from None
    except PermissionError as err:
        raise error(f"cannot read {what} file {path}: {err.strerror} (the file is "
                    "not damaged; check its permissions)") from None
    except (OSError, UnicodeDecodeError) as err:
        raise error(f"cannot read {what} file {path} ({err})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise error(f"{what} file {path} is not valid JSON ({err})") from None


def as_executor(executor, threads_allowed=True, what="this"):
    """``executor`` as a ``concurrent.futures.Executor``: a Dask ``Client`` gives its
    ``get_executor()``; anything without ``submit`` is refused. With
    ``threads_allowed=False`` a thread pool is refused too: tasks in threads of one
    process share torch's global random generator, which seeds the networks.
    """
    from concurrent.futures import ThreadPoolExecutor

    if hasattr(executor, "get_executor"):  # a Dask Client
        executor = executor.get_executor()
    if not callable(getattr(executor, "submit", None)):
        raise TypeError("executor must be a concurrent.futures.Executor (e.g. "
                        "ProcessPoolExecutor, or a Dask Client's get_executor()), got "
                        f"{type(executor).__name__}")
    if not threads_allowed and isinstance(executor, ThreadPoolExecutor):
        raise ValueError(
            f"{what} cannot run on a ThreadPoolExecutor: its tasks would share "
            "torch's global random generator, which seeds the networks, and get other "
            "weights than asked for; use a ProcessPoolExecutor or a Dask cluster with "
            "one thread per worker")
    return executor
