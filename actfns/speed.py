"""Speed: the GEMM floor, the course's data pipeline as a baseline, and a training
step written out by hand, which the book's appendix "Speed" and ``benchmarks/`` time.

Each measurement takes turns (baseline, ours, floor, ...) in the same run and reports
medians, so that a busy machine slows all of them alike. On a GPU every timed part is
synchronised before its clock stops.
"""

import statistics
import time
from functools import partial

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset

from .activations import ReLU
from .course import (
    COURSE_HIDDEN_SIZES,
    COURSE_INPUT_SIZE,
    COURSE_NUM_CLASSES,
    COURSE_NUM_VAL,
    COURSE_RECIPE,
    COURSE_SEED,
)
from .data import batches, prepare_fashion_mnist
from .initialisation import initial_network
from .train import train_epoch

__all__ = ["PARTS", "GEMMS", "sync", "timed", "median", "course_dataset",
           "course_loader", "course_epoch", "sgd", "network", "floor_flops",
           "gemm_floor", "ours_epoch", "HandStep", "hand_epoch", "same_step", "runs"]

HIDDEN = COURSE_HIDDEN_SIZES
BATCH = COURSE_RECIPE.batch_size

PARTS = ("batch gather", "forward GEMMs", "ReLU", "loss and bookkeeping",
         "weight-gradient GEMMs", "input-gradient GEMMs", "ReLU backward",
         "bias gradients", "SGD update")
GEMMS = ("forward GEMMs", "weight-gradient GEMMs", "input-gradient GEMMs")


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


def median(values):
    """The median of a list of timings."""
    return statistics.median(values)


def train_indices(seed=COURSE_SEED, num_val=COURSE_NUM_VAL, n=60000):
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
    root = prepare_fashion_mnist(root)
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


def sgd(net, recipe=COURSE_RECIPE):
    """The course's optimizer for ``net``."""
    return torch.optim.SGD(net.parameters(), lr=recipe.lr, momentum=recipe.momentum)


def network(seed, hidden=HIDDEN, device="cpu"):
    """The course's ReLU network with ``hidden`` sizes, seeded, on ``device``."""
    return initial_network("relu", seed, hidden).to(device)


def layer_sizes(hidden=HIDDEN):
    return [COURSE_INPUT_SIZE, *hidden, COURSE_NUM_CLASSES]


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
    """One epoch of ``train_epoch`` over ``batches``: the path ``train_model``
    runs. Returns seconds."""
    loader = batches(data.train, batch_size, shuffle=True, drop_last=True,
                        generator=torch.Generator().manual_seed(seed))
    opt = sgd(net)
    return timed(lambda: train_epoch(net, loader, opt, device), device)[0]


