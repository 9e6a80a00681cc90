"""How close can an eager training step come to the GEMM floor?

A ReLU training step written out by hand, with neither autograd nor ``torch.optim``:
the same operations that ``af.train_epoch`` runs (``addmm`` with the bias, ReLU's
``threshold``, log-softmax and NLL, the backward GEMMs, ``threshold_backward``, the
bias sums, SGD with momentum as ``torch.optim.SGD`` computes it, the loss and
accuracy bookkeeping), timed part by part over one epoch. In each repetition it runs
``af.train_epoch``, the hand-written epoch and the GEMM floor (``gemm_floor``)
one after the other, from the same initial weights and batch order.

It first checks that two hand-written steps give the weights that two steps of
``af.train_epoch`` give (to rounding: the loss gradient is summed in another order).

The hand-written epoch has no autograd graph, no module calls and no optimizer
object, so what it spends above the floor is what the arithmetic itself costs in
eager PyTorch. On a GPU every part is synchronised before its clock stops, which
adds waiting that an unsynchronised epoch hides. The step, the epoch and the loop
of repetitions are ``actfns.speed``'s, which the book's appendix "Speed" also runs.

    .venv/bin/python benchmarks/bench_floor_gap.py [--reps 3]
"""

from common import af, header, load, median, parser, setup

from actfns.speed import GEMMS, PARTS, runs, same_step


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
