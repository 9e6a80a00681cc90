"""Does ``torch.compile`` pay back its compile time in this book?

Times, for the ReLU network: an eager epoch, the first compiled epoch (which
includes compiling) and a later compiled epoch; the break-even point is the number
of epochs after which compiling has saved more than it cost. Every activation and
every architecture is compiled anew, so compare it with the epochs one network trains
in the book (up to 50, typically 15 to 30 with early stopping).

    .venv/bin/python benchmarks/bench_compile.py
"""

import argparse

import torch
from common import af, header, load, network, ours_epoch


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default=None, help="default: CUDA if present, else CPU")
    p.add_argument("--epochs", type=int, default=3, help="compiled epochs to time")
    args = p.parse_args()
    device = af.get_device(args.device)
    header("torch.compile: compile time vs time saved per epoch", device)
    data = af.load_fashion_mnist()
    eager = [ours_epoch(network(0, device=device), data, 256, 0, device)
             for _ in range(2)]
    net = network(0, device=device)
    compiled = torch.compile(net)
    t = [ours_epoch(compiled, data, 256, 0, device) for _ in range(args.epochs)]
    eager_s, steady = min(eager), min(t[1:])
    print(f"eager epoch {eager_s:.3f} s; compiled: first epoch {t[0]:.3f} s "
          f"(compiling included), later {steady:.3f} s")
    saved = eager_s - steady
    if saved <= 0:
        print("compiled epochs are not faster: compiling never pays back here")
    else:
        print(f"saves {saved:.3f} s per epoch; pays back after "
              f"{(t[0] - steady) / saved:.0f} epochs of one network")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
