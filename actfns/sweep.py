"""Sweeps: many training runs on any ``concurrent.futures`` executor, and their summary.

A sweep is a list of ``RunSpec``s. :func:`train_runs` (``af.train_runs`` with an
``executor``) sends each as one small task: the spec, a :class:`DataSource` (how to
load the data, not the data) and the store's folder. The worker loads the data itself,
once per process, trains or reuses the run through the run store (``train_run``) and
returns its History, or a :class:`RunFailure` with the run's name and traceback. The
run store's per-run lock keeps two workers from training one run, and its atomic
publish means a worker killed mid-run leaves no half-written run: calling the same
sweep again trains only what is missing.

The executor may be ``None`` (serial, in this process), a ``ProcessPoolExecutor``
(use the ``forkserver`` or ``spawn`` start method: torch's threads do not survive a
fork; ``set_forkserver_preload(["actfns.sweep"])`` saves each worker the imports), or
a Dask cluster's (``Client.get_executor()``, or the ``Client`` itself). A thread pool
works too, one run at a time (see ``_ONE_RUN``).
Results come back in the order of the specs and equal a serial run's: the same seed
and the same number of torch threads give the same weights.

``python -m actfns sweep`` is the command line for it (see ``__main__``).
"""

import contextlib
import hashlib
import os
import socket
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, wait
from dataclasses import dataclass

import torch
from filelock import Timeout
from torch.utils.data import TensorDataset
from tqdm.auto import tqdm

from .checkpoints import run_lock
from .course import COURSE_NUM_VAL, COURSE_SEED
from .data import DatasetError, FashionMNISTData, load_fashion_mnist
from .env import as_executor, progress_enabled
from .runs import RunSpec, code_hash, torch_release, train_run
from .store import RunStore

__all__ = ["DataSource", "RunFailure", "SweepError", "train_runs", "cluster_executor"]


SPLITS = ("train", "val", "test")
_LOADED = {}  # DataSource -> FashionMNISTData, per process (a worker loads it once)
_FINGERPRINTS = {}  # DataSource -> its data's fingerprint
# One run at a time per process: torch's global generator draws the initial weights,
# and two tasks in threads of one process (a thread pool, a Dask worker with several
# threads) would interleave their draws and train other networks than asked for.
_ONE_RUN = threading.Lock()


# --------------------------------------------------------------------------------------
# The data, described


@dataclass(frozen=True)
class DataSource:
    """How a process loads FashionMNIST: a small picklable description that a worker
    loads itself (once per process) instead of receiving 200 MB of tensors.

    Args:
        root: dataset root as the worker sees it (None: the worker's own
            ``$ACTFNS_DATA``, else ``~/.cache/actfns/data``).
        seed, num_val: the train/validation split (``load_fashion_mnist``'s).
        sizes: ``(train, val, test)``: keep only the first images of each split
            (None: all), for quick trials and tests.
        download: let torchvision download missing files (off by default: many
            workers downloading into one folder at once would race).
    """

    root: str | None = None
    seed: int = COURSE_SEED
    num_val: int = COURSE_NUM_VAL
    sizes: tuple | None = None
    download: bool = False

    def __post_init__(self):
        if self.root is not None:
            object.__setattr__(self, "root", os.fspath(self.root))
        if self.sizes is not None:
            sizes = tuple(self.sizes)
            if len(sizes) != 3 or any(isinstance(n, bool) or not isinstance(n, int)
                                      or n < 1 for n in sizes):
                raise ValueError("sizes must be three whole numbers >= 1 (images kept "
                                 f"of train, val and test), got {self.sizes!r}")
            object.__setattr__(self, "sizes", sizes)

    def load(self):
        """The data (``FashionMNISTData``), loaded once per process and kept.

        Its splits pickle as this description, so a task that carries them carries
        a few hundred bytes, and the process that unpickles it loads the data itself.

        Raises:
            DatasetError: the files are missing here (the message names this host).
        """
        data = _LOADED.get(self)
        if data is None:
            data = _LOADED[self] = self._load()
            _FINGERPRINTS[self] = data.fingerprint
        return data

    def _load(self):
        try:
            full = load_fashion_mnist(self.root, seed=self.seed, num_val=self.num_val,
                                      download=self.download)
        except DatasetError as err:
            raise DatasetError(f"on {socket.gethostname()} (pid {os.getpid()}): {err}"
                               ) from None
        splits = {}
        for split, n in zip(SPLITS, self.sizes or (None,) * 3):
            tensors = getattr(full, split).tensors
            if n is not None:
                if n > len(tensors[0]):
                    raise ValueError(f"sizes asks for {n} {split} images; the split "
                                     f"has {len(tensors[0])}")
                tensors = tuple(t[:n].clone() for t in tensors)
            splits[split] = _Split(self, split, tensors)
        fingerprint = full.fingerprint
        if self.sizes is not None:
            fingerprint = hashlib.sha256(f"{fingerprint};sizes={self.sizes}".encode()
                                         ).hexdigest()[:16]
        return FashionMNISTData(**splits, fingerprint=fingerprint,
                                class_names=full.class_names)

    @property
    def fingerprint(self):
        """The fingerprint of the data this source gives here (loads it once, without
        keeping it if it was not loaded yet)."""
        if self not in _FINGERPRINTS:
            _FINGERPRINTS[self] = self._load().fingerprint
        return _FINGERPRINTS[self]


