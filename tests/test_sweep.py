"""actfns.sweep: training runs on executors (serial, ProcessPoolExecutor, a real Dask
LocalCluster on 127.0.0.1), workers killed mid-run, the data a worker loads itself,
and the ``python -m actfns sweep`` command.

The cluster tests (``slow``) train small networks on a subset of the real
FashionMNIST and compare every run, weights included, with the same run trained
serially in this process (one torch thread on both sides).
"""

import multiprocessing
import os
import pickle
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import psutil
import pytest
import torch
from conftest import make_blob_data

import actfns as af
from actfns.__main__ import main
from actfns.seeds import (
    read_sweep,
    screen_table,
    sweep_specs,
    sweep_tables,
    write_sweep,
)
from actfns.sweep import DataSource, RunFailure, SweepError, cluster_executor, describe

# Runs of about half a second each on one idle core: long enough to kill a worker
# mid-run. What the cluster tests spend is mostly starting workers: importing torch and
# actfns and loading the data, 8 s per process on an idle machine, 25 s under load.
SOURCE = DataSource(sizes=(16384, 1024, 1024))
SPECS = sweep_specs(["relu", "tanh"], (0, 1, 2), hidden_sizes=(64,), max_epochs=2)
OUTCOME = ("train_loss", "train_acc", "val_acc", "best_epoch", "best_val_acc",
           "test_acc", "fingerprint", "model_name")


def outcome(history):
    return {k: getattr(history, k) for k in OUTCOME}


def weights(store, spec):
    net, _ = af.RunStore(store).get(spec.name)
    return net.state_dict()


def assert_same_runs(store, histories, reference):
    """Same training outcome and bit-identical weights as the serial runs."""
    ref_store, ref_histories = reference
    assert [outcome(h) for h in histories] == [outcome(h) for h in ref_histories]
    for spec in SPECS:
        ours, theirs = weights(store, spec), weights(ref_store, spec)
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[k], theirs[k]) for k in ours), spec.name


def versions(store):
    """Each stored run's current version (the folder its link points to)."""
    folder = af.RunStore(store).folder
    return {name: os.readlink(folder / name) for name in af.RunStore(store).names()}


def kill_a_worker_mid_run(store, min_stored, timeout=240):
    """Wait until a child process has held a run's lock (is training it) for 0.15 s
    while at least ``min_stored`` runs are stored; SIGKILL it. Returns (pid, run)."""
    folder = af.RunStore(store).folder
    seen, deadline = {}, time.monotonic() + timeout
    while time.monotonic() < deadline:
        stored = set(af.RunStore(store).names())
        for child in psutil.Process().children(recursive=True):
            try:
                files = child.open_files()
            except psutil.Error:
                continue
            for f in files:
                path = Path(f.path)
                if path.parent != folder or not path.name.endswith(".lock"):
                    continue
                run = path.name[1:-len(".lock")]
                since = seen.setdefault((child.pid, run), time.monotonic())
                if (len(stored) >= min_stored and run not in stored
                        and time.monotonic() - since > 0.15):
                    os.kill(child.pid, signal.SIGKILL)
                    return child.pid, run
        time.sleep(0.05)
    raise AssertionError("no worker was seen training a run")


class Killer(threading.Thread):
    """:func:`kill_a_worker_mid_run` beside the sweep."""

    def __init__(self, store, min_stored=1):
        super().__init__(daemon=True)
        self.store, self.min_stored = store, min_stored
        self.killed = self.error = None

    def run(self):
        try:
            self.killed = kill_a_worker_mid_run(self.store, self.min_stored)
        except AssertionError as err:
            self.error = err


@pytest.fixture(scope="module")
def serial_runs(tmp_path_factory):
    """SPECS trained serially in this process (one torch thread)."""
    store = tmp_path_factory.mktemp("serial") / "checkpoints"
    return store, af.train_runs(SPECS, SOURCE, store=store)


@pytest.fixture(scope="module")
def dask_executor():
    """A real Dask LocalCluster: 2 worker processes, 1 thread each, on 127.0.0.1."""
    with cluster_executor(workers=2) as executor:
        yield executor


# --- the data a worker loads ---------------------------------------------------------