class HandStep:
    """One SGD step of a ReLU ``BaseNetwork``, written out; adds seconds per part
    to ``self.clock``. Updates the network's parameters in place."""

    def __init__(self, net, device, lr=COURSE_RECIPE.lr,
                 momentum=COURSE_RECIPE.momentum):
        linears = [m for m in net.layers if isinstance(m, torch.nn.Linear)]
        if not all(isinstance(m, ReLU) for m in net.layers
                   if not isinstance(m, torch.nn.Linear)):
            raise ValueError("HandStep writes out ReLU networks only")
        self.weights = [m.weight.detach() for m in linears]  # (out, in) each
        self.biases = [m.bias.detach() for m in linears]  # (out,) each
        self.momenta = None
        self.lr, self.momentum, self.device = lr, momentum, device
        self.clock = dict.fromkeys(PARTS, 0.0)
        self.loss_sum = torch.zeros((), device=device)
        self.correct = torch.zeros((), dtype=torch.long, device=device)

    def __call__(self, X, y):
        clock, device, start = self.clock, self.device, time.perf_counter()

        def lap(part):
            nonlocal start
            sync(device)
            now = time.perf_counter()
            clock[part] += now - start
            start = now

        h = X.reshape(len(X), -1)  # (B, 784)
        inputs, last = [], len(self.weights) - 1
        for k, (W, b) in enumerate(zip(self.weights, self.biases)):
            inputs.append(h)
            h = torch.addmm(b, h, W.t())  # (B, out)
            lap("forward GEMMs")
            if k < last:
                h = torch.threshold(h, 0.0, 0.0)  # af.ReLU's formula
                lap("ReLU")
        log_p = F.log_softmax(h, dim=1)  # (B, 10)
        self.loss_sum += F.nll_loss(log_p, y) * len(y)
        self.correct += (h.argmax(dim=1) == y).sum()
        grad = log_p.exp()  # d(mean NLL)/d(logits) = (softmax - one-hot) / B
        grad[torch.arange(len(y), device=device), y] -= 1
        grad /= len(y)
        lap("loss and bookkeeping")
        grads = [None] * (2 * len(self.weights))
        for k in range(last, -1, -1):
            grads[2 * k] = torch.mm(grad.t(), inputs[k])  # (out, in)
            lap("weight-gradient GEMMs")
            grads[2 * k + 1] = grad.sum(0)  # (out,)
            lap("bias gradients")
            if k:
                grad = torch.mm(grad, self.weights[k])  # (B, in)
                lap("input-gradient GEMMs")
                grad = torch.ops.aten.threshold_backward(grad, inputs[k], 0.0)
                lap("ReLU backward")
        params = [t for pair in zip(self.weights, self.biases) for t in pair]
        if self.momenta is None:  # torch.optim.SGD's first step: buffer = gradient
            self.momenta = [g.clone() for g in grads]
        else:
            for buf, g in zip(self.momenta, grads):
                buf.mul_(self.momentum).add_(g)
        for p, buf in zip(params, self.momenta):
            p.add_(buf, alpha=-self.lr)
        lap("SGD update")


def hand_epoch(step, loader):
    """One epoch of ``step`` over ``loader``, fetching batches as "batch gather"."""
    batches = iter(loader)
    while True:
        start = time.perf_counter()
        try:
            X, y = next(batches)
        except StopIteration:
            return
        step.clock["batch gather"] += time.perf_counter() - start
        step(X, y)


def same_step(data, device, steps=2):
    """Largest weight difference after ``steps`` steps: hand-written vs train_epoch."""
    X, y = (t[:BATCH * steps].to(device) for t in data.train.tensors)
    steps = [(X[i:i + BATCH], y[i:i + BATCH]) for i in range(0, len(X), BATCH)]
    ours, hand = network(0, device=device), network(0, device=device)
    train_epoch(ours, steps, sgd(ours), device)
    hand_epoch(HandStep(hand, device), steps)
    return max((a - b).abs().max().item() for a, b in
               zip(ours.state_dict().values(), hand.state_dict().values()))


def runs(dataset, reps, device, batch_size=BATCH):
    """``reps`` repetitions, taking turns: ``train_epoch``, the hand-written epoch
    and the GEMM floor, over ``dataset`` from the same initial weights and batch order.

    Returns:
        ``{"train_epoch" | "hand-written" | "floor": [seconds per repetition]}`` and
        ``{part: [seconds per repetition]}`` of the hand-written epoch.
    """
    steps = len(dataset) // batch_size
    wall = {"train_epoch": [], "hand-written": [], "floor": []}
    parts = {p: [] for p in PARTS}
    for rep in range(reps):
        loaders = [batches(dataset, batch_size, shuffle=True, drop_last=True,
                              generator=torch.Generator().manual_seed(rep))
                   for _ in range(2)]
        ours = network(rep, device=device)
        wall["train_epoch"].append(timed(
            partial(train_epoch, ours, loaders[0], sgd(ours), device), device)[0])
        step = HandStep(network(rep, device=device), device)
        wall["hand-written"].append(timed(partial(hand_epoch, step, loaders[1]),
                                          device)[0])
        wall["floor"].append(gemm_floor(HIDDEN, batch_size, steps, device))
        for p in PARTS:
            parts[p].append(step.clock[p])
    return wall, parts
