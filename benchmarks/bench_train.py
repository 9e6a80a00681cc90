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

    .venv/bin/python benchmarks/bench_train.py [--reps 5] [--acc-seeds 5]
"""

import torch
from common import (
    HIDDEN,
    af,
    course_dataset,
    course_epoch,
    course_loader,
    floor_flops,
    gemm_floor,
    header,
    load,
    measure,
    median,
    network,
    parser,
    setup,
    sgd,
)
from torch.utils.data import BatchSampler, DataLoader, RandomSampler


class WhereReLU(af.ActivationFunction):
    """actfns's ReLU before the speed work (same values and gradients)."""

    def forward(self, x):
        return torch.where(x <= 0, 0.0, x)


def epoch_runs(rep, data, course_set, batch_size, device):
    """{name: callable running one epoch}, set up (network, loader, optimizer) for
    repetition ``rep``; only the call is timed."""
    g = {k: torch.Generator().manual_seed(rep) for k in ("course", "before", "actfns")}
    course_net, before_net = network(rep, device=device), network(rep, device=device)
    before_net.layers = torch.nn.Sequential(*(
        WhereReLU() if isinstance(m, af.ReLU) else m for m in before_net.layers))
    course = course_loader(course_set, batch_size, True, True, g["course"], device)
    before = DataLoader(data.train, batch_size=None, sampler=BatchSampler(
        RandomSampler(data.train, generator=g["before"]), batch_size, drop_last=True))
    ours_net = network(rep, device=device)
    ours = af.batches(data.train, batch_size, shuffle=True, drop_last=True,
                      generator=g["actfns"])
    opts = [sgd(n) for n in (course_net, before_net, ours_net)]
    steps = len(data.train) // batch_size
    return {
        "course": lambda: course_epoch(course_net, course, opts[0], device),
        "before": lambda: af.train_epoch(before_net, before, opts[1], device),
        "actfns": lambda: af.train_epoch(ours_net, ours, opts[2], device),
        "floor": lambda: gemm_floor(HIDDEN, batch_size, steps, device),
    }


def speed(data, course_set, device, reps, batch_size=256):
    steps = len(data.train) // batch_size
    images = steps * batch_size
    wall = {k: [] for k in ("course", "before", "actfns", "floor")}
    cpu = {k: [] for k in wall}
    print(f"\n{'rep':>4} " + " ".join(f"{k:>9}" for k in wall) + "   wall s "
          "(CPU s of this process)")
    for rep in range(reps):
        for name, run in epoch_runs(rep, data, course_set, batch_size, device).items():
            w, c = measure(run, device)
            wall[name].append(w)
            cpu[name].append(c)
        print(f"{rep:>4} " + " ".join(f"{wall[k][-1]:9.3f}" for k in wall) + "   ("
              + " ".join(f"{cpu[k][-1]:.2f}" for k in wall) + ")")
    m = {k: median(v) for k, v in wall.items()}
    mc = {k: median(v) for k, v in cpu.items()}
    exact, six_p = floor_flops(HIDDEN, batch_size, steps)
    rate = exact / m["floor"]
    print("median " + " ".join(f"{m[k]:9.3f}" for k in m))
    print(f"\nepoch ({images:,} images, {steps} steps of {batch_size}): "
          f"actfns {m['actfns']:.3f} s = {images / m['actfns']:,.0f} images/s; "
          f"course {m['course']:.3f} s = {images / m['course']:,.0f} images/s")
    print(f"{'ratio (medians)':32} {'wall':>6} {'CPU':>6}")
    for label, num, den, target in (
            ("speed-up over the course's loop", "course", "actfns", ">= 5"),
            ("actfns / GEMM floor", "actfns", "floor", "<= 1.25"),
            ("before / after this change", "before", "actfns", "")):
        print(f"{label:32} {m[num] / m[den]:6.2f} {mc[num] / mc[den]:6.2f}"
              + (f"   target {target}" if target else ""))
    print(f"floor: {exact / 1e9:.1f} GFLOP of required GEMMs in {m['floor']:.3f} s "
          f"= {rate / 1e9:.1f} GFLOP/s")
    print(f"for reference, '6 x params x images' = {six_p / 1e9:.1f} GFLOP, "
          f"{six_p / rate:.3f} s at that rate; actfns / it = "
          f"{m['actfns'] / (six_p / rate):.2f}x (it counts an input gradient for "
          "the first layer, which training never computes)")
    return m


def same_order(data, course_set, device, batch_size=256, seed=0):
    """Fed actfns's batch order, does the course's loop give the same weights?"""
    def order():
        return torch.Generator().manual_seed(seed)

    course_net, ours_net = network(seed, device=device), network(seed, device=device)
    loader = DataLoader(course_set, batch_sampler=BatchSampler(
        RandomSampler(course_set, generator=order()), batch_size, drop_last=True))
    course_epoch(course_net, loader, sgd(course_net), device)
    ours = af.batches(data.train, batch_size, shuffle=True, drop_last=True,
                      generator=order())
    af.train_epoch(ours_net, ours, sgd(ours_net), device)
    same = all(torch.equal(a, b) for a, b in zip(course_net.state_dict().values(),
                                                 ours_net.state_dict().values()))
    print(f"\nsame batch order, one epoch: the two loops' weights are "
          f"{'bit-identical' if same else 'DIFFERENT'}")
    return same


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
    if seeds < 2:
        print(f"difference {diff:+.2%} (a standard error needs --acc-seeds 2 or more)")
        return acc
    se = (t["actfns"].var() / seeds + t["course"].var() / seeds).sqrt().item()
    print(f"difference of means {diff:+.2%} (standard error {se:.2%}, "
          f"{abs(diff) / se:.1f} SE)")
    return acc


def main():
    p = parser(__doc__, reps=5)
    p.add_argument("--acc-epochs", type=int, default=3)
    p.add_argument("--acc-seeds", type=int, default=5)
    args = p.parse_args()
    device = setup(args)
    header("training epoch: course loop vs actfns vs GEMM floor", device)
    data = af.load_fashion_mnist()
    course_set = course_dataset(data)
    speed(data, course_set, device, args.reps)
    same_order(data, course_set, device)
    if args.acc_epochs > 0 and args.acc_seeds > 0:
        accuracy(data, course_set, device, args.acc_epochs, args.acc_seeds)
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