@pytest.mark.realdata
def test_data_source_loads_once_per_process_and_pickles_as_its_description(real_data):
    source = DataSource(sizes=(512, 128, 64))
    data = source.load()
    assert source.load() is data  # once per process
    assert [len(data.train), len(data.val), len(data.test)] == [512, 128, 64]
    assert torch.equal(data.train.tensors[0], real_data.train.tensors[0][:512])
    assert data.fingerprint == source.fingerprint != real_data.fingerprint
    assert len(pickle.dumps(data)) < 2000  # not 2 MB of images: the description
    assert pickle.loads(pickle.dumps(data.train)) is data.train
    assert describe(data) == source and describe(source) == source
    assert describe(real_data) == DataSource()  # the same data as load_fashion_mnist
    with pytest.raises(ValueError, match="sizes asks for 99999 test images"):
        DataSource(sizes=(10, 10, 99999)).load()


def test_data_source_and_executor_errors(blob_data, small_fashion):
    root, _ = small_fashion
    assert len(DataSource(root=root, num_val=20).load().test) == 40
    with pytest.raises(ValueError, match="three whole numbers"):
        DataSource(sizes=(10, 0, 10))
    with pytest.raises(TypeError, match="describe it with af.DataSource"):
        describe(blob_data)
    (root / "FashionMNIST" / "raw" / "t10k-labels-idx1-ubyte").write_bytes(b"\0" * 9)
    damaged = r"^on .+ \(pid \d+\): .*t10k-labels.* is not the published"
    with pytest.raises(af.DatasetError, match=damaged):
        DataSource(root=root, num_val=10).load()
    spec = af.RunSpec("relu", hidden_sizes=(4,))
    with pytest.raises(TypeError, match="concurrent.futures.Executor"):
        af.train_runs([spec], blob_data, executor=object())
    with pytest.raises(TypeError, match="specs must be RunSpecs"):
        af.train_runs(["relu"], blob_data)
    with pytest.raises(ValueError, match="either a scheduler address or a number"), \
            cluster_executor():
        pass
    with pytest.raises(ValueError, match="workers must be a whole number"), \
            cluster_executor(workers=0):
        pass


# --- failures ------------------------------------------------------------------------

def test_a_failing_run_is_reported_by_name_and_the_others_are_kept(tmp_path):
    data = make_blob_data(dim=784, sizes=(300, 100, 100), tag="sweep")
    good = sweep_specs(["relu", "tanh"], (0,), hidden_sizes=(8,), max_epochs=1)
    bad = af.RunSpec("elu", hidden_sizes=(8,),
                     recipe=af.COURSE_RECIPE.replace(batch_size=512, max_epochs=1))
    specs = [good[0], bad, good[1]]
    with pytest.raises(SweepError) as caught:
        af.train_runs(specs, data, store=tmp_path)
    err = caught.value
    message = str(err)
    assert "1 of 3 runs failed" in message and bad.name in message
    assert "ValueError: the training set has 300 images, fewer than one" in message
    assert "Traceback (most recent call last)" in message and "in fit" in message
    assert [type(r) for r in err.results] == [af.History, RunFailure, af.History]
    assert err.failures == [err.results[1]] and err.results[1].spec == bad
    assert sorted(af.RunStore(tmp_path).names()) == sorted(s.name for s in good)
    again = af.train_runs(good, data, store=tmp_path)
    assert [h.trained for h in again] == [False, False]
    assert [outcome(h) for h in again] == [outcome(err.results[0]),
                                           outcome(err.results[2])]


# --- executors -----------------------------------------------------------------------

@pytest.mark.realdata
def test_thread_pool_gives_the_serial_results_in_order(tmp_path):
    source = DataSource(sizes=(1024, 256, 256))
    specs = sweep_specs(["relu", "tanh"], (0, 1), hidden_sizes=(16,), max_epochs=1)
    serial = af.train_runs(specs, source.load(), store=tmp_path / "a")
    with ThreadPoolExecutor(2) as pool:
        pooled = af.train_runs(specs, source, store=tmp_path / "b", executor=pool)
    assert [outcome(h) for h in pooled] == [outcome(h) for h in serial]
    seeds = af.train_seeds(["relu", "tanh"], source.load(), (0, 1),
                           store=tmp_path / "b", executor=ThreadPoolExecutor(2),
                           hidden_sizes=(16,), max_epochs=1)
    assert [h.trained for r in seeds.values() for h in r.values()] == [False] * 4
    assert [h.best_val_acc for h in seeds["tanh"].values()] == [
        h.best_val_acc for h in serial[2:]]


