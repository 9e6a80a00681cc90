"""Command line: ``python -m actfns runs {list,prune,publish,fetch}``.

- ``runs list``: the runs in the store, one line each.
- ``runs prune --unused-since FILE``: remove the runs not read or written since FILE
  was last modified (``touch`` it before a build, prune after it: what the build did
  not ask for goes).
- ``runs publish DIR``: copy every run, as plain files, with ``DIR/manifest.json``.
- ``runs fetch [--url URL]``: fetch published runs into the store (SHA-256 checked).
- ``course-checkpoints [--dest DIR]``: download the course's six trained networks.

``--store DIR`` picks the store's folder (default ``$ACTFNS_CHECKPOINTS``).
"""

import argparse
import sys
from pathlib import Path

from .pretrained import fetch_course_checkpoints, fetch_runs, publish_runs
from .store import RunStore


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
    args = parser.parse_args(argv)
    args.handler(args)


if __name__ == "__main__":
    main()
