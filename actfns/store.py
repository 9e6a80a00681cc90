"""The run store: one folder that owns every file of every trained run.

A run ``NAME`` is a checkpoint in the course's format (``NAME.config`` and
``NAME.tar``) plus ``NAME.history.json``, published together as one version of
``NAME`` (see ``checkpoints``): readers see a whole run or none, and every file of it
is checked against the SHA-256 in its version's name. The history records the run's
fingerprint and the SHA-256 of the weights and config it describes; a run is reused
only when both match, so a damaged file or a run of other code or data is trained
again, never reused. Checkpoints actfns did not write (no history: the course's
published networks, or networks saved with ``save_model``) are never replaced, and a
file that cannot be read (e.g. no permission) is an error, never a reason to retrain.

``.NAME.lock`` is held while NAME is trained or written, so two processes (two
chapters built side by side, workers of a sweep) train a run once: the second waits,
then loads it. Each read or write of a run marks it used (the modification time of
its link), which is how :meth:`RunStore.prune` finds runs nobody asks for any more.
"""

import contextlib
import hashlib
import json
import os
import shutil
from dataclasses import dataclass

from filelock import Timeout

from .checkpoints import (
    CheckpointError,
    check_name,
    checkpoint_bytes,
    checkpoint_entry,
    clean_leftovers,
    clean_versions,
    network_from_bytes,
    publish_files,
    read_files,
    run_lock,
)
from .env import checkpoint_dir, progress_enabled
from .train import History

__all__ = ["RunStore", "StoredRun", "HISTORY"]

HISTORY = ".history.json"
FILES = (".config", ".tar", HISTORY)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


@dataclass
class StoredRun:
    """A run in the store: its name, History and files (``{suffix: path}``)."""

    name: str
    history: History
    files: dict

    @property
    def fingerprint(self):
        return self.history.fingerprint


def _parse_history(data, path):
    """The History in a history file's bytes; CheckpointError (``"damaged"``) naming
    the file if it is not one."""
    try:
        history = History.from_dict(json.loads(data.decode()))
    except (UnicodeDecodeError, ValueError, TypeError, RecursionError) as err:
        raise CheckpointError(f"{path} is not a readable training history "
                              f"({str(err)[:200]})") from None
    if not (isinstance(history.sha256, dict) and isinstance(history.fingerprint, str)
            and all(isinstance(v, str) for v in history.sha256.values())):
        raise CheckpointError(f"{path} is not a readable training history (its "
                              "fingerprint or sha256 entries are malformed)")
    return history


