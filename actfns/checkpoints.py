"""Networks on disk in the course's checkpoint format, written whole or not at all.

A network named ``NAME`` is two files: ``NAME.config`` (JSON, the network's
``config``) and ``NAME.tar`` (a ``torch.save``d state dict). actfns writes them into a
folder of their own and makes that folder current with one rename::

    FOLDER/NAME -> .NAME.v-3f2a9c1d0b7e   (a symbolic link, replaced by one rename)
    FOLDER/.NAME.v-3f2a9c1d0b7e/NAME.config, NAME.tar (and more files of the run)
    FOLDER/.NAME.lock                    (held while NAME is written or trained)

so a reader, whatever process dies when, sees the previous complete checkpoint or the
new one, never the config of one save with the weights of another. The twelve hex
digits of a version are taken from the SHA-256 of its files (:func:`version_digest`),
and every read checks them: a damaged byte in any file of a version, its history
included, is an error that names the file, never a network or a history that differs
from what was saved. A version's files are read-only, and are never changed once the
link points to them; a killed writer's leftovers (a half-written version, a temporary
link) are removed by the next save or load of the same name.

The course's own files, ``FOLDER/NAME.config`` and ``FOLDER/NAME.tar`` side by side,
load as they are; actfns never writes over such a pair, nor over a folder or link
``NAME`` it did not make. Loading checks the whole zip archive (its structure and
every member's CRC-32) before torch reads it, and reads only tensors
(``weights_only``), so a damaged file is an error that names it, never wrong weights,
and a file cannot run code.
"""

import errno
import hashlib
import io
import json
import os
import re
import shutil
import stat
import struct
import time
import zipfile
import zlib
from pathlib import Path

import torch
from filelock import FileLock, Timeout

from .course import COURSE_CHECKPOINT_SHA256
from .env import checkpoint_dir, fsync_dir, get_device, read_json, temp_name
from .model import BaseNetwork