class _Split(TensorDataset):
    """One split of a :class:`DataSource`'s data; pickles as (source, split)."""

    def __init__(self, source, split, tensors):
        super().__init__(*tensors)
        self.source, self.split = source, split

    def __reduce__(self):
        return _source_split, (self.source, self.split)


def _source_split(source, split):
    return getattr(source.load(), split)


def describe(data):
    """The :class:`DataSource` of ``data`` (a ``DataSource`` or ``FashionMNISTData``).

    Data loaded by ``DataSource.load()`` knows its source; other data is accepted if it
    is FashionMNIST as ``load_fashion_mnist()`` gives it (same fingerprint).

    Raises:
        TypeError: the data cannot be described to a worker.
    """
    if isinstance(data, DataSource):
        return data
    if not isinstance(data, FashionMNISTData):
        raise TypeError("data must be FashionMNISTData (af.load_fashion_mnist()) or an "
                        f"af.DataSource, got {type(data).__name__}")
    if isinstance(data.train, _Split):
        return data.train.source
    default = DataSource()
    if data.fingerprint == default.fingerprint:
        return default
    raise TypeError(
        "workers load the data themselves, and this data (fingerprint "
        f"{data.fingerprint}) is not FashionMNIST as af.load_fashion_mnist() loads "
        "it; describe it with af.DataSource(root=..., seed=..., num_val=..., "
        "sizes=...) and pass that (or its .load()) as data")


# --------------------------------------------------------------------------------------
# Failures


@dataclass
class RunFailure:
    """A run that failed: its spec and name, the error and where it happened."""

    spec: RunSpec
    name: str
    error: str
    traceback: str
    where: str

    @classmethod
    def of(cls, spec, err, where):
        text = "".join(traceback.format_exception(err))
        return cls(spec, spec.name, f"{type(err).__name__}: {err}".strip(), text, where)

    def __str__(self):
        return f"{self.name}: {self.error} ({self.where})"


class SweepError(RuntimeError):
    """Some runs of a sweep failed. ``results`` holds, in the order of the specs, a
    History for every run that finished and a :class:`RunFailure` for every run that
    did not; ``failures`` the failures alone."""

    def __init__(self, results):
        self.results = results
        self.failures = [r for r in results if isinstance(r, RunFailure)]
        n, k = len(results), len(self.failures)
        lines = [f"{k} of {n} runs failed; the other {n - k} are in the store, and "
                 ".results holds every run (a RunFailure for each failed one). Call "
                 "the same sweep again to train only what is missing."]
        lines += [f"  {f}" for f in self.failures]
        first = self.failures[0]
        lines += ["", f"Traceback of {first.name} ({first.where}):",
                  first.traceback.rstrip()]
        super().__init__("\n".join(lines))