class RunStore:
    """The runs in one checkpoint folder (default: :func:`actfns.checkpoint_dir`)."""

    def __init__(self, folder=None):
        try:
            self.folder = checkpoint_dir(folder)
        except PermissionError as err:
            raise CheckpointError(f"cannot look into {err.filename or folder}: "
                                  "permission denied", kind="unreadable") from None

    def __repr__(self):
        return f"RunStore({str(self.folder)!r})"

    def path(self, name):
        """Where run NAME's files are (a link to its current version)."""
        return self.folder / check_name(name)

    @contextlib.contextmanager
    def lock(self, name, progress=None):
        """Hold NAME's lock; say so (if ``progress``) when another process holds it.

        Raises:
            CheckpointError: the lock cannot be made (``"unwritable"`` folder).
        """
        check_name(name)
        try:
            lock = run_lock(self.folder, name)
            try:
                lock.acquire(timeout=0)
            except Timeout:
                if progress_enabled(progress):
                    print(f"{name}: another process is training it; waiting for it",
                          flush=True)
                lock.acquire()
        except OSError as err:
            raise CheckpointError(
                f"cannot write in {self.folder}: {err.strerror or err}. Give yourself "
                "write permission or point ACTFNS_CHECKPOINTS at a folder you can "
                "write", kind="unwritable") from None
        try:
            yield
        finally:
            lock.release()

    def _read(self, name, verify=True):
        """``(contents, paths, layout)`` of NAME with its history (None if absent);
        layout as :func:`checkpoints.checkpoint_entry` gives it."""
        layout, _ = checkpoint_entry(self.folder, name)
        if layout == "flat":  # the course's pair, or an older actfns's run
            contents, paths = read_files(self.folder, name, (".config", ".tar"),
                                         verify=verify)
            paths[HISTORY] = self.folder / f"{name}{HISTORY}"
            try:
                contents[HISTORY] = paths[HISTORY].read_bytes()
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                contents[HISTORY] = None
            except OSError as err:
                raise CheckpointError(
                    f"cannot read {paths[HISTORY]}: {err.strerror} (the file is not "
                    "damaged; check its permissions)", kind="unreadable") from None
            return contents, paths, layout
        contents, paths = read_files(self.folder, name, FILES, optional=(HISTORY,),
                                     verify=verify)
        return contents, paths, layout

    def _owner(self, name):
        """Whose NAME is: ``None`` (nothing there), ``"ours"`` (a run of this store),
        ``"legacy"`` (an older actfns's run, ``NAME.config`` beside
        ``NAME.history.json``) or ``"foreign"`` (anything else: never replaced).

        Raises:
            CheckpointError: a file of it cannot be read (``"unreadable"``): whose it is
                cannot be told, so it is not replaced either.
        """
        layout, _ = checkpoint_entry(self.folder, name)
        if layout in (None, "dangling"):
            return None
        if layout in ("folder", "file"):
            return "foreign"
        if layout == "flat":
            contents, _, _ = self._read(name, verify=False)
        else:
            contents, _ = read_files(self.folder, name, FILES, optional=FILES,
                                     verify=False)
        if contents[HISTORY] is not None:
            return "legacy" if layout == "flat" else "ours"
        if layout == "version" and contents[".config"] is None and (
                contents[".tar"] is None):
            return None  # an empty version: nothing of anyone's is left in it
        return "foreign"

    def _foreign(self, name):
        return CheckpointError(
            f"{self.folder} holds a checkpoint {name} without an actfns training "
            "history (the course's published network, or one saved with save_model, "
            "or a folder actfns did not make); actfns does not reuse or replace it. "
            f"Load it with af.load_model({str(self.folder)!r}, {name!r}), or move it "
            f"to another folder to store the run {name} here", kind="foreign")

    def get(self, name, fingerprint=None, net=None, map_location="cpu"):
        """Run NAME's network and History, if it may be reused.

        Args:
            fingerprint: the fingerprint the run must have (None: any).
            net: load the weights into this network (else build one from the config).
        Returns:
            ``(net, history)`` with ``history.trained`` False.
        Raises:
            CheckpointError: why the run cannot be reused: ``kind`` is ``"missing"``,
                ``"stale"`` (another fingerprint: other code, data or recipe),
                ``"damaged"``, ``"mismatch"``, ``"foreign"`` (not written by actfns)
                or ``"unreadable"`` (e.g. no permission; not damaged).
            ValueError: ``map_location`` is a device this machine lacks.
        """
        self.tidy(name)
        contents, paths, layout = self._read(name)
        if layout in ("folder", "file") or contents[HISTORY] is None:
            raise self._foreign(name)
        history = _parse_history(contents[HISTORY], paths[HISTORY])
        if layout == "flat" or not history.sha256:
            raise CheckpointError(f"{name} was stored by an older actfns",
                                  kind="stale")
        if fingerprint is not None and history.fingerprint != fingerprint:
            raise CheckpointError(f"{name} in {self.folder} is another run (other "
                                  "code, data, recipe or initial weights)",
                                  kind="stale")
        for suffix in (".config", ".tar"):
            if sha256(contents[suffix]) != history.sha256.get(suffix):
                raise CheckpointError(
                    f"{paths[suffix]} does not match the SHA-256 its history records: "
                    "the file is damaged")
        initial = None if net is None else {k: v.detach().clone()
                                            for k, v in net.state_dict().items()}
        try:
            net = network_from_bytes(contents[".config"], contents[".tar"], paths, net,
                                     map_location)
        except (CheckpointError, ValueError):
            if initial is not None:
                net.load_state_dict(initial)  # as it was: the caller may train it
            raise
        self.touch(name)
        history.trained, history.source = False, history.source or "store"
        return net, history

    def put(self, name, net, history):
        """Store ``net`` and ``history`` as run NAME (replacing an older run of ours).

        The history gets the SHA-256 of the files it describes. Returns the History.

        Raises:
            CheckpointError: NAME is a checkpoint actfns did not write (``"foreign"``)
                or one that cannot be read (``"unreadable"``); nothing is replaced.
        """
        check_name(name)
        files = checkpoint_bytes(net)
        history.sha256 = {suffix: sha256(data) for suffix, data in files.items()}
        return self.put_files(name, {**files, HISTORY: self._history_bytes(history)})

    @staticmethod
    def _history_bytes(history):
        return json.dumps(history.to_dict(), indent=1).encode()

    def put_files(self, name, files):
        """Publish a run's files (``{suffix: bytes}``, the history's SHA-256s already
        filled in), e.g. downloaded ones, after the same checks as :meth:`put`.

        Raises:
            ValueError: the files are not a run (another set of files, a history that
                is not one, or SHA-256s that do not match the files).
            CheckpointError: as :meth:`put`.
        """
        check_name(name)
        self._drop_legacy(name)
        if set(files) != set(FILES):
            raise ValueError(f"a run is the files {', '.join(FILES)}; got "
                             f"{', '.join(sorted(files))}")
        try:
            history = _parse_history(files[HISTORY], f"the history of {name}")
        except CheckpointError as err:
            raise ValueError(str(err)) from None
        for suffix in (".config", ".tar"):
            if history.sha256.get(suffix) != sha256(files[suffix]):
                raise ValueError(f"the history of {name} does not record the SHA-256 "
                                 f"of its {suffix} file; not stored")
        with self.lock(name, progress=False):
            owner = self._owner(name)
            if owner == "foreign":
                raise self._foreign(name)
            if owner == "legacy":  # an older actfns's run: ours to replace
                for suffix in FILES:
                    try:
                        (self.folder / f"{name}{suffix}").unlink(missing_ok=True)
                    except OSError as err:
                        raise CheckpointError(
                            f"cannot remove the older run {name} from {self.folder}: "
                            f"{err.strerror}", kind="unwritable") from None
            publish_files(self.folder, name, files)
            self.touch(name)
        return history

    def check_put(self, name):
        """Raise what :meth:`put` would raise because of what NAME is now (a checkpoint
        actfns did not write, or one that cannot be read), writing nothing: call it
        before training a run that is to be stored as NAME.

        Raises:
            CheckpointError: ``"foreign"`` or ``"unreadable"``.
        """
        self._drop_legacy(check_name(name))
        if self._owner(name) == "foreign":
            raise self._foreign(name)

    def touch(self, name):
        """Mark run NAME as used now (the link's own modification time)."""
        with contextlib.suppress(OSError, NotImplementedError):
            os.utime(self.path(name), follow_symlinks=False)

    def tidy(self, name):
        """Remove what killed writers left of NAME, and an older actfns's flat files
        of NAME beside its run (which would make NAME ambiguous), if nobody is
        writing it now."""
        self._drop_legacy(name)
        return clean_leftovers(self.folder, name)

    def _drop_legacy(self, name):
        history = self.folder / f"{name}{HISTORY}"
        try:
            if not (history.is_file() and self.path(name).is_symlink()):
                return
            with run_lock(self.folder, name).acquire(timeout=0):
                _parse_history(history.read_bytes(), history)  # an actfns history
                for suffix in FILES:
                    (self.folder / f"{name}{suffix}").unlink(missing_ok=True)
        except (Timeout, OSError, CheckpointError, ValueError):
            return  # busy, unreadable or not ours: left as it is

    def names(self):
        """Names of the runs in the store (links to folders), sorted."""
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir()
                      if p.is_symlink() and p.is_dir() and not p.name.startswith("."))

    def list(self):
        """Every run of the store that has an actfns history and reads back intact, as
        ``StoredRun``s (others are left out)."""
        runs = []
        for name in self.names():
            try:
                contents, paths, layout = self._read(name)
                if layout != "version" or contents[HISTORY] is None:
                    continue  # not ours
                history = _parse_history(contents[HISTORY], paths[HISTORY])
            except (CheckpointError, ValueError):
                continue  # damaged or unreadable: not a run to list
            runs.append(StoredRun(name, history, paths))
        return runs

    def last_used(self, name):
        """When run NAME was last read or written (seconds since the epoch)."""
        return self.path(name).lstat().st_mtime

    def prune(self, unused_since):
        """Remove the runs not read or written since ``unused_since`` (a time in
        seconds since the epoch); returns their names. Checkpoints that actfns did
        not write, and runs that cannot be read, are kept."""
        removed = []
        for name in self.names():
            try:
                with run_lock(self.folder, name).acquire(timeout=0):
                    if self.last_used(name) >= unused_since:
                        continue
                    try:
                        if self._owner(name) != "ours":
                            continue  # not ours, or nothing left
                    except CheckpointError:
                        continue  # cannot be read: not ours to judge
                    target = self.folder / os.readlink(self.path(name))
                    self.path(name).unlink()
                    shutil.rmtree(target, ignore_errors=True)
                    clean_versions(self.folder, name, keep="")
                    removed.append(name)
            except (Timeout, OSError):
                continue  # being trained right now (in use), or cannot be changed
        return removed + self._prune_legacy(unused_since)

    def _prune_legacy(self, unused_since):
        """Older actfns's runs (``NAME.config``, ``NAME.tar`` and an actfns history
        side by side: never reused by this version) last written before
        ``unused_since``, and lock files of names that hold nothing any more."""
        removed = []
        if not self.folder.is_dir():
            return removed
        for history in sorted(self.folder.glob(f"*{HISTORY}")):
            name = history.name[:-len(HISTORY)]
            try:
                with run_lock(self.folder, name).acquire(timeout=0):
                    if (self._owner(name) != "legacy"
                            or history.stat().st_mtime >= unused_since):
                        continue
                    for suffix in FILES:
                        (self.folder / f"{name}{suffix}").unlink(missing_ok=True)
                    removed.append(name)
            except (Timeout, OSError, CheckpointError):
                continue
        for lock_file in sorted(self.folder.glob(".*.lock")):
            name = lock_file.name[1:-len(".lock")]
            try:
                lock = run_lock(self.folder, name)
                with lock.acquire(timeout=0):  # nobody waits on it: safe to remove
                    if checkpoint_entry(self.folder, name)[0] is None:
                        lock_file.unlink()
            except (Timeout, OSError, CheckpointError, ValueError):
                continue
        return removed
