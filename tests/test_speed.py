"""actfns.speed: the hand-written training step computes the update
``af.train_epoch`` computes (otherwise its timings would describe other work); the
floor's arithmetic."""

from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import TensorDataset

import actfns as af
import actfns.speed as bench_floor_gap

CPU = torch.device("cpu")


def fake_data(n=768):
    g = torch.Generator().manual_seed(0)
    images = torch.rand(n, 1, 28, 28, generator=g) * 2 - 1
    labels = torch.randint(0, 10, (n,), generator=g)
    return SimpleNamespace(train=TensorDataset(images, labels))


def test_hand_written_steps_match_train_epoch():
    assert bench_floor_gap.same_step(fake_data(), CPU, steps=3) < 1e-6


def test_hand_written_step_changes_the_weights_as_sgd_does():
    """Not a no-op: the parameters move, and every part of the clock ran."""
    net = af.BaseNetwork("relu")
    before = [p.detach().clone() for p in net.parameters()]
    step = bench_floor_gap.HandStep(net, CPU)
    bench_floor_gap.hand_epoch(step, af.batches(fake_data().train, 256))
    assert all(not torch.equal(a, p) for a, p in zip(before, net.parameters()))
    assert all(t > 0 for t in step.clock.values())
    assert step.correct.item() <= 768


def test_other_activations_are_refused():
    with pytest.raises(ValueError, match="ReLU networks only"):
        bench_floor_gap.HandStep(af.BaseNetwork("tanh"), CPU)


def test_floor_flops_counts_three_gemms_per_layer_but_the_first():
    exact, six_p = bench_floor_gap.floor_flops((4,), batch_size=2, steps=1)
    # layers 784 -> 4 (forward and weight gradient) and 4 -> 10 (all three)
    assert exact == 2 * 2 * 784 * 4 * 2 + 2 * 2 * 4 * 10 * 3
    assert six_p == 6 * (784 * 4 + 4 + 4 * 10 + 10) * 2
