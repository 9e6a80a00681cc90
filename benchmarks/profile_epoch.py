"""Where an actfns training epoch spends its time: torch.profiler's operator table.

    .venv/bin/python benchmarks/profile_epoch.py [--before] [--rows 20]

``--before`` profiles actfns as it was before the speed work (ReLU via torch.where,
batches via a DataLoader), for comparison.
"""

import argparse

import torch
from bench_train import WhereReLU
from common import af, header, sgd
from torch.profiler import ProfilerActivity, profile
from torch.utils.data import BatchSampler, DataLoader, RandomSampler


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--before", action="store_true")
    p.add_argument("--rows", type=int, default=20)
    p.add_argument("--device", default=None)
    args = p.parse_args()
    device = af.get_device(args.device)
    header("torch.profiler: one training epoch" + (" (before)" if args.before else ""),
           device)
    data = af.load_fashion_mnist()
    af.set_seed(0)
    net = af.BaseNetwork(WhereReLU() if args.before else af.ReLU()).to(device)
    g = torch.Generator().manual_seed(0)
    if args.before:
        sampler = BatchSampler(RandomSampler(data.train, generator=g), 256, True)
        loader = DataLoader(data.train, batch_size=None, sampler=sampler)
    else:
        loader = af.batches(data.train, 256, shuffle=True, drop_last=True, generator=g)
    opt = sgd(net)
    af.train_epoch(net, loader, opt, device)  # warm-up
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with profile(activities=activities) as prof:
        af.train_epoch(net, loader, opt, device)
    key = "self_cpu_time_total" if device.type == "cpu" else "self_device_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=args.rows))


if __name__ == "__main__":
    main()
