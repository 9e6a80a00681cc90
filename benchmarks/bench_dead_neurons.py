"""Dead-neuron census benchmark: speed against the course's loader, and memory.

Speed (interleaved repetitions, medians): over all 50,000 training images,
- loader pass: one pass of the course's DataLoader (torchvision FashionMNIST with
  ToTensor + Normalize, batch 1024 as the course's ``train_loader``), doing nothing;
- course: the course's ``measure_number_dead_neurons`` on that loader;
- actfns: ``af.count_dead_neurons(net, data.train)`` (batches of 4096, streamed).
The course's function and actfns must find the same counts (checked).

Memory: for each dataset size N, a fresh subprocess holds N images, resets its peak
RSS (Linux ``/proc/self/clear_refs``), runs the census and reports the peak above
what it held before: memory beyond the data tensor, which must not grow with N.
For contrast it does the same for ``af.layer_activations`` on all N images at once.

    .venv/bin/python benchmarks/bench_dead_neurons.py [--reps 3]
"""

import json
import subprocess
import sys
import time
from pathlib import Path

import torch
from common import (
    af,
    course_dataset,
    course_loader,
    header,
    load,
    median,
    network,
    parser,
    setup,
    timed,
)

SIZES = (6250, 12500, 25000, 50000, 100000, 200000)


def course_dead_neurons(net, loader, device):
    """The course's measure_number_dead_neurons, returning the counts."""
    dead = [torch.ones(layer.weight.shape[0], device=device, dtype=torch.bool)
            for layer in net.layers[:-1] if isinstance(layer, torch.nn.Linear)]
    net.eval()
    with torch.no_grad():
        for imgs, _labels in loader:
            imgs = imgs.to(device).view(imgs.size(0), -1)
            k = 0
            for layer in net.layers[:-1]:
                imgs = layer(imgs)
                if isinstance(layer, af.ActivationFunction):
                    dead[k] = torch.logical_and(dead[k], (imgs == 0).all(dim=0))
                    k += 1
    return [int(t.sum()) for t in dead]


def loader_pass(loader):
    for _ in loader:
        pass


def speed(data, device, reps):
    loader = course_loader(course_dataset(data), 1024, False, False, None, device)
    net = network(42, device=device)
    times = {"loader pass": [], "course": [], "actfns": []}
    print(f"\n{'rep':>4} {'loader':>9} {'course':>9} {'actfns':>9}   (s)")
    for rep in range(reps):
        times["loader pass"].append(timed(lambda: loader_pass(loader), device)[0])
        t, theirs = timed(lambda: course_dead_neurons(net, loader, device), device)
        times["course"].append(t)
        t, ours = timed(lambda: af.count_dead_neurons(net, data.train), device)
        times["actfns"].append(t)
        if theirs != ours.counts:
            raise RuntimeError(f"counts differ: course {theirs}, actfns {ours.counts}")
        print(f"{rep:>4} " + " ".join(f"{v[-1]:9.3f}" for v in times.values()))
    m = {k: median(v) for k, v in times.items()}
    n = len(data.train)
    print(f"dead units per layer (untrained, seed 42), both methods: {ours.counts}")
    print(f"actfns census: {m['actfns']:.3f} s = {n / m['actfns']:,.0f} images/s")
    print(f"speed-up over one pass of the course's loader: "
          f"{m['loader pass'] / m['actfns']:5.2f}x (target >= 5x)")
    print(f"speed-up over the course's function:           "
          f"{m['course'] / m['actfns']:5.2f}x")
    return m


CHILD = r"""
import json, re, sys, time, torch
sys.path.insert(0, sys.argv[1])
import actfns as af
n, how = int(sys.argv[2]), sys.argv[3]

def kib(key):
    return int(re.search(key + r":\s+(\d+)", open("/proc/self/status").read()).group(1))

X = af.load_fashion_mnist().train.tensors[0]
X = X.repeat((n + len(X) - 1) // len(X), 1, 1, 1)[:n].clone()  # (n, 1, 28, 28)
import gc; gc.collect()
af.set_seed(42)
net = af.BaseNetwork("relu")
af.count_dead_neurons(net, X[:64])  # warm up: thread pools, lazy allocations
af.layer_activations(net, X[:64])
import ctypes; ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed heap back
open("/proc/self/clear_refs", "w").write("5")  # reset the peak RSS to the current
before = kib("VmRSS")
t = time.perf_counter()
if how == "census":
    af.count_dead_neurons(net, X)
else:
    af.layer_activations(net, X)
t = time.perf_counter() - t
print(json.dumps(dict(n=n, how=how, data_mib=X.nbytes / 2**20, seconds=t,
                      extra_mib=(kib("VmHWM") - before) / 1024)))
"""


def memory_child(n, how):
    root = str(Path(__file__).resolve().parents[1])
    out = subprocess.run([sys.executable, "-c", CHILD, root, str(n), how],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def memory(sizes=SIZES, contrast_max=50000):
    """Peak memory beyond the data, and time, of the census per dataset size."""
    if not Path("/proc/self/clear_refs").exists():
        print("\nmemory: needs Linux /proc/self/clear_refs; skipped")
        return []
    print("\ndead-neuron census on the CPU vs dataset size (each in a fresh "
          "process; sizes above 50,000 repeat the training images)")
    print(f"{'images':>8} {'data MiB':>9} {'census s':>9} {'extra MiB':>10} "
          f"{'all-at-once extra MiB':>22}")
    rows = []
    for n in sizes:
        r = memory_child(n, "census")
        if n <= contrast_max:
            r["all_at_once_mib"] = memory_child(n, "all")["extra_mib"]
        rows.append(r)
        contrast = (f"{r['all_at_once_mib']:22.0f}" if "all_at_once_mib" in r
                    else f"{'-':>22}")
        print(f"{n:>8,} {r['data_mib']:9.0f} {r['seconds']:9.2f} "
              f"{r['extra_mib']:10.1f} {contrast}")
    extra = [r["extra_mib"] for r in rows]
    print(f"extra memory of the census: {min(extra):.1f} to {max(extra):.1f} MiB "
          f"while the data grows {rows[-1]['n'] // rows[0]['n']}x: it does not grow "
          "with N (all-at-once, for contrast, grows linearly)")
    return rows


def main():
    p = parser(__doc__, reps=3)
    p.add_argument("--no-memory", action="store_true")
    args = p.parse_args()
    device = setup(args)
    header("dead-neuron census: course's loader vs actfns; memory vs dataset size",
           device)
    data = af.load_fashion_mnist()
    start = time.perf_counter()
    speed(data, device, args.reps)
    if not args.no_memory:
        memory()  # on the CPU, whatever the device above
    print(f"total {time.perf_counter() - start:.0f} s; load average at end: {load()}")


if __name__ == "__main__":
    main()