def test_depth_sweep_and_init_study_refuse_threads():
    X = torch.randn(20, 1, 28, 28)
    with ThreadPoolExecutor(2) as pool:
        with pytest.raises(ValueError, match="depth_sweep cannot run on a ThreadPool"):
            af.depth_sweep(["relu"], (1,), X, width=4, executor=pool)
        with pytest.raises(ValueError, match="global random generator"):
            af.init_study(["relu"], ["default"], X, torch.zeros(20, dtype=torch.long),
                          hidden_sizes=(4,), executor=pool)


@pytest.mark.slow
@pytest.mark.realdata
def test_dask_cluster_equals_serial_survives_a_killed_worker_and_resumes(
        dask_executor, serial_runs, tmp_path):
    store = tmp_path / "checkpoints"
    killer = Killer(store)
    killer.start()
    histories = af.train_runs(SPECS, SOURCE, store=store, executor=dask_executor)
    killer.join()
    assert killer.error is None, killer.error
    pid, killed_run = killer.killed
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    # Dask ran the killed worker's run again elsewhere: the sweep completed
    assert [h.model_name for h in histories] == [s.name for s in SPECS]
    assert all(h.trained for h in histories)
    assert_same_runs(store, histories, serial_runs)
    before = versions(store)
    assert sorted(before) == sorted(s.name for s in SPECS) and killed_run in before
    again = af.train_runs(SPECS, SOURCE, store=store, executor=dask_executor)
    assert [h.trained for h in again] == [False] * len(SPECS)
    assert versions(store) == before  # nothing written again
    assert [outcome(h) for h in again] == [outcome(h) for h in histories]


@pytest.mark.slow
@pytest.mark.realdata
def test_dask_cluster_trains_a_run_asked_twice_once(dask_executor, tmp_path):
    # the workers' environment: no spinning OpenMP threads, glibc's own malloc tuning
    getenv = [dask_executor.submit(os.getenv, k).result()
              for k in ("OMP_WAIT_POLICY", "MALLOC_TRIM_THRESHOLD_")]
    assert getenv == ["PASSIVE", None]
    spec = SPECS[0]
    first, second = af.train_runs([spec, spec], SOURCE, store=tmp_path,
                                  executor=dask_executor)
    assert sorted([first.trained, second.trained]) == [False, True]
    assert outcome(first) == outcome(second)


@pytest.mark.slow
def test_depth_sweep_and_init_study_on_dask_equal_serial(dask_executor):
    data = DataSource(sizes=(512, 64, 64)).load()  # each worker loads it itself
    acts = ["relu", "tanh", "leakyrelu"]
    pd.testing.assert_frame_equal(
        af.depth_sweep(acts, (1, 2), data.train, width=32, executor=dask_executor),
        af.depth_sweep(acts, (1, 2), data.train, width=32))
    X, y = data.val.tensors
    pd.testing.assert_frame_equal(
        af.init_study(acts, ["kaiming"], X, y, hidden_sizes=(32,),
                      executor=dask_executor),
        af.init_study(acts, ["kaiming"], X, y, hidden_sizes=(32,)))


