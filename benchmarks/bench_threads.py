"""Thread settings: one actfns training epoch with 1 thread and with all threads,
under OpenMP's default wait policy, a short spin (``GOMP_SPINCOUNT=10000``,
libgomp) and no spin (``OMP_WAIT_POLICY=PASSIVE``).

OpenMP reads its wait policy when torch is imported, so each setting runs in a fresh
subprocess; the settings take turns, repetition after repetition. On a machine whose
cores are shared with other work (a CI runner, Binder, a laptop that is busy), the
default policy's spinning threads can make an epoch many times slower; this shows by
how much here, and what each setting costs on an idle machine.

    .venv/bin/python benchmarks/bench_threads.py [--reps 3]
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from common import af, header, load, median

CHILD = r"""
import json, sys, time, torch
sys.path.insert(0, sys.argv[1])
from common import network, ours_epoch, af
torch.set_num_threads(int(sys.argv[2]))
data = af.load_fashion_mnist()
t = [ours_epoch(network(0), data, 256, 0, torch.device("cpu")) for _ in range(2)]
print(json.dumps(min(t)))
"""


def run(threads, omp_env):
    env = {k: v for k, v in os.environ.items()
           if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(omp_env)
    here = str(Path(__file__).resolve().parent)
    out = subprocess.run([sys.executable, "-c", CHILD, here, str(threads)], env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args()
    import torch

    header("thread settings (CPU)", torch.device("cpu"))
    n = torch.get_num_threads()
    spin, passive = {"GOMP_SPINCOUNT": "10000"}, {"OMP_WAIT_POLICY": "PASSIVE"}
    cases = {f"{n} threads, default wait": (n, {}),
             f"{n} threads, GOMP_SPINCOUNT=10000": (n, spin),
             f"{n} threads, OMP_WAIT_POLICY=PASSIVE": (n, passive),
             "1 thread": (1, {})}
    times = {label: [] for label in cases}
    for _ in range(args.reps):
        for label, (threads, omp_env) in cases.items():
            times[label].append(run(threads, omp_env))
    print(f"\n{'setting':>38} {'epoch s (median)':>17}  all")
    for label, t in times.items():
        print(f"{label:>38} {median(t):17.3f}  {' '.join(f'{x:.2f}' for x in t)}")
    print(f"load average at end: {load()} (af {af.__version__})")


if __name__ == "__main__":
    main()
