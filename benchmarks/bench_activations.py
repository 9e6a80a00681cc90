"""Activations: one training epoch per activation, with the written-out derivative
(``af.<Activation>``: ``value`` forward, ``derivative`` backward) against autograd
differentiating ``value``'s operations one by one (the "chain"), and against ReLU.

For each activation that writes a derivative, the two variants train the same
network from the same weights on the same batches, taking turns repetition after
repetition; a ReLU epoch runs in every repetition too. Both variants must give the
same weight gradients on a first batch (checked in float64 before timing).

    .venv/bin/python benchmarks/bench_activations.py [--reps 3] [--names tanh,elu]
"""

import torch
from common import HIDDEN, af, header, load, median, ours_epoch, parser, setup


def with_chain(net):
    """The same network, with each activation's backward left to autograd."""
    for module in net.modules():
        if isinstance(module, af.ActivationFunction):
            module.forward = module.value
    return net


def network(name, device, chain=False):
    af.set_seed(0)
    net = af.BaseNetwork(name, hidden_sizes=HIDDEN).to(device)
    return with_chain(net) if chain else net


def same_gradients(name):
    """Weight gradients of the two variants agree (float64, one random batch)."""
    x = torch.randn(64, 784, dtype=torch.float64, generator=torch.Generator()
                    .manual_seed(1))
    grads = []
    for chain in (False, True):
        net = network(name, "cpu", chain).double()
        net(x).logsumexp(dim=1).sum().backward()
        grads.append([p.grad for p in net.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def main():
    p = parser(__doc__, reps=3)
    p.add_argument("--names", default=None,
                   help="comma-separated registry names (default: all with a "
                        "written derivative)")
    args = p.parse_args()
    device = setup(args)
    header("activations: written derivative vs autograd chain, one epoch each",
           device)
    names = (args.names.split(",") if args.names else
             [n for n, c in af.ACTIVATIONS.items() if c.derivative is not None])
    for name in names:
        same_gradients(name)
    print("weight gradients of the two variants agree (float64) for: "
          + ", ".join(names))
    data = af.load_fashion_mnist()
    times = {"relu": []} | {(n, v): [] for n in names for v in ("chain", "written")}
    for rep in range(args.reps):
        times["relu"].append(ours_epoch(network("relu", device), data, 256, rep,
                                        device))
        for name in names:
            for variant in ("chain", "written"):
                net = network(name, device, chain=variant == "chain")
                times[name, variant].append(ours_epoch(net, data, 256, rep, device))
        print(f"rep {rep}: relu {times['relu'][-1]:.2f} s", flush=True)
    relu = median(times["relu"])
    print(f"\n{'activation':>10} {'chain s':>8} {'written s':>9} {'speed-up':>8} "
          f"{'written / relu':>14}")
    for name in names:
        chain, written = median(times[name, "chain"]), median(times[name, "written"])
        print(f"{name:>10} {chain:8.2f} {written:9.2f} {chain / written:8.2f} "
              f"{written / relu:14.2f}")
    print(f"{'relu':>10} {'':8} {relu:9.2f} {'':8} {1:14.2f}")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