# --------------------------------------------------------------------------------------
# Running the specs


def _code():
    return code_hash(), torch_release()


def _train_task(index, spec, source, expected, store, device, threads, code):
    """One run on a worker: load the data (once per process), train or reuse the run,
    return its History, or a RunFailure with the worker's traceback. ``index`` keeps
    equal specs apart (Dask gives equal tasks one key, and so one execution)."""
    del index
    where = f"{socket.gethostname()} pid {os.getpid()}"
    with _ONE_RUN:
        return _train_here(spec, source, expected, store, device, threads, code, where)


def _train_here(spec, source, expected, store, device, threads, code, where):
    try:
        if _code() != tuple(code):
            raise RuntimeError(
                "this worker runs other actfns code or another torch release than the "
                f"process that sent the run (code {_code()[0][:12]}, torch "
                f"{_code()[1]}; sender: {code[0][:12]}, torch {code[1]}): its runs "
                "would not match; install the same actfns and torch on the workers")
        data = source.load()
        if expected is not None and data.fingerprint != expected:
            raise DatasetError(
                f"the data here (fingerprint {data.fingerprint}) is not the sender's "
                f"({expected}): check the FashionMNIST files under this worker's "
                "$ACTFNS_DATA")
        with _threads(threads):  # restored after: a thread pool's worker is the caller
            return train_run(spec, data, store=store, device=device,
                             progress=False)[1]
    except Exception as err:
        return RunFailure.of(spec, err, where)


def _held(folder, names):
    """How many of the runs ``names`` someone is training now (their lock is held)."""
    count = 0
    for name in names:
        lock = run_lock(folder, name)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            count += 1
        except OSError:
            continue
        else:
            lock.release()
    return count


@contextlib.contextmanager
def _threads(threads):
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def train_runs(specs, data, *, executor=None, store=None, device=None, progress=None,
              threads=None):
    """Train (or reuse) every run of ``specs``: serially, or as tasks on ``executor``.

    Each task is one spec and a description of the data (``af.DataSource``); the
    worker loads the data itself (once per process), trains or reuses the run through
    the store, and sends back its History. The store's per-run lock keeps two workers
    from training one run; a run whose worker died is not stored, so calling the same
    sweep again trains only what is missing. One progress bar counts the runs done,
    running and failed.

    Args:
        specs: ``RunSpec``s.
        data: ``FashionMNISTData`` or an ``af.DataSource``. With an executor, data
            from ``af.load_fashion_mnist()`` or ``DataSource.load()``: the workers
            load it again from their own ``$ACTFNS_DATA`` (or the source's root).
        executor: None (serial, in this process), a
            ``concurrent.futures.Executor`` such as a ``ProcessPoolExecutor``, or a
            Dask ``Client`` (or its ``get_executor()``). Give a process pool the
            ``forkserver`` (or ``spawn``) start method, as torch's threads do not
            survive a plain fork; ``ctx.set_forkserver_preload(["actfns.sweep"])``
            makes its workers start from a process that has imported actfns.
        store: a ``RunStore`` or folder (None: ``$ACTFNS_CHECKPOINTS``); on a
            cluster, a folder every worker sees under this path.
        threads: torch threads per run (default: this process's when serial, 1 on an
            executor). The same seed and thread count give the same weights.
    Returns:
        the runs' Histories, in the order of ``specs``.
    Raises:
        SweepError: some runs failed; raised once every other run has finished. Its
            message names each failed run with its error, and ``results`` holds every
            run (History or ``RunFailure``, with the worker's traceback).
    """
    specs = list(specs)
    for spec in specs:
        if not isinstance(spec, RunSpec):
            raise TypeError(f"specs must be RunSpecs, got {type(spec).__name__}")
    if threads is not None and (isinstance(threads, bool) or not isinstance(
            threads, int) or threads < 1):
        raise ValueError(f"threads must be a whole number >= 1, got {threads!r}")
    store = store if isinstance(store, RunStore) else RunStore(store)
    results = [None] * len(specs)
    bar = tqdm(total=len(specs), desc="runs", unit="run",
               disable=not progress_enabled(progress))

    def show(running):
        failed = sum(isinstance(r, RunFailure) for r in results)
        bar.set_postfix(done=bar.n - failed, running=running, failed=failed,
                        refresh=False)
        bar.refresh()

    try:
        if executor is None:
            data = data.load() if isinstance(data, DataSource) else data
            with _threads(threads):
                for i, spec in enumerate(specs):
                    show(1)
                    try:
                        results[i] = train_run(spec, data, store=store, device=device,
                                               progress=progress)[1]
                    except Exception as err:
                        results[i] = RunFailure.of(spec, err, "this process")
                    bar.update()
        else:
            _run_on(as_executor(executor), specs, data, store, device, threads, results,
                    bar, show)
        show(0)
    finally:
        bar.close()
    if any(isinstance(r, RunFailure) for r in results):
        raise SweepError(results)
    return results


