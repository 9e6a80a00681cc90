"""Training-epoch benchmark: the course's loop vs actfns vs the GEMM floor.

One epoch = the MLP 784-512-256-256-128-10 (ReLU) over the 50,000 training images,
batch 256 with drop_last (195 steps), SGD(lr 1e-2, momentum 0.9). In each repetition
it times, one after the other on the same machine:

- course: the course's loop, a DataLoader over torchvision's FashionMNIST with
  ToTensor + Normalize (one PIL image at a time), reimplemented in common.py;
- before: actfns as it was before the speed work (ReLU via torch.where, batches via
  a DataLoader over a BatchSampler), rebuilt here, for the before/after figure;
- actfns: ``af.train_epoch`` over ``af.batches``, the path ``af.train_model`` runs;
- floor: exactly the GEMMs of the same 195 steps (forward, weight gradients, input
  gradients of layers 2..5), same shapes, nothing else.

It then trains both the course's loop and actfns for a few epochs from the same
seeds and compares their test accuracies.

    .venv/bin/python benchmarks/bench_train.py [--reps 5] [--acc-epochs 3]
"""

import argparse

import torch
from common import (
    af,
    course_dataset,
    course_epoch,
    course_loader,
    floor_flops,
    gemm_floor,
    header,
    load,
    median,
    network,
    ours_epoch,
    sgd,
    timed,
)
from torch.utils.data import BatchSampler, DataLoader, RandomSampler


class WhereReLU(af.ActivationFunction):
    """actfns's ReLU before the speed work (same values and gradients)."""

    def forward(self, x):
        return torch.where(x <= 0, 0.0, x)


def before_epoch(seed, data, batch_size, device):
    af.set_seed(seed)
    net = af.BaseNetwork(WhereReLU()).to(device)
    sampler = RandomSampler(data.train, generator=torch.Generator().manual_seed(seed))
    loader = DataLoader(data.train, batch_size=None,
                        sampler=BatchSampler(sampler, batch_size, drop_last=True))
    opt = sgd(net)
    return timed(lambda: af.train_epoch(net, loader, opt, device), device)[0]


def speed(data, course_set, device, reps, batch_size=256):
    steps = len(data.train) // batch_size
    images = steps * batch_size
    times = {"course": [], "before": [], "actfns": [], "floor": []}
    print(f"\n{'rep':>4} {'course':>9} {'before':>9} {'actfns':>9} {'floor':>9}   (s)")
    for rep in range(reps):
        net = network(rep, device=device)
        loader = course_loader(course_set, batch_size, True, True,
                               torch.Generator().manual_seed(rep), device)
        times["course"].append(timed(lambda n=net, ld=loader: course_epoch(
            n, ld, sgd(n), device), device)[0])
        times["before"].append(before_epoch(rep, data, batch_size, device))
        times["actfns"].append(ours_epoch(network(rep, device=device), data,
                                          batch_size, rep, device))
        times["floor"].append(gemm_floor((512, 256, 256, 128), batch_size, steps,
                                         device))
        print(f"{rep:>4} " + " ".join(f"{v[-1]:9.3f}" for v in times.values()))
    m = {k: median(v) for k, v in times.items()}
    exact, six_p = floor_flops((512, 256, 256, 128), batch_size, steps)
    rate = exact / m["floor"]
    print(f"median {m['course']:8.3f} {m['before']:9.3f} {m['actfns']:9.3f} "
          f"{m['floor']:9.3f}")
    print(f"\nepoch ({images:,} images, {steps} steps of {batch_size}): "
          f"actfns {m['actfns']:.3f} s = {images / m['actfns']:,.0f} images/s; "
          f"course {m['course']:.3f} s = {images / m['course']:,.0f} images/s")
    print(f"speed-up over the course's loop:  {m['course'] / m['actfns']:5.2f}x "
          "(target >= 5x)")
    print(f"actfns / GEMM floor:              {m['actfns'] / m['floor']:5.2f}x "
          "(target <= 1.25x)")
    print(f"before / after (this change):     {m['before'] / m['actfns']:5.2f}x "
          f"({m['before']:.3f} s -> {m['actfns']:.3f} s)")
    print(f"floor: {exact / 1e9:.1f} GFLOP of required GEMMs in {m['floor']:.3f} s "
          f"= {rate / 1e9:.1f} GFLOP/s")
    print(f"for reference, '6 x params x images' = {six_p / 1e9:.1f} GFLOP, "
          f"{six_p / rate:.3f} s at that rate; actfns / it = "
          f"{m['actfns'] / (six_p / rate):.2f}x (it counts an input gradient for "
          "the first layer, which training never computes)")
    return m


def accuracy(data, course_set, device, epochs, seeds, batch_size=256):
    """Test accuracy after ``epochs`` epochs, course loop vs actfns, same seeds."""
    print(f"\ntest accuracy after {epochs} epochs (same initial weights per seed; "
          "the two loops shuffle differently)")
    print(f"{'seed':>4} {'course':>8} {'actfns':>8}")
    acc = {"course": [], "actfns": []}
    for seed in range(seeds):
        net = network(seed, device=device)
        opt = sgd(net)
        loader = course_loader(course_set, batch_size, True, True,
                               torch.Generator().manual_seed(seed), device)
        for _ in range(epochs):
            course_epoch(net, loader, opt, device)
        acc["course"].append(af.evaluate(net, data.test))
        net = network(seed, device=device)
        opt = sgd(net)
        loader = af.batches(data.train, batch_size, shuffle=True, drop_last=True,
                            generator=torch.Generator().manual_seed(seed))
        for _ in range(epochs):
            af.train_epoch(net, loader, opt, device)
        acc["actfns"].append(af.evaluate(net, data.test))
        print(f"{seed:>4} {acc['course'][-1]:8.2%} {acc['actfns'][-1]:8.2%}")
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in acc.items()}
    for k, v in t.items():
        sd = v.std().item() if len(v) > 1 else float("nan")
        print(f"{k:>6}: mean {v.mean().item():.2%}, sd over seeds {sd:.2%}")
    diff = (t["actfns"].mean() - t["course"].mean()).item()
    print(f"difference of means {diff:+.2%}; seed-to-seed sd is the noise scale")
    return acc


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--acc-epochs", type=int, default=3)
    p.add_argument("--acc-seeds", type=int, default=3)
    p.add_argument("--device", default=None, help="default: CUDA if present, else CPU")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = af.get_device(args.device)
    header("training epoch: course loop vs actfns vs GEMM floor", device)
    data = af.load_fashion_mnist()
    course_set = course_dataset(data)
    speed(data, course_set, device, args.reps)
    if args.acc_epochs > 0 and args.acc_seeds > 0:
        accuracy(data, course_set, device, args.acc_epochs, args.acc_seeds)
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