__all__ = ["CheckpointError", "save_model", "load_model", "publish_files",
           "read_files", "run_lock", "checkpoint_layout", "network_from_bytes",
           "clean_versions", "clean_leftovers", "check_name", "version_digest",
           "checkpoint_entry"]


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, damaged, or does not fit the network.

    ``kind`` says which: ``"missing"``, ``"unreadable"`` (the file exists but cannot
    be read, e.g. no permission: it is not damaged), ``"unwritable"`` (the folder
    cannot be written), ``"damaged"``, ``"mismatch"`` (intact, but not for this
    network), ``"foreign"`` (files actfns did not write, which it will not replace)
    or ``"ambiguous"``.
    """

    def __init__(self, message, kind="damaged"):
        super().__init__(message)
        self.kind = kind


NAME_MAX = 150  # bytes: ".NAME.<host, 64>.<pid>.<random>.link" fits in 255
_FILE_MODE = 0o444  # a version's files: read-only (less the umask), never changed
_ATTEMPTS = 60  # reads retried while writers replace the version being read
_LEGACY_TEMP_AGE = 3600  # s: an older actfns's temp file untouched this long is dead


def check_name(name):
    """Return ``name`` if it can name a checkpoint in a folder, else raise.

    Raises:
        TypeError: not a string. ValueError: empty, ``.``/``..``, holds a path
            separator or NUL, starts with ``.`` (actfns's hidden files), ends with
            ``.config``/``.tar``, or is longer than 150 bytes.
    """
    if not isinstance(name, str):
        raise TypeError(f"a checkpoint name must be a string, got "
                        f"{type(name).__name__} {name!r}")
    hint = ("; pass the folder as model_path and only the name (e.g. "
            "'FashionMNIST_relu') as model_name")
    if not name:
        problem = "is empty" + hint
    elif name in (".", ".."):
        problem = "is not a name" + hint
    elif "/" in name or "\\" in name or (os.altsep and os.altsep in name):
        problem = "contains a path separator" + hint
    elif "\0" in name:
        problem = "contains a NUL character"
    elif name.startswith("."):
        problem = "starts with '.', which actfns keeps for its hidden files"
    elif name.endswith((".config", ".tar")):
        stem = name[:name.rindex(".")]
        problem = (f"ends with {Path(name).suffix!r}: give the name without it (the "
                   f"files of {stem!r} are {stem}.config and {stem}.tar)")
    else:
        try:
            size = len(name.encode())
        except UnicodeEncodeError:
            size, problem = 0, "cannot be encoded as a file name"
        else:
            problem = None
        if size > NAME_MAX:
            problem = f"is {size} bytes long; at most {NAME_MAX} are allowed"
    if problem:
        shown = name if len(name) <= 60 else name[:57] + "..."
        raise ValueError(f"checkpoint name {shown!r} {problem}")
    return name


def _unreadable(path, err):
    if isinstance(err, PermissionError):
        return CheckpointError(
            f"cannot read {path}: permission denied. The file is not damaged; give "
            "yourself read permission (chmod u+r on it, u+rx on its folders) or point "
            "ACTFNS_CHECKPOINTS elsewhere", kind="unreadable")
    return CheckpointError(f"cannot read {path}: {err.strerror or err}",
                           kind="unreadable")


def _unwritable(folder, err):
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        advice = "free some space there, or point ACTFNS_CHECKPOINTS (model_path) at "
        advice += "another disk"
    else:
        advice = "give yourself write permission, or point ACTFNS_CHECKPOINTS "
        advice += "(model_path) at a folder you can write"
    return CheckpointError(f"cannot write in {folder}: {err.strerror or err}. Nothing "
                           f"there was changed; {advice}", kind="unwritable")


def _folder(path):
    """:func:`actfns.checkpoint_dir`, with a folder that cannot be looked at as a
    CheckpointError (``"unreadable"``) rather than a bare PermissionError."""
    try:
        return checkpoint_dir(path)
    except PermissionError as err:
        raise _unreadable(err.filename or path, err) from None


def run_lock(folder, name):
    """The lock that writers of ``NAME`` in ``folder`` hold (one per process and
    name, re-entrant, released by the system if the process dies)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(folder / f".{check_name(name)}.lock", is_singleton=True)


def _acquire(folder, name, timeout=-1):
    """Acquire ``run_lock``; a folder where the lock cannot be made is an error that
    says so (``"unwritable"``). Raises ``filelock.Timeout`` as ``acquire`` does."""
    try:
        lock = run_lock(folder, name)
        lock.acquire(timeout=timeout)
    except Timeout:
        raise
    except OSError as err:
        raise _unwritable(folder, err) from None
    return lock


# --------------------------------------------------------------------------------------
# What FOLDER holds under NAME


def _lstat(path):
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as err:
        raise _unreadable(path, err) from None


def _is_version(name, entry):
    """True if ``entry`` (a file name) is the name of a version of ``NAME``."""
    return (entry.startswith(f".{name}.v-") and len(entry) == len(name) + 16
            and re.fullmatch(r"[0-9a-f]{12}", entry[-12:]) is not None)


def checkpoint_entry(folder, name):
    """``(layout, target)`` of NAME in ``folder``.

    layout: None (nothing), ``"version"`` (actfns's link to one of NAME's versions,
    ``target``), ``"dangling"`` (actfns's link to a version that is gone), ``"folder"``
    (a folder ``NAME``, or a link to one, that actfns did not make), ``"file"`` (a
    plain file ``NAME``) or ``"flat"`` (the course's pair). Raises CheckpointError:
    both a folder and a pair (``"ambiguous"``), or the folder cannot be looked into.
    """
    folder = Path(folder)
    link = folder / check_name(name)
    st = _lstat(link)
    flat = any(_lstat(folder / f"{name}{suffix}") is not None
               for suffix in (".config", ".tar"))
    layout, target = None, None
    if st is not None and stat.S_ISLNK(st.st_mode):
        try:
            target = os.readlink(link)
        except FileNotFoundError:
            return checkpoint_entry(folder, name)  # removed meanwhile: look again
        except OSError as err:
            raise _unreadable(link, err) from None
        if _is_version(name, target):
            there = _lstat(folder / target)
            layout = "version" if there is not None and stat.S_ISDIR(
                there.st_mode) else "dangling"
        else:
            layout = "folder"
    elif st is not None:
        layout = "folder" if stat.S_ISDIR(st.st_mode) else "file"
    if flat and layout in (None, "dangling"):
        return "flat", None
    if flat:
        raise CheckpointError(
            f"{folder} holds both {name} and the files {name}.config/{name}.tar; load "
            f"one explicitly (af.load_model({str(folder / name)!r}, {name!r}) for the "
            "first) or move the other away", kind="ambiguous")
    return layout, target


def checkpoint_layout(folder, name):
    """``"run"`` (a folder ``NAME``: actfns's link to a version, or another folder),
    ``"flat"`` (``NAME.config`` and ``NAME.tar`` side by side, as the course saves
    them) or None (neither).

    Raises:
        CheckpointError: both exist (kind ``"ambiguous"``), or ``folder`` cannot be
            looked into (``"unreadable"``).
    """
    layout, _ = checkpoint_entry(Path(folder), check_name(name))
    return {"version": "run", "folder": "run", "flat": "flat"}.get(layout)


def version_digest(files):
    """SHA-256 (hex) of a version's files, ``{file name: bytes}``: names, sizes and
    contents. A version ``.NAME.v-XXXXXXXXXXXX`` is named after one of the first five
    12-digit slices of it."""
    h = hashlib.sha256(b"actfns checkpoint version 1\0")
    for fname in sorted(files):
        data = files[fname]
        h.update(fname.encode() + b"\0" + len(data).to_bytes(8, "little")
                 + hashlib.sha256(data).digest())
    return h.hexdigest()


def _slices(digest):
    return [digest[i:i + 12] for i in range(0, 60, 12)]


# --------------------------------------------------------------------------------------
# Reading


def _read_plain(where, name, suffixes, optional, kind_missing="missing"):
    contents, paths = {}, {}
    for suffix in suffixes:
        path = paths[suffix] = where / f"{name}{suffix}"
        try:
            contents[suffix] = path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            if suffix not in optional:
                raise CheckpointError(f"checkpoint file not found: {path}",
                                      kind=kind_missing) from None
            contents[suffix] = None
        except IsADirectoryError:
            raise CheckpointError(f"{path} is a folder, not a checkpoint file; actfns "
                                  "does not replace it", kind="foreign") from None
        except OSError as err:
            raise _unreadable(path, err) from None
    return contents, paths


class _Moved(Exception):
    """The version being read was replaced or removed: read the new one."""


def _read_version(where):
    """``({file name: bytes}, (device, inode))`` of a version folder."""
    try:
        ident = os.stat(where)
        files = {}
        for entry in os.listdir(where):
            path = where / entry
            try:
                files[entry] = path.read_bytes()
            except IsADirectoryError:
                files[entry] = b"<a folder>"  # not ours: the digest will not match
    except (FileNotFoundError, NotADirectoryError):
        raise _Moved from None
    except OSError as err:
        raise _unreadable(getattr(err, "filename", None) or where, err) from None
    return files, (ident.st_dev, ident.st_ino)


def _still_there(folder, name, target, ident):
    try:
        st = os.stat(folder / target)
        return os.readlink(folder / name) == target and (
            st.st_dev, st.st_ino) == ident
    except OSError:
        return False


def _intact(fname, data):
    """False if ``data`` is certainly not what was saved as ``fname`` (a ``.tar``
    whose archive fails its checks, a ``.config`` or history that is not JSON)."""
    try:
        if fname.endswith(".tar"):
            _check_archive(data, fname)
        else:
            json.loads(data.decode())
    except (CheckpointError, UnicodeDecodeError, ValueError, RecursionError):
        return False
    return True


def _damage(name, files, where):
    """Which file of a damaged version is damaged, as far as its files tell."""
    history = f"{name}.history.json"
    expected = [f"{name}.config", f"{name}.tar"]
    missing = [f for f in expected if f not in files]
    if missing:
        return f"{where / missing[0]} is missing"
    extra = sorted(set(files) - {*expected, history})
    if extra:
        return f"{where / extra[0]} is not a file actfns wrote there"
    broken = [f for f in (*expected, history) if f in files and not _intact(
        f, files[f])]
    if broken:
        return f"{where / broken[0]} is not the file that was saved"
    if history not in files:
        return (f"{where / expected[0]} or {where / expected[1]} is not the file that "
                "was saved")
    try:
        recorded = json.loads(files[history].decode())["sha256"]
        bad = [f for f, suffix in zip(expected, (".config", ".tar"))
               if hashlib.sha256(files[f]).hexdigest() != recorded.get(suffix)]
    except (KeyError, TypeError, AttributeError):
        bad = []
    if bad:
        return (f"{where / bad[0]} does not match the SHA-256 that its history "
                f"{where / history} records (one of the two is not what was saved)")
    return f"{where / history} is not the history that was saved"


def read_files(folder, name, suffixes, optional=(), verify=True):
    """The bytes of ``NAME<suffix>`` for each suffix, all from one checkpoint.

    For actfns's run, the link ``NAME`` is resolved once and every file of the version
    it points to is read and checked against the version's SHA-256 (retried if a
    writer replaced the version meanwhile).

    Args:
        verify: check a version's SHA-256 (False: only read, e.g. to replace it).
    Returns:
        ``({suffix: bytes or None}, {suffix: path})``; None for a missing optional file.
    Raises:
        CheckpointError: a file is missing (``"missing"``), cannot be read
            (``"unreadable"``), is damaged (``"damaged"``), or ``NAME`` is something
            actfns did not write and that holds no checkpoint (``"foreign"``).
    """
    folder, name = Path(folder), check_name(name)
    for attempt in range(_ATTEMPTS):
        if attempt:
            time.sleep(min(0.001 * attempt, 0.05))
        layout, target = checkpoint_entry(folder, name)
        if layout == "dangling" and _current(folder, name) != target:
            continue  # a writer replaced the link and removed the version it read
        if layout in (None, "dangling"):
            raise CheckpointError(f"no checkpoint {name} in {folder} (neither {name}/ "
                                  f"nor {name}.config and {name}.tar)", kind="missing")
        if layout == "file":
            raise CheckpointError(
                f"{folder / name} is a file, not a checkpoint: a checkpoint {name} is "
                f"{name}.config and {name}.tar, or actfns's folder {name}/; actfns "
                "does not replace it", kind="foreign")
        if layout == "flat":
            contents, paths = _read_plain(folder, name, suffixes, optional)
            if verify:
                _check_course_pair(name, contents, paths)
            return contents, paths
        if layout == "folder":
            return _read_plain(folder / name, name, suffixes, optional,
                               kind_missing="foreign")
        where = folder / target
        try:
            files, ident = _read_version(where)
        except _Moved:
            continue
        if verify and target[-12:] not in _slices(version_digest(files)):
            if not _still_there(folder, name, target, ident):
                continue  # replaced while we read: read the new version
            what = _damage(name, files, where)
            raise CheckpointError(
                f"checkpoint {name} in {folder} is damaged: {what} (its files do not "
                "match the SHA-256 in the name of their folder). Delete "
                f"{folder / name} and save or train it again")
        contents, paths = {}, {}
        for suffix in suffixes:
            paths[suffix] = where / f"{name}{suffix}"
            contents[suffix] = files.get(f"{name}{suffix}")
            if contents[suffix] is None and suffix not in optional:
                raise CheckpointError(f"checkpoint file not found: {paths[suffix]}",
                                      kind="missing")
        return contents, paths
    raise CheckpointError(f"{folder / name} kept changing while it was read (another "
                          "process saving it over and over?)", kind="unreadable")


def _check_course_pair(name, contents, paths):
    """The course's published ``.tar`` must come with the course's ``.config``: its
    files have published SHA-256s, the only check a pair without a history allows."""
    tar, config = contents.get(".tar"), contents.get(".config")
    pinned = COURSE_CHECKPOINT_SHA256.get(f"{name}.tar")
    if pinned is None or tar is None or config is None:
        return
    if hashlib.sha256(tar).hexdigest() == pinned and hashlib.sha256(
            config).hexdigest() != COURSE_CHECKPOINT_SHA256[f"{name}.config"]:
        raise CheckpointError(
            f"{paths['.config']} is not the config the course published with "
            f"{paths['.tar']} (its SHA-256 differs): damaged or edited. Download it "
            "again (af.fetch_course_checkpoints)")


# --------------------------------------------------------------------------------------
# Writing


def _write_new(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(
        os, "O_CLOEXEC", 0), _FILE_MODE)  # less the umask, like any new file
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _remove(path):
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
        return True
    except FileNotFoundError:
        return False
    except OSError:
        return False


def _leftovers(folder, name, current):
    """Entries of ``folder`` that writers of NAME left: versions other than
    ``current``, staging folders and temporary links, and an older actfns's
    temporary files (untouched for an hour)."""
    staging = re.compile(rf"\.{re.escape(name)}\.[^.]+\.[0-9]+\.[0-9a-f]{{8}}"
                         r"\.(new|link)")
    wip_link = re.compile(rf"\.{re.escape(name)}\.link-[0-9a-f]{{12}}")
    legacy = re.compile(rf"\.{re.escape(name)}\.(config|tar|history\.json)"
                        r"\.[a-z0-9_]{8}\.tmp")
    found = []
    for path in folder.glob(f".{glob_escape(name)}.*"):
        entry = path.name
        if entry == current:
            continue
        if _is_version(name, entry) or staging.fullmatch(entry) or wip_link.fullmatch(
                entry):
            found.append(path)
        elif legacy.fullmatch(entry):
            try:
                if time.time() - path.lstat().st_mtime > _LEGACY_TEMP_AGE:
                    found.append(path)
            except OSError:
                pass
    return found


def glob_escape(text):
    """``text`` with glob's special characters quoted."""
    return re.sub(r"([*?\[])", r"[\1]", text)


def _current(folder, name):
    """The target of the link ``NAME`` (None if it is not a link)."""
    try:
        return os.readlink(folder / name)
    except OSError:
        return None


def clean_versions(folder, name, keep=None):
    """Remove what writers of NAME left: versions that are not current (``keep``, else
    the link's target), staging folders and temporary links of killed writers. Call
    with ``run_lock`` held. Returns the paths removed."""
    folder, name = Path(folder), check_name(name)
    current = _current(folder, name) if keep is None else keep
    try:
        found = _leftovers(folder, name, current)
    except OSError:
        return []
    return [path for path in found if _remove(path)]


def clean_leftovers(folder, name):
    """:func:`clean_versions` if a killed writer left something and nobody is writing
    NAME now (cheap when there is nothing to remove). Returns the paths removed."""
    folder, name = Path(folder), check_name(name)
    try:
        if not _leftovers(folder, name, _current(folder, name)):
            return []
    except OSError:
        return []
    try:
        lock = _acquire(folder, name, timeout=0)
    except (Timeout, CheckpointError):
        return []  # being written now, or a folder we cannot write
    try:
        return clean_versions(folder, name)
    finally:
        lock.release()


def _refuse_foreign(folder, name):
    """``checkpoint_entry``; CheckpointError (``"foreign"``) if NAME is something
    actfns did not write."""
    layout, target = checkpoint_entry(folder, name)
    if layout == "flat":
        raise CheckpointError(
            f"{folder} holds {name}.config/{name}.tar written by someone else (the "
            "course's published network?); actfns does not replace them. Load them "
            f"with af.load_model({str(folder)!r}, {name!r}); to save or train "
            f"{name} here, move them to another folder first", kind="foreign")
    if layout in ("folder", "file"):
        raise CheckpointError(
            f"{folder / name} is a {layout} that actfns did not make; actfns does "
            "not replace it. Move it away to save here", kind="foreign")
    return layout, target


def publish_files(folder, name, files):
    """Write ``{suffix: bytes}`` as ``NAME<suffix>`` into a new version of ``NAME``
    and make it current with one rename; older versions are removed.

    Returns:
        the folder of the new version.
    Raises:
        CheckpointError: ``folder`` holds ``NAME.config``/``NAME.tar``, or a file or
            folder ``NAME``, that actfns did not write (kind ``"foreign"``), or cannot
            be written (``"unwritable"``).
    """
    name = check_name(name)
    folder = _folder(folder)
    for suffix in files:
        if not re.fullmatch(r"\.[\w.-]+", suffix):
            raise ValueError(f"not a checkpoint file suffix: {suffix!r}")
    _refuse_foreign(folder, name)  # before the lock: a refusal leaves no file behind
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _unwritable(folder, err) from None
    lock = _acquire(folder, name)
    try:
        layout, target = _refuse_foreign(folder, name)
        clean_versions(folder, name, keep=target if layout == "version" else "")
        named = {f"{name}{suffix}": data for suffix, data in files.items()}
        version = next((folder / f".{name}.v-{s}" for s in _slices(version_digest(
            named)) if _lstat(folder / f".{name}.v-{s}") is None), None)
        if version is None:  # old versions of the same files that cannot be removed
            raise CheckpointError(
                f"cannot remove the older versions .{name}.v-* in {folder}; remove "
                "them by hand", kind="unwritable")
        stage = temp_name(folder / name, "new")
        tmp_link = temp_name(folder / name, "link")
        try:
            os.mkdir(stage, 0o777)  # less the umask
            for fname, data in named.items():
                _write_new(stage / fname, data)
            fsync_dir(stage)
            os.rename(stage, version)
            os.symlink(version.name, tmp_link)
            os.replace(tmp_link, folder / name)  # the one step that publishes it all
        except BaseException as err:
            for path in (tmp_link, stage):
                _remove(path)
            if _current(folder, name) != version.name:
                _remove(version)
            if isinstance(err, OSError):
                raise _unwritable(folder, err) from None
            raise
        fsync_dir(folder)
        clean_versions(folder, name, keep=version.name)
    finally:
        lock.release()
    return version


def checkpoint_bytes(model):
    """``{".config": bytes, ".tar": bytes}`` of a network, in the course's format.

    Raises:
        TypeError: ``model`` has no ``state_dict``, or no JSON ``config`` dict.
    """
    config = getattr(model, "config", None)
    if not isinstance(config, dict) or not hasattr(model, "state_dict"):
        raise TypeError(f"save_model needs a network with a config dict and a "
                        f"state_dict (a BaseNetwork), got {type(model).__name__}")
    try:
        config_bytes = json.dumps(config, allow_nan=False).encode()
    except (TypeError, ValueError) as err:
        raise TypeError(f"the network's config cannot be saved as JSON ({err})") \
            from None
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return {".config": config_bytes, ".tar": buffer.getvalue()}


def save_model(model, model_path, model_name):
    """Save ``model.config`` and ``model.state_dict()`` as checkpoint ``model_name``.

    Both files become visible together (see the module docstring). Returns the
    ``(config_file, model_file)`` paths (through the link ``model_name``).

    Args:
        model: a ``BaseNetwork`` (anything with ``config`` and ``state_dict``).
        model_path: folder (``None``: :func:`actfns.checkpoint_dir`).
        model_name: checkpoint name, e.g. ``"FashionMNIST_relu"``.
    Raises:
        CheckpointError: the name holds files actfns did not write (``"foreign"``),
            or the folder cannot be written (``"unwritable"``).
    """
    check_name(model_name)
    version = publish_files(model_path, model_name, checkpoint_bytes(model))
    folder = version.parent / model_name
    return folder / f"{model_name}.config", folder / f"{model_name}.tar"


# --------------------------------------------------------------------------------------
# Loading


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
            if not infos:
                raise zipfile.BadZipFile("the archive has no members")
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
            OverflowError, UnicodeDecodeError, zlib.error, MemoryError) as err:
        raise CheckpointError(
            f"{path} is corrupt ({type(err).__name__}: {str(err)[:200]}); delete it "
            "and retrain, or download it again") from None


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
    """A device for torch.load; a device this machine lacks is the caller's error
    (``ValueError`` naming it), raised before any file is read."""
    if map_location is None:
        return None
    if callable(map_location) or isinstance(map_location, dict):
        return map_location
    return get_device(map_location)


