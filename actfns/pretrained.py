"""Trained networks published with the site, and the course's own.

The site's build publishes the runs of its store as plain files beside a manifest::

    networks/manifest.json
    networks/NAME.config, NAME.tar, NAME.history.json

``manifest.json`` lists, for each run, its fingerprint and the SHA-256 and size of
each file. A reader's ``train_run`` fetches a run from ``$ACTFNS_PRETRAINED_URL`` only
when the published fingerprint equals the one asked for, checks every file's SHA-256
before anything is loaded (weights only), and otherwise trains, saying why in one
line. ``fetch_course_checkpoints`` downloads the course's six published networks,
pinned by SHA-256.
"""

import hashlib
import json
import urllib.error
import urllib.request
from pathlib import Path

import torch

from .checkpoints import CheckpointError, read_files
from .course import COURSE_CHECKPOINT_SHA256, COURSE_CHECKPOINT_URL
from .env import atomic_write, data_dir, pretrained_url
from .store import FILES, HISTORY
from .version import __version__

__all__ = ["MANIFEST", "publish_runs", "read_manifest", "fetch_run", "fetch_runs",
           "fetch_course_checkpoints", "course_checkpoint_dir"]

MANIFEST = "manifest.json"
TIMEOUT = 30  # seconds per request
_manifests = {}  # URL -> manifest, once per process


def _sha256(data):
    return hashlib.sha256(data).hexdigest()


def publish_runs(store, dest):
    """Copy every run of ``store`` into ``dest`` as plain files, with a manifest.

    Returns:
        the manifest (a dict), also written to ``dest/manifest.json``.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    runs = {}
    for run in store.list():
        files = {}
        try:  # all files of one version, checked (a run replaced meanwhile: the new)
            contents, _ = read_files(store.folder, run.name, FILES)
        except CheckpointError:
            continue  # removed or damaged since it was listed: not published
        for suffix in FILES:
            data = contents[suffix]
            target = dest / f"{run.name}{suffix}"
            atomic_write(target, lambda f, data=data: f.write(data), mode=0o644)
            files[suffix] = {"path": target.name, "sha256": _sha256(data),
                             "size": len(data)}
        history = json.loads(contents[HISTORY].decode())  # of the files published
        runs[run.name] = {"fingerprint": history["fingerprint"], "files": files,
                          "test_acc": history["test_acc"]}
    manifest = {"format": 1, "actfns": __version__, "torch": torch.__version__,
                "runs": runs}
    text = json.dumps(manifest, indent=1, sort_keys=True).encode()
    atomic_write(dest / MANIFEST, lambda f: f.write(text), mode=0o644)
    return manifest


def _get(url):
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:  # noqa: S310
        return response.read()


def read_manifest(url):
    """The manifest at ``url`` (a folder URL), fetched once per process.

    Raises:
        OSError: unreachable; ValueError: not a manifest.
    """
    if url not in _manifests:
        manifest = json.loads(_get(url + MANIFEST).decode())
        if not isinstance(manifest, dict) or not isinstance(manifest.get("runs"), dict):
            raise ValueError(f"{url}{MANIFEST} is not an actfns manifest")
        _manifests[url] = manifest
    return _manifests[url]


def _download(url, entry, name):
    """``{suffix: bytes}`` of a published run, every file checked against the
    manifest; raises ValueError naming the file on a mismatch."""
    files = {}
    for suffix in FILES:
        info = entry["files"][suffix]
        data = _get(url + info["path"])
        if len(data) != info["size"] or _sha256(data) != info["sha256"]:
            raise ValueError(f"checksum mismatch for {url}{info['path']}")
        files[suffix] = data
    return files


def fetch_run(store, name, fingerprint, url=None):
    """Put the published run NAME into ``store`` if its fingerprint matches.

    Returns:
        ``(True, "")`` when fetched, else ``(False, why)``: no source configured,
        offline, no match, or a checksum mismatch. Never raises for those.
    """
    url = url or pretrained_url()
    if url is None:
        return False, ""
    try:
        entry = read_manifest(url)["runs"].get(name)
        if entry is None or entry.get("fingerprint") != fingerprint:
            return False, (f"no published network matches it at {url} (other code, "
                           "data or torch version)")
        files = _download(url, entry, name)
        history = json.loads(files[HISTORY].decode())
        history["source"] = url
        files[HISTORY] = json.dumps(history, indent=1).encode()
        store.put_files(name, files)
        return True, ""
    except ValueError as err:
        return False, f"{err}; not used"
    except (OSError, urllib.error.URLError) as err:  # offline, 404, timeout
        reason = getattr(err, "reason", None) or err
        return False, f"cannot reach {url} ({reason}): offline?"
    except (KeyError, TypeError) as err:
        return False, f"the manifest at {url} is malformed ({err})"


def fetch_runs(store, url=None, names=None):
    """Fetch the published runs (``names``, default all) into ``store``.

    Returns:
        ``{name: "fetched" | "present" | why it was not}``. A run is skipped when the
        store already has one with the published fingerprint.
    """
    url = url or pretrained_url()
    if url is None:
        raise ValueError("no source: pass url= or set ACTFNS_PRETRAINED_URL")
    runs = read_manifest(url)["runs"]
    result = {}
    for name in names or sorted(runs):
        fingerprint = runs.get(name, {}).get("fingerprint")
        try:
            store.get(name, fingerprint)
            result[name] = "present"
            continue
        except CheckpointError as err:
            if err.kind not in ("missing", "stale", "damaged"):
                result[name] = str(err)
                continue
        ok, why = fetch_run(store, name, fingerprint, url)
        result[name] = "fetched" if ok else why
    return result


def course_checkpoint_dir(path=None):
    """Where the course's files go: ``path``, else ``<data dir>/../course``."""
    return Path(path).expanduser().resolve() if path else data_dir().parent / "course"


def fetch_course_checkpoints(dest=None, url=COURSE_CHECKPOINT_URL):
    """Download the course's six trained networks (``.config`` and ``.tar`` each),
    as its notebook does, each checked against its pinned SHA-256.

    Files already present with the right SHA-256 are not downloaded again. Load one
    with ``af.load_model(folder, "FashionMNIST_relu")``.

    Returns:
        the folder (default ``~/.cache/actfns/course``).
    Raises:
        OSError: a file cannot be downloaded; ValueError: a file's SHA-256 differs
            (nothing is written for it).
    """
    dest = course_checkpoint_dir(dest)
    dest.mkdir(parents=True, exist_ok=True)
    url = url if url.endswith("/") else url + "/"
    for name, digest in COURSE_CHECKPOINT_SHA256.items():
        target = dest / name
        if target.is_file() and _sha256(target.read_bytes()) == digest:
            continue
        try:
            data = _get(url + name)
        except (OSError, urllib.error.URLError) as err:
            raise OSError(f"cannot download {url}{name} "
                          f"({getattr(err, 'reason', None) or err})") from None
        if _sha256(data) != digest:
            raise ValueError(f"{url}{name} is not the course's published file "
                             f"(SHA-256 {_sha256(data)[:12]}..., expected "
                             f"{digest[:12]}...); nothing was written")
        atomic_write(target, lambda f, data=data: f.write(data))
    return dest

