"""How close can an eager training step come to the GEMM floor?

A ReLU training step written out by hand, with neither autograd nor ``torch.optim``:
the same operations that ``af.train_epoch`` runs (``addmm`` with the bias, ReLU's
``threshold``, log-softmax and NLL, the backward GEMMs, ``threshold_backward``, the
bias sums, SGD with momentum as ``torch.optim.SGD`` computes it, the loss and
accuracy bookkeeping), timed part by part over one epoch. In each repetition it runs
``af.train_epoch``, the hand-written epoch and the GEMM floor (``common.gemm_floor``)
one after the other, from the same initial weights and batch order.

It first checks that two hand-written steps give the weights that two steps of
``af.train_epoch`` give (to rounding: the loss gradient is summed in another order).

The hand-written epoch has no autograd graph, no module calls and no optimizer
object, so what it spends above the floor is what the arithmetic itself costs in
eager PyTorch. On a GPU every part is synchronised before its clock stops, which
adds waiting that an unsynchronised epoch hides.

    .venv/bin/python benchmarks/bench_floor_gap.py [--reps 3]
"""

import time
from functools import partial

import torch
import torch.nn.functional as F
from common import (
    HIDDEN,
    af,
    gemm_floor,
    header,
    load,
    median,
    network,
    parser,
    setup,
    sgd,
    sync,
    timed,
)

PARTS = ("batch gather", "forward GEMMs", "ReLU", "loss and bookkeeping",
         "weight-gradient GEMMs", "input-gradient GEMMs", "ReLU backward",
         "bias gradients", "SGD update")
GEMMS = ("forward GEMMs", "weight-gradient GEMMs", "input-gradient GEMMs")


class HandStep:
    """One SGD step of a ReLU ``BaseNetwork``, written out; adds seconds per part
    to ``self.clock``. Updates the network's parameters in place."""

    def __init__(self, net, device, lr=1e-2, momentum=0.9):
        linears = [m for m in net.layers if isinstance(m, torch.nn.Linear)]
        if not all(isinstance(m, af.ReLU) for m in net.layers
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
    X, y = (t[:256 * steps].to(device) for t in data.train.tensors)
    batches = [(X[i:i + 256], y[i:i + 256]) for i in range(0, len(X), 256)]
    ours, hand = network(0, device=device), network(0, device=device)
    af.train_epoch(ours, batches, sgd(ours), device)
    hand_epoch(HandStep(hand, device), batches)
    return max((a - b).abs().max().item() for a, b in
               zip(ours.state_dict().values(), hand.state_dict().values()))


def runs(dataset, reps, device, batch_size=256):
    """``reps`` repetitions, taking turns: ``af.train_epoch``, the hand-written epoch
    and the GEMM floor, over ``dataset`` from the same initial weights and batch order.

    Returns:
        ``{"train_epoch" | "hand-written" | "floor": [seconds per repetition]}`` and
        ``{part: [seconds per repetition]}`` of the hand-written epoch.
    """
    steps = len(dataset) // batch_size
    wall = {"train_epoch": [], "hand-written": [], "floor": []}
    parts = {p: [] for p in PARTS}
    for rep in range(reps):
        loaders = [af.batches(dataset, batch_size, shuffle=True, drop_last=True,
                              generator=torch.Generator().manual_seed(rep))
                   for _ in range(2)]
        ours = network(rep, device=device)
        wall["train_epoch"].append(timed(
            partial(af.train_epoch, ours, loaders[0], sgd(ours), device), device)[0])
        step = HandStep(network(rep, device=device), device)
        wall["hand-written"].append(timed(partial(hand_epoch, step, loaders[1]),
                                          device)[0])
        wall["floor"].append(gemm_floor(HIDDEN, batch_size, steps, device))
        for p in PARTS:
            parts[p].append(step.clock[p])
    return wall, parts


def main():
    args = parser(__doc__, reps=3).parse_args()
    device = setup(args)
    header("a hand-written training step vs af.train_epoch vs the GEMM floor", device)
    data = af.load_fashion_mnist()
    gap = same_step(data, device)
    print(f"two steps, hand-written vs af.train_epoch: largest weight difference "
          f"{gap:.1e}")
    if gap > 1e-5:
        raise SystemExit("the hand-written step does not compute the same update")
    wall, parts = runs(data.train, args.reps, device)
    print(f"\n{'rep':>4} " + " ".join(f"{k:>12}" for k in wall) + "   wall s")
    for rep in range(args.reps):
        print(f"{rep:>4} " + " ".join(f"{v[rep]:12.3f}" for v in wall.values()))
    m = {k: median(v) for k, v in wall.items()}
    floor = m["floor"]
    print("median " + " ".join(f"{v:12.3f}" for v in m.values()))
    print(f"\nhand-written epoch by part (medians over {args.reps} repetitions)")
    print(f"{'part':24} {'ms':>7} {'x floor':>8}")
    for p in PARTS:
        print(f"{p:24} {1000 * median(parts[p]):7.0f} {median(parts[p]) / floor:8.3f}")
    in_context = sum(median(parts[p]) for p in GEMMS)
    rest = sum(median(parts[p]) for p in PARTS if p not in GEMMS)
    print(f"\nGEMMs inside the epoch / isolated floor   {in_context / floor:.2f}")
    print(f"everything else / floor                   {rest / floor:.2f}")
    print(f"hand-written epoch / floor                {m['hand-written'] / floor:.2f}"
          "   (issue target for actfns: <= 1.25)")
    print(f"af.train_epoch / floor                    {m['train_epoch'] / floor:.2f}")
    print(f"af.train_epoch / hand-written epoch       "
          f"{m['train_epoch'] / m['hand-written']:.2f}   (autograd, modules, "
          "torch.optim)")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
