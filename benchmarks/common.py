"""Shared pieces of the benchmarks: the course's data pipeline (the baseline), the
GEMM floor, timing helpers and a header that says what machine and settings ran.

Every benchmark measures its baseline and ours in the same run, interleaved
(baseline, ours, floor, baseline, ours, floor, ...), and reports medians and their
ratios, so that a busy machine slows all of them alike.
"""

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
import actfns as af  # noqa: E402
from actfns.speed import (  # noqa: E402, F401  (the benchmarks import them from here)
    HIDDEN,
    course_dataset,
    course_epoch,
    course_loader,
    floor_flops,
    gemm_floor,
    median,
    network,
    ours_epoch,
    sgd,
    sync,
    timed,
)

DEEP = af.COURSE_DEEP_HIDDEN_SIZES  # the course's 10-hidden-layer network


def measure(fn, device):
    """(wall seconds, CPU seconds of this process, all threads) of ``fn()``.

    CPU time is less disturbed than wall time by other programs on the same cores,
    provided idle threads sleep instead of spinning (1 thread, or
    ``OMP_WAIT_POLICY=PASSIVE``); it means little on a GPU.
    """
    cpu = time.process_time()
    wall, _ = timed(fn, device)
    return wall, time.process_time() - cpu


def header(title, device):
    """Print what ran where: the figures mean little without it."""
    print(f"== {title}")
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "-"
    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY",
                                      "GOMP_SPINCOUNT") if k in os.environ}
    print(f"torch {torch.__version__}, device {device} (GPU: {gpu}), CPU {cpu}, "
          f"{os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()}, "
          f"OpenMP env {env or 'default'}")
    print(f"load average at start: {load()}")


def load():
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def parser(doc, reps):
    """The options every benchmark takes: --reps, --device, --threads."""
    p = argparse.ArgumentParser(description=doc.split("\n")[0])
    p.add_argument("--reps", type=int, default=reps)
    p.add_argument("--device", default=None, help="default: CUDA if present, else CPU")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    return p


def setup(args):
    """Apply --threads and return the device chosen by --device."""
    if args.threads:
        torch.set_num_threads(args.threads)
    return af.get_device(args.device)
