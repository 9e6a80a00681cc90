"""Shared pieces of the benchmarks: the course's data pipeline (the baseline), the
GEMM floor, timing helpers and a header that says what machine and settings ran.

Every benchmark measures its baseline and ours in the same run, interleaved
(baseline, ours, floor, baseline, ours, floor, ...), and reports medians and their
ratios, so that a busy machine slows all of them alike.
"""

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
import actfns as af  # noqa: E402

HIDDEN = (512, 256, 256, 128)
DEEP = (256,) * 5 + (128,) * 5  # the course's 10-hidden-layer network


def sync(device):
    """Wait for queued device work (CUDA runs asynchronously)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device):
    """(seconds, result) of ``fn()``, device work included."""
    sync(device)
    start = time.perf_counter()
    result = fn()
    sync(device)
    return time.perf_counter() - start, result


def measure(fn, device):
    """(wall seconds, CPU seconds of this process, all threads) of ``fn()``.

    CPU time is less disturbed than wall time by other programs on the same cores,
    provided idle threads sleep instead of spinning (1 thread, or
    ``OMP_WAIT_POLICY=PASSIVE``); it means little on a GPU.
    """
    cpu = time.process_time()
    wall, _ = timed(fn, device)
    return wall, time.process_time() - cpu


def median(values):
    return statistics.median(values)


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


def train_indices(seed=42, num_val=10000, n=60000):
    """Indices of ``load_fashion_mnist``'s training split in torchvision's dataset."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[num_val:]


def course_dataset(data, root=None):
    """The course's data: torchvision FashionMNIST with ToTensor + Normalize(0.5, 0.5),
    one PIL image at a time, restricted to the same 50,000 training images as
    ``data.train`` (checked), so only the pipeline differs."""
    from torchvision import transforms
    from torchvision.datasets import FashionMNIST

    transform = transforms.Compose([transforms.ToTensor(),
                                    transforms.Normalize((0.5,), (0.5,))])
    root = af.prepare_fashion_mnist(root)
    full = FashionMNIST(root, train=True, transform=transform, download=False)
    subset = Subset(full, train_indices().tolist())
    for i in (0, len(subset) - 1):
        if not torch.equal(subset[i][0], data.train.tensors[0][i]):
            raise RuntimeError("course pipeline and actfns data disagree at image "
                               f"{i}: the baseline would not be comparable")
    return subset


def course_loader(dataset, batch_size, shuffle, drop_last, generator, device):
    """The course's ``DataLoader`` (``pin_memory`` as in the course, if a GPU)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle,
                      drop_last=drop_last, generator=generator,
                      pin_memory=device.type == "cuda")


def course_epoch(net, loader, optimizer, device):
    """The course's training loop body (without tqdm and prints)."""
    net.train()
    true_preds, count = 0.0, 0
    for imgs, labels in loader:
        imgs, labels = imgs.to(device), labels.to(device)
        optimizer.zero_grad()
        preds = net(imgs)
        loss = F.cross_entropy(preds, labels)
        loss.backward()
        optimizer.step()
        true_preds += (preds.argmax(dim=-1) == labels).sum()
        count += labels.shape[0]
    return (true_preds / count).item()


def sgd(net):
    return torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)


def network(seed, hidden=HIDDEN, device="cpu"):
    af.set_seed(seed)
    return af.BaseNetwork("relu", hidden_sizes=hidden).to(device)


def layer_sizes(hidden=HIDDEN):
    return [784, *hidden, 10]


def floor_flops(hidden, batch_size, steps):
    """FLOPs of the GEMMs a training step must do, and the "6 x params" figure.

    Per Linear layer (n_in -> n_out) and batch B: forward X W^T (2 B n_in n_out),
    weight gradient X^T G (the same), input gradient G W (the same) for every layer
    but the first, whose input (the images) needs no gradient.
    """
    sizes = layer_sizes(hidden)
    pairs = list(zip(sizes[:-1], sizes[1:]))
    exact = sum(2 * batch_size * i * o * (3 if k else 2) for k, (i, o) in
                enumerate(pairs))
    params = sum(i * o + o for i, o in pairs)
    return exact * steps, 6 * params * batch_size * steps


def gemm_floor(hidden, batch_size, steps, device):
    """Seconds of exactly the GEMMs of ``steps`` training steps, same shapes and
    layouts as autograd uses (bias adds, activations, loss, optimizer left out)."""
    sizes = layer_sizes(hidden)
    g = torch.Generator().manual_seed(0)
    W = [torch.randn(o, i, generator=g).to(device) for i, o in zip(sizes[:-1],
                                                                   sizes[1:])]
    A = [torch.randn(batch_size, s, generator=g).to(device) for s in sizes]

    def run():
        for _ in range(steps):
            for k, w in enumerate(W):
                x, grad = A[k], A[k + 1]
                torch.mm(x, w.t())  # forward: (B, in) @ (in, out)
                torch.mm(x.t(), grad)  # weight gradient: (in, B) @ (B, out)
                if k:
                    torch.mm(grad, w)  # input gradient: (B, out) @ (out, in)

    return timed(run, device)[0]


def ours_epoch(net, data, batch_size, seed, device):
    """One epoch of ``af.train_epoch`` over ``af.batches``: the path ``train_model``
    runs. Returns seconds."""
    loader = af.batches(data.train, batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(seed))
    opt = sgd(net)
    return timed(lambda: af.train_epoch(net, loader, opt, device), device)[0]


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
