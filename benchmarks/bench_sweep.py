"""Sweeps: N small runs serially (this process, one thread) and on a Dask LocalCluster
of W single-thread workers, taking turns; the speed-up, what each run costs beyond its
training, and what W workers would take for the full several-seeds study.

Every repetition trains the same N runs into fresh stores, serially then on the
cluster (whose workers were started and warmed up before: imports, data loaded, first
optimizer built; that start-up is reported apart), then "trains" them on the cluster
again, all reused from the store: the pure cost of a task (scheduling, sending the
spec, loading the run). Wall and CPU times are both reported. On a machine shared with
other work the wall-clock speed-up says little: Linux's autogroup scheduler gives all
the processes of one terminal session one share of the CPUs, so two workers there get
no more CPU than one process. The CPU times do not depend on that: a run's CPU
seconds serially against on the cluster give the overhead, and the speed-up on W free
cores. Finally one epoch of the course's network on the full data, on one thread,
prices the full-budget study (9 activations x 30 seeds of the course's recipe; the
epochs per run are the course runs' in the store when there are some, else 40).

    .venv/bin/python benchmarks/bench_sweep.py   # --runs 12 --workers 2 --reps 3
"""

import contextlib
import math
import os
import tempfile
import time

import psutil

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP

from common import af, header, load, median, parser  # noqa: E402

from actfns.seeds import SWEEP_ACTIVATIONS, sweep_specs  # noqa: E402
from actfns.sweep import DataSource, cluster_executor, train_runs  # noqa: E402

SOURCE = DataSource(sizes=(20000, 5000, 5000))
FULL_RUNS = len(SWEEP_ACTIVATIONS) * 30


def small_specs(n):
    """N runs of a 784-256-128-10 network, 2 epochs on 20,000 images."""
    seeds = range(math.ceil(n / 2))
    return sweep_specs(["relu", "tanh"], seeds, hidden_sizes=(256, 128),
                       max_epochs=2)[:n]


def cpu_seconds():
    """CPU seconds (user + system) used so far by this process and by each live child
    (the Dask workers): ``(this process, children)``."""
    children = 0.0
    for child in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            times = child.cpu_times()
            children += times.user + times.system
    return time.process_time(), children


def measured(fn):
    """``fn()``'s wall seconds, CPU seconds (this process + children) and the sum of
    its runs' own training times."""
    t0, (own0, kids0) = time.perf_counter(), cpu_seconds()
    histories = fn()
    own1, kids1 = cpu_seconds()
    return (time.perf_counter() - t0, own1 - own0 + kids1 - kids0,
            sum(h.wall_time for h in histories))


def course_epoch_seconds():
    """One epoch of the course's network on all the data, one thread: the full
    recipe's unit. Returns ``(wall, CPU)`` seconds."""
    data = af.load_fashion_mnist(download=False)
    spec = af.RunSpec("relu", recipe=af.COURSE_RECIPE.replace(max_epochs=1))
    with tempfile.TemporaryDirectory() as folder:
        cpu = time.process_time()
        history = af.train_run(spec, data, store=folder, progress=False)[1]
        cpu = time.process_time() - cpu
    return history.epoch_time[0], cpu * history.epoch_time[0] / history.wall_time


def course_epochs():
    """Mean epochs of the course's runs in the store (early stopping), if any."""
    epochs = [run.history.epochs for run in af.RunStore().list()
              if run.name in {f"FashionMNIST_{a}" for a in af.COURSE_ACTIVATIONS}]
    return (sum(epochs) / len(epochs), len(epochs)) if epochs else (40.0, 0)


