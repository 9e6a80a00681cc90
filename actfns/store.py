"""The run store: one folder that owns every file of every trained run.

A run ``NAME`` is a checkpoint in the course's format (``NAME.config`` and
``NAME.tar``) plus ``NAME.history.json``, published together as one version of
``NAME`` (see ``checkpoints``): readers see a whole run or none. The history records
the run's fingerprint and the SHA-256 of the files it describes; a run is reused only
when both match, so a damaged file or a run of other code or data is trained again,
never reused. Checkpoints actfns did not write (no history: the course's published
networks, or networks saved with ``save_model``) are never replaced.

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
    checkpoint_bytes,
    checkpoint_layout,
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


class RunStore:
    """The runs in one checkpoint folder (default: :func:`actfns.checkpoint_dir`)."""

    def __init__(self, folder=None):
        self.folder = checkpoint_dir(folder)

    def __repr__(self):
        return f"RunStore({str(self.folder)!r})"

    def path(self, name):
        """Where run NAME's files are (a link to its current version)."""
        return self.folder / name

    @contextlib.contextmanager
    def lock(self, name, progress=None):
        """Hold NAME's lock; say so (if ``progress``) when another process holds it."""
        lock = run_lock(self.folder, name)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            if progress_enabled(progress):
                print(f"{name}: another process is training it; waiting for it",
                      flush=True)
            lock.acquire()
        try:
            yield
        finally:
            lock.release()

    def _read(self, name):
        """``(contents, paths, layout)`` of NAME with its history (None if absent)."""
        layout = checkpoint_layout(self.folder, name)
        if layout == "flat":  # the course's pair, or an older actfns's run
            contents, paths = read_files(self.folder, name, (".config", ".tar"))
            legacy = self.folder / f"{name}{HISTORY}"
            contents[HISTORY] = legacy.read_bytes() if legacy.is_file() else None
            paths[HISTORY] = legacy
            return contents, paths, layout
        contents, paths = read_files(self.folder, name, FILES, optional=(HISTORY,))
        return contents, paths, layout

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
        """
        self.tidy(name)
        contents, paths, layout = self._read(name)
        if contents[HISTORY] is None:
            raise CheckpointError(
                f"{self.folder} holds a checkpoint {name} without an actfns training "
                "history (the course's published network, or one saved with "
                "save_model); actfns does not reuse or replace it. Load it with "
                f"af.load_model({str(self.folder)!r}, {name!r})", kind="foreign")
        try:
            history = History.from_dict(json.loads(contents[HISTORY].decode()))
        except (UnicodeDecodeError, json.JSONDecodeError, TypeError) as err:
            raise CheckpointError(f"{paths[HISTORY]} is not a readable training "
                                  f"history ({err})") from None
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
        except CheckpointError:
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
            CheckpointError: NAME is a checkpoint actfns did not write (``"foreign"``).
        """
        files = checkpoint_bytes(net)
        history.sha256 = {suffix: sha256(data) for suffix, data in files.items()}
        return self.put_files(name, {**files, HISTORY: self._history_bytes(history)})

    @staticmethod
    def _history_bytes(history):
        return json.dumps(history.to_dict(), indent=1).encode()

    def put_files(self, name, files):
        """Publish a run's files (``{suffix: bytes}``, the history's SHA-256s already
        filled in), e.g. downloaded ones, after the same checks as :meth:`put`."""
        with self.lock(name, progress=False):
            try:
                contents, _, layout = self._read(name)
            except CheckpointError as err:
                if err.kind != "missing":
                    raise
                contents, layout = None, None
            if contents is not None and contents[HISTORY] is None:
                raise CheckpointError(
                    f"{self.folder} holds a checkpoint {name} that actfns did not "
                    "write (no training history: the course's published network, or "
                    "one saved with save_model); actfns will not replace it. Move it "
                    f"to another folder to store the run {name} here", kind="foreign")
            if layout == "flat":  # an older actfns's run: ours to replace
                for suffix in FILES:
                    (self.folder / f"{name}{suffix}").unlink(missing_ok=True)
            publish_files(self.folder, name, files)
            self.touch(name)
        return History.from_dict(json.loads(files[HISTORY].decode()))

    def touch(self, name):
        """Mark run NAME as used now (the link's own modification time)."""
        with contextlib.suppress(OSError, NotImplementedError):
            os.utime(self.path(name), follow_symlinks=False)

    def tidy(self, name):
        """Remove what killed writers left of NAME, if nobody is writing it now."""
        try:
            lock = run_lock(self.folder, name)
            lock.acquire(timeout=0)
        except (Timeout, OSError):
            return []
        try:
            return clean_versions(self.folder, name)
        finally:
            lock.release()

    def names(self):
        """Names of the runs in the store (actfns's links), sorted."""
        if not self.folder.is_dir():
            return []
        return sorted(p.name for p in self.folder.iterdir()
                      if p.is_symlink() and p.is_dir() and not p.name.startswith("."))

    def list(self):
        """Every run of the store that has an actfns history, as ``StoredRun``s."""
        runs = []
        for name in self.names():
            try:
                contents, paths, _ = self._read(name)
                history = History.from_dict(json.loads(contents[HISTORY].decode()))
            except (CheckpointError, TypeError, ValueError, AttributeError):
                continue  # foreign or damaged: not a run to list
            runs.append(StoredRun(name, history, paths))
        return runs

    def last_used(self, name):
        """When run NAME was last read or written (seconds since the epoch)."""
        return self.path(name).lstat().st_mtime

    def prune(self, unused_since):
        """Remove the runs not read or written since ``unused_since`` (a time in
        seconds since the epoch); returns their names. Checkpoints that actfns did
        not write are kept."""
        removed = []
        for name in self.names():
            try:
                with run_lock(self.folder, name).acquire(timeout=0):
                    if self.last_used(name) >= unused_since:
                        continue
                    try:
                        contents, _, _ = self._read(name)
                    except CheckpointError:
                        contents = None
                    if contents is not None and contents[HISTORY] is None:
                        continue  # not ours
                    target = self.folder / os.readlink(self.path(name))
                    self.path(name).unlink()
                    shutil.rmtree(target, ignore_errors=True)
                    clean_versions(self.folder, name, keep="")
                    removed.append(name)
            except Timeout:
                continue  # being trained right now: in use
        return removed

