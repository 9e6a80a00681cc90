"""The trainer: SGD with momentum, early stopping on validation accuracy, and the best
epoch's weights kept. It trains the network it is given and returns a History; which
runs exist, where they are stored and when one is reused is ``runs``'s business.
"""

import time
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .course import COURSE_RECIPE, COURSE_SEED
from .data import batch_views, batches
from .env import device_of, get_device, progress_enabled

__all__ = ["train_epoch", "evaluate", "History", "fit"]


def train_epoch(net, loader, optimizer, device):
    """One pass over ``loader``; returns (mean loss, accuracy) over its batches."""
    net.train()
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    count = 0
    for X, y in loader:
        X, y = X.to(device, non_blocking=True), y.to(device, non_blocking=True)
        logits = net(X)  # (batch, classes)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += loss.detach() * len(y)
        correct += (logits.argmax(dim=-1) == y).sum()
        count += len(y)
    if count == 0:
        raise ValueError("the training set gave no batch (fewer images than one "
                         "batch, with the last incomplete batch dropped); use a "
                         "smaller batch_size or more images")
    return total_loss.item() / count, correct.item() / count


@torch.no_grad()
def evaluate(net, dataset, device=None, batch_size=4096):
    """Accuracy (fraction in [0, 1]) of ``net`` on a ``TensorDataset``.

    ``device``: where the batches go (default: the device of ``net``'s parameters).
    Raises ValueError for an empty dataset (an accuracy of nothing is undefined).
    """
    if len(dataset) == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    device = device_of(net) if device is None else device
    net.eval()
    correct = 0
    for X, y in batch_views(dataset, batch_size):
        correct += (net(X.to(device)).argmax(dim=-1).cpu() == y).sum().item()
    return correct / len(dataset)


@dataclass
class History:
    """What a training run did. Accuracies are fractions in [0, 1], times in seconds.

    ``best_epoch`` is 1-based; ``trained`` is False when a stored run was reused.
    ``fingerprint`` identifies the run (see ``RunSpec.fingerprint``); ``spec`` is the
    run's specification as a dict; ``sha256`` maps each stored file of the run to its
    SHA-256 (filled in when the run is stored); ``source`` says where a reused run
    came from (``"store"`` or a URL).
    """

    model_name: str
    train_loss: list = field(default_factory=list)
    train_acc: list = field(default_factory=list)
    val_acc: list = field(default_factory=list)
    epoch_time: list = field(default_factory=list)
    best_epoch: int = 0
    best_val_acc: float = 0.0
    test_acc: float = float("nan")
    wall_time: float = 0.0
    fingerprint: str = ""
    spec: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    sha256: dict = field(default_factory=dict)
    trained: bool = True
    source: str = ""

    @property
    def epochs(self):
        return len(self.val_acc)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        """A History from ``to_dict``'s output; TypeError if it is not one."""
        names = {f.name for f in fields(cls)}
        if not isinstance(d, dict) or "model_name" not in d or set(d) - names:
            raise TypeError(f"not a training history: {str(d)[:80]}")
        return cls(**d)


def _check_data(data, recipe):
    for split in ("train", "val", "test"):
        if len(getattr(data, split)) == 0:
            raise ValueError(f"the {split} set is empty: training needs images in "
                             "train, val and test")
    if len(data.train) < recipe.batch_size:
        raise ValueError(f"the training set has {len(data.train)} images, fewer than "
                         f"one batch of {recipe.batch_size} (the last incomplete "
                         "batch is dropped); use a smaller batch_size")


def fit(net, data, recipe=COURSE_RECIPE, seed=COURSE_SEED, device=None, progress=None,
        name="run"):
    """Train ``net`` in place on ``data.train``; keep the epoch best on ``data.val``.

    Args:
        net: the network, at its initial weights.
        data: ``FashionMNISTData`` (``train``, ``val`` and ``test`` TensorDatasets).
        recipe: a ``Recipe`` (default: the course's).
        seed: seed of the batch order (a generator of its own).
        progress: a tqdm bar per epoch (None: ``$ACTFNS_PROGRESS``).
        name: the bar's label and the History's ``model_name``.
    Returns:
        History, with ``net`` holding the best epoch's weights (tested on data.test).
    """
    _check_data(data, recipe)
    device = get_device(device)
    net.to(device)
    start = time.perf_counter()
    history = History(name)
    optimizer = torch.optim.SGD(net.parameters(), lr=recipe.lr,
                                momentum=recipe.momentum)
    generator = torch.Generator().manual_seed(seed)
    loader = batches(data.train, recipe.batch_size, shuffle=True, drop_last=True,
                     generator=generator)
    best_state = None
    bar = tqdm(range(recipe.max_epochs), desc=name,
               disable=not progress_enabled(progress), leave=False)
    for epoch in bar:
        t0 = time.perf_counter()
        loss, acc = train_epoch(net, loader, optimizer, device)
        val_acc = evaluate(net, data.val, device)
        history.train_loss.append(loss)
        history.train_acc.append(acc)
        history.val_acc.append(val_acc)
        history.epoch_time.append(time.perf_counter() - t0)
        if best_state is None or val_acc > history.best_val_acc:
            history.best_epoch, history.best_val_acc = epoch + 1, val_acc
            best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
        bar.set_postfix(val_acc=f"{val_acc:.4f}", best=history.best_epoch)
        if epoch + 1 - history.best_epoch >= recipe.patience:
            break
    bar.close()
    net.load_state_dict(best_state)
    history.test_acc = evaluate(net, data.test, device)
    history.wall_time = time.perf_counter() - start
    return history