@pytest.mark.slow
@pytest.mark.realdata
def test_process_pool_killed_worker_reports_runs_and_a_second_call_finishes(
        serial_runs, tmp_path, monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    store = tmp_path / "checkpoints"
    # workers start from a process that imported actfns once (torch's threads do
    # not survive a plain fork): the way the docs recommend
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["actfns.sweep", "torch._dynamo"])
    killer = Killer(store)
    killer.start()
    with ProcessPoolExecutor(2, mp_context=context) as pool, \
            pytest.raises(SweepError) as caught:
        af.train_runs(SPECS, SOURCE, store=store, executor=pool)
    killer.join()
    assert killer.error is None, killer.error
    _, killed_run = killer.killed
    err = caught.value
    names = {s.name for s in SPECS}
    failed = {f.name for f in err.failures}
    finished = {h.model_name for h in err.results if isinstance(h, af.History)}
    assert killed_run in failed and finished and failed | finished == names
    assert "BrokenProcessPool" in str(err) and killed_run in str(err)
    # no half-written run: the killed run is not stored; what is stored is whole
    # (a run the pool's shutdown interrupted after it was stored counts as failed)
    before = versions(store)
    assert finished <= set(before) <= names and killed_run not in before
    for spec in SPECS:
        if spec.name in before:
            af.RunStore(store).get(spec.name, spec.fingerprint(SOURCE.load()))
    with ProcessPoolExecutor(2, mp_context=context) as pool:
        histories = af.train_runs(SPECS, SOURCE, store=store, executor=pool)
    assert {h.model_name for h in histories if h.trained} == names - set(before)
    assert {name: versions(store)[name] for name in before} == before
    assert_same_runs(store, histories, serial_runs)


# --- the grid, its tables and the command line --------------------------------------

def fake(test_acc, epochs=3):
    return af.History("run", val_acc=[0.5] * epochs, best_epoch=epochs,
                      test_acc=test_acc, wall_time=10.0)


def test_sweep_specs_grid_and_tables(tmp_path):
    specs = sweep_specs(["relu", "tanh"], (0, 1), depths=(1, 2), width=8,
                        inits=("default", "kaiming"), max_epochs=3)
    assert len(specs) == 16 == len(set(specs))
    assert {s.hidden_sizes for s in specs} == {(8,), (8, 8)}
    assert {s.recipe.max_epochs for s in specs} == {3}
    assert sweep_specs(["relu"], (0, 0)) == [af.RunSpec("relu", seed=0)]
    histories = [fake(0.8 + 0.01 * i) for i in range(len(specs))]
    runs, summary = sweep_tables(specs, histories)
    assert len(runs) == 16 and len(summary) == 8
    assert "relu depth=2 init=kaiming" in summary.index
    assert list(runs["name"]) == [s.name for s in specs]
    assert summary["test_acc_mean"].is_monotonic_decreasing  # best first
    table = screen_table(summary)
    assert "±" in table.iloc[0]["test accuracy (%)"]
    runs2, summary2 = write_sweep(tmp_path, specs[:4], histories[:4])
    assert list(summary2.index) == ["tanh", "relu"]  # one depth and init: plain names
    runs3, read = read_sweep(tmp_path)
    assert list(read.index) == ["tanh", "relu"] and "within_noise" in read
    pd.testing.assert_frame_equal(read, summary2, check_dtype=False)
    pd.testing.assert_frame_equal(runs3, runs2, check_dtype=False)
    assert screen_table(read).equals(screen_table(summary2))
    with pytest.raises(FileNotFoundError, match="is not the folder of a sweep"):
        read_sweep(tmp_path / "nothing")


@pytest.mark.realdata
def test_sweep_command_writes_runs_and_summary_and_resumes(tmp_path, capsys):
    args = ["sweep", "--activations", "relu", "tanh", "--seeds", "0-1", "3",
            "--depths", "1", "--width", "16", "--max-epochs", "1",
            "--subset", "1024", "256", "256", "--store", str(tmp_path / "store"),
            "--out", str(tmp_path / "out")]
    main(args)
    out = capsys.readouterr().out
    assert "6 runs, in this process" in out and "test accuracy (%)" in out
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert sorted(set(runs["seed"])) == [0, 1, 3] and len(runs) == 6
    stored = versions(tmp_path / "store")
    assert len(stored) == 6
    main(args)
    assert versions(tmp_path / "store") == stored
    with pytest.raises(SystemExit, match="--seeds takes whole numbers"):
        main(["sweep", "--seeds", "x"])
    with pytest.raises(SystemExit, match="unknown activation 'nope'"):
        main(["sweep", "--activations", "nope"])
    with pytest.raises(SystemExit, match="--workers must be at least 1, got 0"):
        main(["sweep", "--workers", "0"])
    with pytest.raises(SystemExit, match="max_epochs must be a whole number >= 1"):
        main(["sweep", "--max-epochs", "0"])
    with pytest.raises(ValueError, match="threads must be a whole number >= 1"):
        af.train_runs(SPECS, SOURCE, threads=0)
