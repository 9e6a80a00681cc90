"""Command line: ``python -m actfns runs {list,prune,publish,fetch}``.

- ``runs list``: the runs in the store, one line each.
- ``runs prune --unused-since FILE``: remove the runs not read or written since FILE
  was last modified (``touch`` it before a build, prune after it: what the build did
  not ask for goes).
- ``runs publish DIR``: copy every run, as plain files, with ``DIR/manifest.json``.
- ``runs fetch [--url URL]``: fetch published runs into the store (SHA-256 checked).
- ``course-checkpoints [--dest DIR]``: download the course's six trained networks.
- ``sweep``: train a grid of runs (activations x seeds x depths x initialisations,
  with changes to the course's recipe) serially, on a local Dask cluster
  (``--workers N``) or on a running one (``--scheduler tcp://host:8786``); write
  ``runs.csv`` and ``summary.csv`` (mean ± std over seeds and the screen against the
  best, as the several-seeds chapter computes them) into ``--out``, and print the
  table. Calling it again reuses every stored run and trains only what is missing.
  The full-budget several-seeds study (9 activations x 30 seeds, course recipe):
  ``python -m actfns sweep --seeds 0-29 --workers 8 --out full-study``.

``--store DIR`` picks the store's folder (default ``$ACTFNS_CHECKPOINTS``); on a
cluster, a folder that every worker sees under the same path.
"""

import argparse
import contextlib
import sys
from pathlib import Path

from .data import DatasetError, prepare_fashion_mnist
from .initialisation import INIT_SCHEMES
from .pretrained import fetch_course_checkpoints, fetch_runs, publish_runs
from .seeds import SWEEP_ACTIVATIONS, screen_table, sweep_specs, write_sweep
from .store import RunStore
from .sweep import DataSource, RunFailure, SweepError, cluster_executor, train_runs


def _runs(args):
    store = RunStore(args.store)
    if args.action == "list":
        for run in store.list():
            h = run.history
            print(f"{run.name}\ttest_acc={h.test_acc:.4f}\tepochs={h.epochs}\t"
                  f"fingerprint={h.fingerprint[:12]}")
    elif args.action == "prune":
        if not args.unused_since:
            sys.exit("runs prune needs --unused-since FILE")
        since = Path(args.unused_since).stat().st_mtime
        removed = store.prune(since)
        print(f"removed {len(removed)} unused run(s) from {store.folder}"
              + "".join(f"\n  {name}" for name in removed))
    elif args.action == "publish":
        if not args.dest:
            sys.exit("runs publish needs a destination folder")
        manifest = publish_runs(store, args.dest)
        print(f"published {len(manifest['runs'])} run(s) into {args.dest}")
    elif args.action == "fetch":
        try:
            result = fetch_runs(store, args.url)
        except (OSError, ValueError) as err:
            sys.exit(f"cannot fetch runs: {err}")
        for name, status in result.items():
            print(f"{name}: {status}")


def _seed_list(items):
    """``["0-2", "7"]`` -> ``[0, 1, 2, 7]`` (ranges include both ends)."""
    seeds = []
    for item in items:
        first, sep, last = item.partition("-")
        try:
            seeds += (list(range(int(first), int(last) + 1)) if sep
                      else [int(item)])
        except ValueError:
            sys.exit(f"sweep: --seeds takes whole numbers or ranges like 0-29, got "
                     f"{item!r}")
    if not seeds:
        sys.exit(f"sweep: --seeds {' '.join(items)} gives no seed (a range A-B needs "
                 "A <= B)")
    return list(dict.fromkeys(seeds))


