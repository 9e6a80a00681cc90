"""Scaling: epoch time vs batch size and depth; dead-neuron census vs dataset size.

For each batch size (64 ... 1024) and for the 4- and 10-hidden-layer ReLU networks,
it times one actfns epoch over the 50,000 training images and the GEMM floor of the
same steps (interleaved repetitions, medians), and prints their ratio. The census
table (time and memory vs N) comes from bench_dead_neurons.

    .venv/bin/python benchmarks/bench_scaling.py [--reps 3] [--no-memory]
"""

from bench_dead_neurons import memory
from common import (
    DEEP,
    HIDDEN,
    af,
    floor_flops,
    gemm_floor,
    header,
    load,
    median,
    network,
    ours_epoch,
    parser,
    setup,
)

BATCH_SIZES = (64, 128, 256, 512, 1024)


def table(title, cases, data, device, reps):
    """cases: {label: (hidden sizes, batch size)} -> prints a row per case."""
    times = {label: ([], []) for label in cases}
    for rep in range(reps):
        for label, (hidden, bs) in cases.items():
            ours, floor = times[label]
            ours.append(ours_epoch(network(rep, hidden, device), data, bs, rep,
                                   device))
            floor.append(gemm_floor(hidden, bs, len(data.train) // bs, device))
    print(f"\n{title}")
    print(f"{'case':>22} {'steps':>6} {'epoch s':>8} {'images/s':>9} {'floor s':>8} "
          f"{'GFLOP/s':>8} {'x floor':>8}")
    rows = []
    for label, (hidden, bs) in cases.items():
        steps = len(data.train) // bs
        ours, floor = median(times[label][0]), median(times[label][1])
        exact, _ = floor_flops(hidden, bs, steps)
        rows.append(dict(case=label, epoch_s=ours, floor_s=floor))
        print(f"{label:>22} {steps:>6} {ours:8.3f} {steps * bs / ours:9,.0f} "
              f"{floor:8.3f} {exact / floor / 1e9:8.1f} {ours / floor:8.2f}")
    return rows


def main():
    p = parser(__doc__, reps=3)
    p.add_argument("--no-memory", action="store_true",
                   help="skip the census-vs-dataset-size table (subprocesses)")
    args = p.parse_args()
    device = setup(args)
    header("scaling: batch size, depth, dataset size", device)
    data = af.load_fashion_mnist()
    table("epoch time vs batch size (4 hidden layers, 784-512-256-256-128-10)",
          {f"batch {bs}": (HIDDEN, bs) for bs in BATCH_SIZES}, data, device,
          args.reps)
    table("epoch time vs depth (batch 256)",
          {"4 hidden (512..128)": (HIDDEN, 256), "10 hidden (256x5,128x5)":
           (DEEP, 256)}, data, device, args.reps)
    if not args.no_memory:
        memory()
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()