def _run_on(executor, specs, data, store, device, threads, results, bar, show):
    source = describe(data)
    expected = None if isinstance(data, DataSource) else data.fingerprint
    threads = 1 if threads is None else threads
    folder, code = str(store.folder), _code()
    futures = {executor.submit(_train_task, i, spec, source, expected, folder, device,
                               threads, code): i for i, spec in enumerate(specs)}
    pending, probed, running = set(futures), 0.0, 0
    try:
        while pending:
            done, pending = wait(pending, timeout=1.0, return_when=FIRST_COMPLETED)
            for future in done:
                i = futures[future]
                try:
                    results[i] = future.result()
                except Exception as err:  # the worker died, or the task never ran
                    results[i] = RunFailure.of(specs[i], err, "the executor")
            bar.update(len(done))
            if not bar.disable and time.monotonic() - probed > 1.0:
                # at most once a second: one lock file per pending run
                running = _held(store.folder, {specs[futures[f]].name for f in pending})
                probed = time.monotonic()
            show(running)
    except BaseException:
        for future in pending:
            future.cancel()
        raise


# --------------------------------------------------------------------------------------
# A Dask cluster


@contextlib.contextmanager
def cluster_executor(scheduler=None, workers=None):
    """An executor on a Dask cluster, closed on exit.

    Args:
        scheduler: address of a running scheduler (``tcp://host:8786``).
        workers: else, start a local cluster of this many worker processes, one
            thread each, on 127.0.0.1 (``OMP_WAIT_POLICY=PASSIVE`` in the workers).
    Yields:
        ``Client.get_executor()``.
    """
    if (scheduler is None) == (workers is None):
        raise ValueError("give either a scheduler address or a number of workers")
    try:
        import dask
        from distributed import Client, LocalCluster
    except ImportError:
        raise ImportError("a Dask cluster needs dask and distributed: pip install "
                          "'actfns[cluster]'") from None
    environ = dict(os.environ)
    with contextlib.ExitStack() as stack:
        if scheduler is None:
            if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
                raise ValueError("workers must be a whole number >= 1, got "
                                 f"{workers!r}")
            # Dask's nannies give their workers MALLOC_TRIM_THRESHOLD_=65536 (to hand
            # memory back to the system), which also switches off glibc's adaptive
            # mmap threshold: every batch is then mapped and unmapped, and a training
            # run took 1.6 times as long (same runs, fresh processes, A/B on 2 cores).
            # The nannies also write their variables into this process's os.environ;
            # it is restored on exit.
            stack.callback(_restore_environ, environ)
            no_trim = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_":
                       None}
            with dask.config.set(no_trim):
                scheduler = stack.enter_context(LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    host="127.0.0.1", dashboard_address=None,
                    env={"OMP_WAIT_POLICY": "PASSIVE"}))
        client = stack.enter_context(Client(scheduler))
        yield client.get_executor()


def _restore_environ(environ):
    for key in set(os.environ) - set(environ):
        del os.environ[key]
    os.environ.update(environ)
