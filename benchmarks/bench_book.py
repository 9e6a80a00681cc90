"""Book build benchmark: a cold build, then a warm rebuild, timed per chapter.

- cold: ``jupyter-book build`` with an empty checkpoint folder (a temporary
  ``$ACTFNS_CHECKPOINTS``), so every network the book uses is trained;
- warm: the same build again into a fresh output folder, so every chapter is
  re-executed, with the checkpoints of the cold build present.

Per-chapter times are MyST-NB's execution times, read from each build's Sphinx
environment (the data behind the book's status page). The build executes two chapters
at a time (book/_ext/parallel_execution.py; ``ACTFNS_BUILD_JOBS=1`` for one), so the
chapter times add up to more than the build: "chapters executing" is the wall time
during which at least one chapter was executing, and "other" the rest of the build
(parsing, writing HTML). Targets on 2 cores: cold < 15 min, warm < 2 min. The dataset
itself is not re-unpacked (``$ACTFNS_DATA`` is left as it is).

    .venv/bin/python benchmarks/bench_book.py              # the whole book (~15 min)
    .venv/bin/python benchmarks/bench_book.py --toc my_toc.yml --no-strict   # a few
"""

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"cold": 15 * 60, "warm": 2 * 60}


def build(name, out, checkpoints, args):
    """Run one build; returns (wall seconds, exit code, {chapter: (start, end)})."""
    cmd = [str(Path(sys.executable).parent / "jupyter-book"), "build", str(args.book),
           "--path-output", str(out), "--keep-going"]
    if args.strict:
        cmd.append("-W")
    if args.toc:
        cmd += ["--toc", str(args.toc)]
    if args.config:
        cmd += ["--config", str(args.config)]
    env = dict(os.environ, ACTFNS_CHECKPOINTS=str(checkpoints), ACTFNS_PROGRESS="0")
    log = out.with_suffix(".log")
    print(f"{name} build: {' '.join(cmd)}  (log: {log})", flush=True)
    start = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=f,
                            stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - start
    return wall, rc, chapter_times(out)


def chapter_times(out):
    """{docname: (start, end)} of each execution, from MyST-NB's records in the
    Sphinx env (``mtime`` is when the execution ended)."""
    pickled = out / "_build" / ".doctrees" / "environment.pickle"
    if not pickled.is_file():
        return {}
    with open(pickled, "rb") as f:
        env = pickle.load(f)
    meta = getattr(env, "nb_metadata", {})
    return {doc: (d["exec_data"]["mtime"] - d["exec_data"]["runtime"],
                  d["exec_data"]["mtime"])
            for doc, d in sorted(meta.items())
            if d.get("exec_data") and d["exec_data"].get("runtime") is not None}


def seconds(span):
    return span[1] - span[0]


def covered(spans):
    """Seconds during which at least one of the (start, end) spans was running."""
    total, reach = 0.0, float("-inf")
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total


def most_at_once(spans):
    return max((sum(1 for s, e in spans if s <= t < e) for t, _ in spans), default=0)


def snapshot(folder):
    """{name: mtime} of the checkpoint files (not the hidden lock files)."""
    return {p.name: p.stat().st_mtime_ns for p in Path(folder).glob("[!.]*")}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--book", type=Path, default=ROOT / "book")
    p.add_argument("--toc", type=Path, help="another table of contents (a subset)")
    p.add_argument("--config", type=Path, help="another _config.yml")
    p.add_argument("--no-strict", dest="strict", action="store_false",
                   help="build without -W (a partial toc leaves dangling links)")
    p.add_argument("--workdir", type=Path, help="keep outputs here (default: temp)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="actfns-bench-book-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        checkpoints = work / "checkpoints"
        checkpoints.mkdir(exist_ok=True)
        if any(checkpoints.iterdir()):
            sys.exit(f"{checkpoints} is not empty: a cold build needs no checkpoints")
        cold = build("cold", work / "cold", checkpoints, args)
        trained = snapshot(checkpoints)
        warm = build("warm", work / "warm", checkpoints, args)
        retrained = [n for n, t in snapshot(checkpoints).items() if trained.get(n) != t]
        report(cold, warm, trained, retrained)


def report(cold, warm, trained, retrained):
    nan = float("nan")
    times = [{doc: seconds(span) for doc, span in build[2].items()}
             for build in (cold, warm)]
    chapters = sorted(set(times[0]) | set(times[1]), key=lambda d: -times[0].get(d, 0))
    print(f"\n{'chapter':>34} {'cold s':>8} {'warm s':>8}")
    for doc in chapters:
        print(f"{doc:>34} {times[0].get(doc, nan):8.1f} {times[1].get(doc, nan):8.1f}")
    print(f"{'sum of the chapters':>34} {sum(times[0].values()):8.1f} "
          f"{sum(times[1].values()):8.1f}")
    spans = [list(build[2].values()) for build in (cold, warm)]
    print(f"{'most chapters at once':>34} {most_at_once(spans[0]):8d} "
          f"{most_at_once(spans[1]):8d}")
    print(f"{'chapters executing (wall)':>34} {covered(spans[0]):8.1f} "
          f"{covered(spans[1]):8.1f}")
    other = [build[0] - covered(s) for build, s in zip((cold, warm), spans)]
    print(f"{'other (Sphinx: read, write HTML)':>34} {other[0]:8.1f} {other[1]:8.1f}")
    print(f"{'whole build (wall)':>34} {cold[0]:8.1f} {warm[0]:8.1f}")
    print(f"\ncheckpoint files written by the cold build: {len(trained)}; "
          f"rewritten by the warm build: {len(retrained)} {retrained or ''}")
    ok = True
    for label, (wall, rc, _times) in (("cold", cold), ("warm", warm)):
        passed = wall < TARGETS[label] and rc == 0
        ok &= passed
        print(f"{label}: {wall / 60:.1f} min (target < {TARGETS[label] / 60:.0f} min), "
              f"exit code {rc}: {'PASS' if passed else 'FAIL'}")
    if retrained:
        ok = False
        print("FAIL: the warm build trained again")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