def _sweep(args):
    recipe = {name: getattr(args, name) for name in ("max_epochs", "patience", "lr",
                                                     "momentum", "batch_size")
              if getattr(args, name) is not None}
    for name in ("workers", "threads", "width"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            sys.exit(f"sweep: --{name} must be at least 1, got {getattr(args, name)}")
    try:
        specs = sweep_specs(args.activations, _seed_list(args.seeds),
                            depths=args.depths, width=args.width, inits=args.init,
                            **recipe)
        source = DataSource(root=args.data, sizes=args.subset)
    except (TypeError, ValueError) as err:
        sys.exit(f"sweep: {err}")
    if args.scheduler is None:  # this machine's files serve every worker
        try:
            prepare_fashion_mnist(args.data)
        except DatasetError as err:
            sys.exit(f"sweep: {err}")
    store = RunStore(args.store)
    where = (f"on the cluster at {args.scheduler}" if args.scheduler else
             f"on a local cluster of {args.workers} workers" if args.workers else
             "in this process")
    print(f"{len(specs)} runs, {where}, stored in {store.folder}", flush=True)
    local = args.scheduler is None and args.workers is None
    cluster = (contextlib.nullcontext() if local
               else cluster_executor(args.scheduler, args.workers))
    failed = None
    with cluster as executor:
        try:
            histories = train_runs(specs, source, executor=executor, store=store,
                                  device=args.device, threads=args.threads)
        except SweepError as err:
            failed, histories = err, err.results
    done = [(s, h) for s, h in zip(specs, histories) if not isinstance(h, RunFailure)]
    if done:
        runs, summary = write_sweep(Path(args.out), *zip(*done))
        print(screen_table(summary).to_string())
        print(f"\n{len(runs)} runs: {Path(args.out) / 'runs.csv'}, summary: "
              f"{Path(args.out) / 'summary.csv'}")
    if failed:
        sys.exit(str(failed))


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m actfns", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    runs = commands.add_parser("runs", help="list, prune, publish or fetch runs")
    runs.add_argument("action", choices=["list", "prune", "publish", "fetch"])
    runs.add_argument("dest", nargs="?", help="folder for 'publish'")
    runs.add_argument("--store", help="the store's folder (default: "
                      "$ACTFNS_CHECKPOINTS)")
    runs.add_argument("--unused-since", help="for 'prune': a file whose modification "
                      "time is the cut-off")
    runs.add_argument("--url", help="for 'fetch': the published folder (default: "
                      "$ACTFNS_PRETRAINED_URL)")
    runs.set_defaults(handler=_runs)
    course = commands.add_parser("course-checkpoints",
                                 help="download the course's six trained networks")
    course.add_argument("--dest", help="folder (default ~/.cache/actfns/course)")
    course.set_defaults(handler=lambda a: print(fetch_course_checkpoints(a.dest)))
    sweep = commands.add_parser(
        "sweep", help="train activations x seeds x depths x inits, on a cluster too",
        description="Train (or reuse) every run of a grid and summarise it over seeds. "
        "Runs are stored in the run store; a second call trains only what is missing.")
    sweep.add_argument("--activations", nargs="+", default=list(SWEEP_ACTIVATIONS),
                       metavar="ACT", help="registry names (default: the several-seeds "
                       "chapter's nine)")
    sweep.add_argument("--seeds", nargs="+", default=["0-2"], metavar="SEED",
                       help="seeds or ranges, e.g. 0-29 (default 0-2)")
    sweep.add_argument("--depths", nargs="+", type=int, metavar="D",
                       help="hidden layers of --width units (default: the course's "
                       "network, 512-256-256-128)")
    sweep.add_argument("--width", type=int, default=256, help="units per hidden "
                       "layer with --depths (default 256)")
    sweep.add_argument("--init", nargs="+", default=["default"], metavar="SCHEME",
                       choices=INIT_SCHEMES, help="initialisations (default: "
                       "PyTorch's)")
    recipe = sweep.add_argument_group("changes to the course's recipe")
    recipe.add_argument("--max-epochs", type=int)
    recipe.add_argument("--patience", type=int)
    recipe.add_argument("--lr", type=float)
    recipe.add_argument("--momentum", type=float)
    recipe.add_argument("--batch-size", type=int)
    where = sweep.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int, metavar="N", help="start a local Dask "
                       "cluster of N single-thread worker processes")
    where.add_argument("--scheduler", metavar="ADDRESS", help="a running Dask "
                       "scheduler, e.g. tcp://host:8786")
    sweep.add_argument("--threads", type=int, help="torch threads per run (default: "
                       "1 on workers, this process's when serial)")
    sweep.add_argument("--store", help="the store's folder (default: "
                       "$ACTFNS_CHECKPOINTS)")
    sweep.add_argument("--data", help="dataset root as the workers see it (default: "
                       "each worker's $ACTFNS_DATA)")
    sweep.add_argument("--subset", nargs=3, type=int, metavar=("TRAIN", "VAL", "TEST"),
                       help="use only the first images of each split (quick trials)")
    sweep.add_argument("--device", help="cpu, cuda, ... (default: $ACTFNS_DEVICE, "
                       "else CUDA if present)")
    sweep.add_argument("--out", default="sweep", help="folder for runs.csv and "
                       "summary.csv (default ./sweep)")
    sweep.set_defaults(handler=_sweep)
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
