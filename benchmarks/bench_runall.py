"""A reader's "Run all" per chapter on Binder's budget: one core, wall time and peak
memory of the kernel, with and without the published networks.

Each chapter runs in a fresh kernel started the way Binder starts it (through
binder/start, under ``taskset -c CPU``: torch gets one thread), from an empty store of
trained networks, with the chapter's folder as working folder (as JupyterLab does):

- ``with``: ``ACTFNS_PRETRAINED_URL`` points at a loopback server holding the
  published networks (``--networks DIR``, default the built site's
  ``_build/html/networks``, else the current store published as the Pages workflow
  does), so a training chapter fetches instead of training;
- ``without``: no source (``ACTFNS_PRETRAINED_URL=""``), so each chapter trains what
  it needs, as for a reader whose first chapter it is: this can take hours in all.

Time is the cells' execution from the first to the last (kernel start excluded); peak
memory is the kernel process's high-water mark (``VmHWM``). Targets: every chapter
under 60 s with the networks; under Binder's 2 GB per kernel in both modes.

    .venv/bin/python benchmarks/bench_runall.py                     # with, all chapters
    .venv/bin/python benchmarks/bench_runall.py --mode with,without --chapters training
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # book_helpers: the chapters, a loopback server
from book_helpers import serve  # noqa: E402

TARGET_S = 60
BINDER_MB = 2048


def peak_rss_mb(pid):
    """The high-water mark of a process's resident memory, in MiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def run_chapter(source, timeout):
    """In this process: run every cell of ``source`` in a fresh kernel; return
    ``{"seconds", "peak_mb", "error"}``."""
    import jupytext
    import nbclient

    nb = jupytext.read(source)
    folder = {"metadata": {"path": str(source.parent)}}
    client = nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3",
                                     resources=folder)
    result = {"seconds": None, "peak_mb": None, "error": None}
    with client.setup_kernel():
        pid = client.km.provisioner.process.pid
        start = time.perf_counter()
        try:
            for index, cell in enumerate(nb.cells):
                if cell.cell_type == "code":
                    client.execute_cell(cell, index)
        except Exception as err:  # a chapter error is a result, not a crash
            result["error"] = f"{type(err).__name__}: {str(err).strip()[-300:]}"
        result["seconds"] = time.perf_counter() - start
        result["peak_mb"] = peak_rss_mb(pid)
    return result


def networks_folder(given, scratch):
    """The published networks to serve: ``given``, the built site's, or the current
    store published into ``scratch`` (``python -m actfns runs publish``)."""
    if given:
        return Path(given)
    from book_helpers import html_dir

    site = html_dir() / "networks"
    if (site / "manifest.json").is_file():
        return site
    folder = scratch / "networks"
    subprocess.run([sys.executable, "-m", "actfns", "runs", "publish", str(folder)],
                   check=True)
    return folder


def measure(source, url, cpu, timeout, scratch):
    """Run one chapter in a child process pinned to ``cpu`` through binder/start."""
    store = Path(tempfile.mkdtemp(prefix="store-", dir=scratch))
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_NUM_THREADS") and k not in ("MPLBACKEND", "CPU_LIMIT")}
    env.update(ACTFNS_CHECKPOINTS=str(store), ACTFNS_PRETRAINED_URL=url,
               ACTFNS_PROGRESS="0", PATH=f"{Path(sys.executable).parent}:"
               f"{env.get('PATH', '')}")
    command = ["taskset", "-c", str(cpu), str(ROOT / "binder" / "start"),
               sys.executable, __file__, "--child", str(source), "--timeout",
               str(timeout)]
    # its own process group: stopping the benchmark stops the chapter's kernel too
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = child.communicate(timeout=timeout + 300)
    except BaseException:
        os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        raise
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if child.returncode or not lines:
        return {"seconds": None, "peak_mb": None,
                "error": f"exit {child.returncode}: {stderr.strip()[-300:]}"}
    return json.loads(lines[-1])


def cell(result):
    if result["seconds"] is None:
        return f"{'failed':>18}"
    return f"{result['seconds']:8.1f} s {result['peak_mb']:6.0f} MB"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--mode", default="with", help="with, without, or with,without")
    p.add_argument("--chapters", default="", help="comma-separated (default: all)")
    p.add_argument("--networks", help="a published networks folder (manifest.json)")
    p.add_argument("--cpu", type=int, default=0, help="the core to pin to")
    p.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    p.add_argument("--json", help="write the results here too")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    # SIGTERM (e.g. from `timeout`) unwinds like Ctrl-C, so the chapter is stopped
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.child:
        print(json.dumps(run_chapter(Path(args.child), args.timeout)))
        return

    from book_helpers import notebook_docnames, source_of

    chapters = args.chapters.split(",") if args.chapters else notebook_docnames()
    modes = args.mode.split(",")
    print(f"== Run all per chapter: one core (taskset -c {args.cpu}, binder/start), "
          f"fresh kernel, empty store; modes {modes}")
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        folder = networks_folder(args.networks, scratch) if "with" in modes else None
        with serve(folder or scratch) as base:
            urls = {"with": base, "without": ""}
            print(f"{'chapter':32} " + " ".join(f"{m:>18}" for m in modes))
            for name in chapters:
                results[name] = {m: measure(source_of(name), urls[m], args.cpu,
                                            args.timeout, scratch) for m in modes}
                print(f"{name:32} " + " ".join(cell(results[name][m]) for m in modes),
                      flush=True)
    over = [f"{name} ({r['with']['seconds']:.0f} s with networks)"
            for name, r in results.items() if "with" in r
            and r["with"]["seconds"] is not None and r["with"]["seconds"] > TARGET_S]
    big = [f"{name} {m} ({r[m]['peak_mb']:.0f} MB)" for name, r in results.items()
           for m in r if r[m]["peak_mb"] and r[m]["peak_mb"] > BINDER_MB]
    failed = [f"{name} {m}: {r[m]['error']}" for name, r in results.items()
              for m in r if r[m]["error"]]
    print(f"over {TARGET_S} s with networks: {over or 'none'}")
    print(f"over Binder's {BINDER_MB} MB: {big or 'none'}")
    for line in failed:
        print(f"FAILED {line}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