def main():
    p = parser(__doc__, reps=3)
    p.add_argument("--runs", type=int, default=12)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    import torch

    torch.set_num_threads(1)
    header(f"sweep: {args.runs} runs serially vs {args.workers} single-thread Dask "
           "workers", torch.device("cpu"))
    specs = small_specs(args.runs)
    data = SOURCE.load()
    warm = sweep_specs(["relu"], range(args.workers), hidden_sizes=(8,), max_epochs=1)
    rows = {"serial": [], "cluster": [], "reused": []}
    with tempfile.TemporaryDirectory() as tmp:
        train_runs(warm, data, store=f"{tmp}/warm", progress=False)  # this process too
        t0, cpu0 = time.perf_counter(), sum(cpu_seconds())
        with cluster_executor(workers=args.workers) as executor:
            train_runs(warm, SOURCE, store=f"{tmp}/warm-c", executor=executor,
                      progress=False)
            start_wall = time.perf_counter() - t0
            start_cpu = (sum(cpu_seconds()) - cpu0) / args.workers
            for rep in range(args.reps):
                rows["serial"].append(measured(lambda rep=rep: train_runs(
                    specs, data, store=f"{tmp}/s{rep}", progress=False)))
                rows["cluster"].append(measured(lambda rep=rep: train_runs(
                    specs, SOURCE, store=f"{tmp}/c{rep}", executor=executor,
                    progress=False)))
                rows["reused"].append(measured(lambda rep=rep: train_runs(
                    specs, SOURCE, store=f"{tmp}/c{rep}", executor=executor,
                    progress=False)))
                print(f"  rep {rep + 1}: " + "; ".join(
                    f"{k} {v[-1][0]:.1f} s wall, {v[-1][1]:.1f} s CPU"
                    for k, v in rows.items()) + f" (load {load()})", flush=True)
    n, w = len(specs), args.workers
    (s_wall, s_cpu, s_runs), (c_wall, c_cpu, c_runs), (_, r_cpu, _) = (
        [median([r[i] for r in rows[k]]) for i in range(3)] for k in rows)
    overhead = (c_cpu - s_cpu) / n
    print(f"\nstart-up: {start_wall:.1f} s wall for the cluster and a first task on "
          f"each worker (imports, data, first optimizer), {start_cpu:.1f} CPU-s a "
          "worker")
    print(f"{n} runs, wall: serial {s_wall:.1f} s, {w} workers {c_wall:.1f} s: "
          f"speed-up {s_wall / c_wall:.2f} here (ideal {w}); the runs' own times "
          f"{s_runs / n:.2f} s serially, {c_runs / n:.2f} s on a worker")
    print(f"{n} runs, CPU: serial {s_cpu / n:.2f} s a run, on the cluster "
          f"{c_cpu / n:.2f} s a run (workers + this process): overhead "
          f"{overhead:+.2f} CPU-s a run ({overhead / (s_cpu / n):+.0%}); a reused run "
          f"{r_cpu / n:.3f} CPU-s")
    print(f"on {w} free cores: speed-up {w * s_cpu / c_cpu:.2f} (CPU-bound runs, "
          "from the CPU times)")
    epoch_wall, epoch_cpu = course_epoch_seconds()
    epochs, counted = course_epochs()
    source = f"mean of {counted} course runs in the store" if counted else "assumed"
    run = epochs * epoch_cpu
    print(f"\nfull study: {FULL_RUNS} runs x {epochs:.0f} epochs ({source}) x "
          f"{epoch_cpu:.1f} CPU-s per epoch of the course's network on one thread "
          f"({epoch_wall:.1f} s wall here) = {FULL_RUNS * run / 3600:.1f} core-hours")
    # the overhead: a fixed cost per task (a reused run's) and the rest, which grows
    # with the run at most in proportion
    fixed = r_cpu / n
    share = max(overhead - fixed, 0.0) / (s_cpu / n)
    print(f"scaling rule, W workers on W free cores: time(W) = {start_cpu:.0f} s "
          f"start-up + ceil(runs / W) x (run x {1 + share:.2f} + {fixed:.2f} s)")
    for workers in (1, 2, 8, 32, 64, FULL_RUNS):
        hours = (start_cpu + math.ceil(FULL_RUNS / workers)
                 * (run * (1 + share) + fixed)) / 3600
        print(f"  W = {workers:3d}: {hours:6.2f} h" + (f" ({hours * 60:.0f} min)"
                                                       if hours < 2 else ""))
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