def _is_cpu(map_location):
    return map_location is None or (isinstance(map_location, torch.device)
                                    and map_location.type == "cpu")


def read_state(data, path, map_location="cpu"):
    """The state dict in a ``.tar``'s bytes: archive checked, tensors only.

    Raises:
        CheckpointError: damaged, or not a state dict of tensors. ValueError: the
            file is intact but its tensors cannot be put on ``map_location``.
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
        if not _is_cpu(map_location):
            try:  # the file may be fine and the device the problem
                torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
            except Exception:  # noqa: BLE001 (damaged after all: reported below)
                pass
            else:
                raise ValueError(
                    f"{path} is intact, but its tensors cannot be put on "
                    f"map_location={map_location!r} ({_load_error_cause(err)}); use a "
                    "device this machine has, e.g. map_location='cpu'") from None
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


def _config_act_name(config_bytes):
    """The activation name a config file holds (None if it holds none as a string)."""
    act = json.loads(config_bytes.decode()).get("act_fn")
    name = act.get("name") if isinstance(act, dict) else None
    return name if isinstance(name, str) else None


def network_from_bytes(config_bytes, tar_bytes, paths, net=None, map_location="cpu"):
    """Build (or fill ``net``) from a checkpoint's bytes; see :func:`load_model`."""
    config_file, model_file = paths[".config"], paths[".tar"]
    try:
        config = json.loads(config_bytes.decode())
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise CheckpointError(f"model config file {config_file} is not valid JSON "
                              f"({str(err)[:200]}); delete it and retrain, or download "
                              "it again") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_file} holds {json.dumps(config)[:60]}, not a "
                              "network config (a JSON object)")
    if net is None:
        try:
            net = BaseNetwork(act_fn=config.pop("act_fn"), **config)
        except (KeyError, TypeError, ValueError, OverflowError) as err:
            raise CheckpointError(
                f"{config_file} does not describe a BaseNetwork: {err}") from None
        except (RuntimeError, MemoryError) as err:  # an allocation too large
            raise CheckpointError(f"the network of {config_file} cannot be built on "
                                  f"this machine: {str(err)[:200]}") from None
        written = _config_act_name(config_bytes)
        exact = net.config["act_fn"]["name"]
        if written is not None and written != exact:
            # Names typed by hand may be spelt any way; a file's name is its class's
            # (so one damaged letter, ReLU -> SeLU, is not read as another activation)
            raise CheckpointError(
                f"{config_file} names the activation {written!r}; a config file names "
                f"it exactly as its class, {exact!r}. The file is damaged or was "
                "edited: download or train it again, or correct the name")
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

    Leftovers of a killed writer of the same name are removed first.

    Args:
        net: if given, the weights are loaded into it; else a new ``BaseNetwork`` is
            built from the config.
        map_location: device for the loaded tensors.
    Raises:
        CheckpointError: naming the file: missing, unreadable (e.g. no permission; not
            damaged), truncated or corrupt (every zip member is checked, and every
            file of an actfns run against its SHA-256), names an unknown activation,
            or its tensors do not fit the network. ``ValueError`` for a device this
            machine lacks, and for a name that cannot be a checkpoint's.
    """
    check_name(model_name)
    folder = _folder(model_path)
    _map_location(map_location)  # a bad device is the caller's error, not the file's
    clean_leftovers(folder, model_name)
    contents, paths = read_files(folder, model_name, (".config", ".tar"))
    return network_from_bytes(contents[".config"], contents[".tar"], paths, net,
                              map_location)


def read_config(path):
    """A checkpoint's config as a dict (CheckpointError if missing or malformed)."""
    return read_json(path, "model config", CheckpointError)
