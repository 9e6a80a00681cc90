"""Activations: one training epoch per activation, three ways:

- before: the package's first formulas (``where`` and comparisons to get autograd's
  derivative right at 0, every derivative left to autograd), rebuilt here;
- chain: today's ``value`` formulas, differentiated by autograd operation by operation;
- actfns: ``af.<Activation>`` as it is: ``value`` forward and, where the class writes
  one, ``derivative`` backward.

The variants train the same network from the same weights on the same batches, taking
turns repetition after repetition, and a ReLU epoch runs in every repetition too. All
three must give the same weight gradients on a first batch (checked in float64).

    .venv/bin/python benchmarks/bench_activations.py [--reps 3] [--names tanh,elu]
"""

import torch
from common import HIDDEN, af, header, load, median, ours_epoch, parser, setup

VARIANTS = ("before", "chain", "actfns")


def _neg_abs(x):  # the first version's -|x|, with derivative -1 at 0
    return torch.where(x >= 0, -x, x)


def _nonpositive(x):  # min(x, 0) with derivative 1 at 0
    return torch.where(x > 0, 0.0, x)


def _sigmoid(x):
    e = torch.exp(_neg_abs(x))
    return torch.where(x >= 0, 1 / (1 + e), e / (1 + e))


BEFORE = {  # name -> forward(module, x): the package's first formulas
    "sigmoid": lambda m, x: _sigmoid(x),
    "tanh": lambda m, x: (lambda t: torch.where(x >= 0, t, -t))(
        (lambda u: -u / (2 + u))(torch.expm1(2 * _neg_abs(x)))),
    "leakyrelu": lambda m, x: torch.where(x > 0, x, m.config["alpha"] * x),
    "elu": lambda m, x: torch.where(
        x > 0, x, m.config["alpha"] * torch.expm1(_nonpositive(x))),
    "swish": lambda m, x: x * _sigmoid(m.config["beta"] * x),
    "selu": lambda m, x: m.SCALE * torch.where(
        x > 0, x, m.ALPHA * torch.expm1(_nonpositive(x))),
    "softplus": lambda m, x: torch.where(x >= 0, x, 0.0) + torch.log1p(
        torch.exp(_neg_abs(m.config["beta"] * x))) / m.config["beta"],
}


def network(name, device, variant="actfns"):
    """The seed-0 network with ``name``'s activation, computed the ``variant`` way."""
    af.set_seed(0)
    net = af.BaseNetwork(name, hidden_sizes=HIDDEN).to(device)
    for module in net.modules():
        if isinstance(module, af.ActivationFunction) and variant != "actfns":
            module.forward = (module.value if variant == "chain" else
                              lambda x, m=module: BEFORE[name](m, x))
    return net


def same_gradients(name):
    """Weight gradients of the variants agree (float64, one random batch)."""
    x = torch.randn(64, 784, dtype=torch.float64, generator=torch.Generator()
                    .manual_seed(1))
    grads = []
    for variant in VARIANTS:
        net = network(name, "cpu", variant).double()
        net(x).logsumexp(dim=1).sum().backward()
        grads.append([p.grad for p in net.parameters()])
    for other in grads[1:]:
        for a, b in zip(grads[0], other):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def main():
    p = parser(__doc__, reps=3)
    p.add_argument("--names", default=None,
                   help="comma-separated registry names (default: all with a "
                        "written derivative)")
    args = p.parse_args()
    device = setup(args)
    header("activations: before vs chain vs actfns, one epoch each", device)
    names = args.names.split(",") if args.names else list(BEFORE)
    for name in names:
        same_gradients(name)
    print("weight gradients of the three variants agree (float64) for: "
          + ", ".join(names))
    data = af.load_fashion_mnist()
    times = {"relu": []} | {(n, v): [] for n in names for v in VARIANTS}
    for rep in range(args.reps):
        times["relu"].append(ours_epoch(network("relu", device), data, 256, rep,
                                        device))
        for name in names:
            for variant in VARIANTS:
                net = network(name, device, variant)
                times[name, variant].append(ours_epoch(net, data, 256, rep, device))
        print(f"rep {rep}: relu {times['relu'][-1]:.2f} s", flush=True)
    relu = median(times["relu"])
    print(f"\nepoch s (median of {args.reps}); derivative: written by the class or "
          "autograd's chain")
    print(f"{'activation':>10} {'derivative':>10} {'before':>7} {'chain':>7} "
          f"{'actfns':>7} {'before/actfns':>13} {'actfns/relu':>11}")
    for name in names:
        m = {v: median(times[name, v]) for v in VARIANTS}
        own = "written" if af.ACTIVATIONS[name].derivative is not None else "chain"
        print(f"{name:>10} {own:>10} {m['before']:7.2f} {m['chain']:7.2f} "
              f"{m['actfns']:7.2f} {m['before'] / m['actfns']:13.2f} "
              f"{m['actfns'] / relu:11.2f}")
    print(f"{'relu':>10} {'':>10} {'':7} {'':7} {relu:7.2f} {'':13} {1:11.2f}")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
