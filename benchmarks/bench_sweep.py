"""Sweeps: N small runs serially (this process, one thread) and on a Dask LocalCluster
of W single-thread workers, taking turns; the speed-up, what each run costs beyond its
training, and what W workers would take for the full several-seeds study.

Every repetition trains the same N runs into fresh stores, serially then on the
cluster (whose workers were started and warmed up before: data loaded, first
optimizer built; that start-up is reported apart). Then the cluster "trains" them
again from the store (every run reused), which is the pure per-run cost of a task:
scheduling, sending the spec, loading the run. Finally one epoch of the course's
network on the full data, on one thread, prices the full-budget study (9 activations
x 30 seeds of the course's recipe; the epochs per run are read from the course runs
in the store when there are some, else 40).

    .venv/bin/python benchmarks/bench_sweep.py   # --runs 12 --workers 2 --reps 3
"""

import math
import os
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch starts OpenMP

from common import af, header, load, median, parser  # noqa: E402

from actfns.sweep import (  # noqa: E402
    SWEEP_ACTIVATIONS,
    DataSource,
    cluster_executor,
    run_specs,
    sweep_specs,
)

SOURCE = DataSource(sizes=(20000, 5000, 5000))
FULL_RUNS = len(SWEEP_ACTIVATIONS) * 30


def small_specs(n):
    """N runs of a 784-256-128-10 network, 2 epochs on 20,000 images."""
    seeds = range(math.ceil(n / 2))
    return sweep_specs(["relu", "tanh"], seeds, hidden_sizes=(256, 128),
                       max_epochs=2)[:n]


def timed(fn):
    """(wall seconds of ``fn()``, the sum of its runs' own training times)."""
    t0 = time.perf_counter()
    histories = fn()
    return time.perf_counter() - t0, sum(h.wall_time for h in histories)


def course_epoch_seconds(torch):
    """One epoch of the course's network (the full recipe's unit), one thread."""
    data = af.load_fashion_mnist(download=False)
    spec = af.RunSpec("relu", recipe=af.COURSE_RECIPE.replace(max_epochs=1))
    with tempfile.TemporaryDirectory() as folder:
        history = af.train_run(spec, data, store=folder, progress=False)[1]
    return history.epoch_time[0]


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
    with tempfile.TemporaryDirectory() as tmp:
        run_specs(warm, data, store=f"{tmp}/warm", progress=False)  # this process too
        t0 = time.perf_counter()
        with cluster_executor(workers=args.workers) as executor:
            started = time.perf_counter() - t0
            warmup, _ = timed(lambda: run_specs(warm, SOURCE, store=f"{tmp}/warm-c",
                                                executor=executor, progress=False))
            serial, cluster, reuse, inside = [], [], [], {"serial": [], "cluster": []}
            for rep in range(args.reps):
                wall, runs = timed(lambda rep=rep: run_specs(
                    specs, data, store=f"{tmp}/s{rep}", progress=False))
                serial.append(wall)
                inside["serial"].append(runs)
                wall, runs = timed(lambda rep=rep: run_specs(
                    specs, SOURCE, store=f"{tmp}/c{rep}", executor=executor,
                    progress=False))
                cluster.append(wall)
                inside["cluster"].append(runs)
                reuse.append(timed(lambda rep=rep: run_specs(
                    specs, SOURCE, store=f"{tmp}/c{rep}", executor=executor,
                    progress=False))[0])
                print(f"  rep {rep + 1}: serial {serial[-1]:.1f} s, cluster "
                      f"{cluster[-1]:.1f} s, cluster reusing {reuse[-1]:.2f} s; the "
                      f"runs' own times {inside['serial'][-1]:.1f} s serially, "
                      f"{inside['cluster'][-1]:.1f} s on the workers (load {load()})",
                      flush=True)
    n, w = len(specs), args.workers
    t_s, t_c, t_r = median(serial), median(cluster), median(reuse)
    per_run = t_s / n
    overhead = (t_c * w - t_s) / n  # worker-seconds per run beyond its training
    print(f"\ncluster start {started:.1f} s; worker warm-up (imports, data, first "
          f"optimizer) {warmup:.1f} s")
    print(f"{n} runs: serial {t_s:.1f} s ({per_run:.2f} s a run), {w} workers "
          f"{t_c:.1f} s: speed-up {t_s / t_c:.2f} (ideal {w}), "
          f"efficiency {t_s / t_c / w:.0%}")
    print(f"a run's own training time: {median(inside['serial']) / n:.2f} s "
          f"serially, {median(inside['cluster']) / n:.2f} s on a worker (the "
          "difference is the machine's other load, not the sweep)")
    print(f"per-run cost beyond training: {overhead:+.2f} worker-seconds "
          f"({overhead / per_run:+.0%} of a run); a reused run: "
          f"{t_r / n * w:.3f} worker-seconds")
    epoch = course_epoch_seconds(torch)
    epochs, counted = course_epochs()
    source = f"mean of {counted} course runs in the store" if counted else "assumed"
    run = epochs * epoch
    print(f"\nfull study: {FULL_RUNS} runs x {epochs:.0f} epochs ({source}) x "
          f"{epoch:.1f} s per epoch of the course's network on one thread = "
          f"{FULL_RUNS * run / 3600:.1f} h of one core")
    print("scaling rule: time(W) = start-up + ceil(runs / W) x (run + overhead)")
    for workers in (1, 2, 8, 32, 64, FULL_RUNS):
        hours = (started + warmup + math.ceil(FULL_RUNS / workers)
                 * (run + max(overhead, 0.0))) / 3600
        print(f"  W = {workers:3d}: {hours:6.2f} h" + (f" ({hours * 60:.0f} min)"
                                                       if hours < 2 else ""))
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
