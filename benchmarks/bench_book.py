"""Book build benchmark: a cold build, then a warm rebuild, timed per chapter.

- cold: ``jupyter-book build`` with an empty checkpoint folder (a temporary
  ``$ACTFNS_CHECKPOINTS``), so every network the book uses is trained;
- warm: the same build again into a fresh output folder, so every chapter is
  re-executed, with the checkpoints of the cold build present.

Per-chapter times are MyST-NB's execution times, read from each build's Sphinx
environment (the data behind the book's status page); "other" is the rest of the
build (parsing, writing HTML). Targets on 2 cores: cold < 15 min, warm < 2 min. The
dataset itself is not re-unpacked (``$ACTFNS_DATA`` is left as it is).

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
    """Run one build; returns (wall seconds, exit code, {chapter: exec seconds})."""
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
    """{docname: execution seconds} from MyST-NB's records in the Sphinx env."""
    pickled = out / "_build" / ".doctrees" / "environment.pickle"
    if not pickled.is_file():
        return {}
    with open(pickled, "rb") as f:
        env = pickle.load(f)
    meta = getattr(env, "nb_metadata", {})
    return {doc: d["exec_data"]["runtime"] for doc, d in sorted(meta.items())
            if d.get("exec_data") and d["exec_data"].get("runtime") is not None}


def snapshot(folder):
    return {p.name: p.stat().st_mtime_ns for p in Path(folder).glob("*")}


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
    chapters = sorted(set(cold[2]) | set(warm[2]), key=lambda d: -cold[2].get(d, 0))
    print(f"\n{'chapter':>34} {'cold s':>8} {'warm s':>8}")
    for doc in chapters:
        c, w = cold[2].get(doc), warm[2].get(doc)
        print(f"{doc:>34} {c if c is not None else float('nan'):8.1f} "
              f"{w if w is not None else float('nan'):8.1f}")
    print(f"{'executing chapters':>34} {sum(cold[2].values()):8.1f} "
          f"{sum(warm[2].values()):8.1f}")
    print(f"{'other (Sphinx: read, write HTML)':>34} "
          f"{cold[0] - sum(cold[2].values()):8.1f} "
          f"{warm[0] - sum(warm[2].values()):8.1f}")
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
