"""Training with the course's recipe: SGD + momentum, early stopping, best checkpoint.

``train_model`` reuses a saved network only when its stored fingerprint equals the
fingerprint of the run it is asked for (initial weights, architecture, recipe, data and
the code of the training path, comments and docstrings left out), so a changed setting
or changed code retrains. While it trains, it holds a lock per run, so two processes
asking for the same run train it once.
"""

import ast
import contextlib
import hashlib
import json
import os
import random
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from filelock import FileLock, Timeout
from tqdm.auto import tqdm

from . import __version__
from .checkpoints import (
    CheckpointError,
    atomic_write,
    load_model,
    read_json,
    save_model,
)
from .data import batch_views, batches
from .paths import checkpoint_dir

__all__ = ["set_seed", "get_device", "train_epoch", "evaluate", "History",
           "run_fingerprint", "train_model", "train_or_load"]

_CODE_FILES = ("activations.py", "model.py", "data.py", "train.py", "checkpoints.py")


def set_seed(seed):
    """Seed Python's ``random``, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def get_device(device=None):
    """``device`` if given, else ``$ACTFNS_DEVICE``, else CUDA if present, else CPU."""
    device = device or os.environ.get("ACTFNS_DEVICE") or None  # "" counts as unset
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


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
    return total_loss.item() / count, correct.item() / count


@torch.no_grad()
def evaluate(net, dataset, device=None, batch_size=4096):
    """Accuracy (fraction in [0, 1]) of ``net`` on a ``TensorDataset``.

    ``device``: where the batches go (default: the device of ``net``'s parameters).
    """
    if device is None:
        param = next(net.parameters(), None)
        device = param.device if param is not None else get_device()
    net.eval()
    correct = 0
    for X, y in batch_views(dataset, batch_size):
        correct += (net(X.to(device)).argmax(dim=-1).cpu() == y).sum().item()
    return correct / len(dataset)


@dataclass
class History:
    """What a training run did. Accuracies are fractions in [0, 1], times in seconds.

    ``best_epoch`` is 1-based; ``trained`` is False when a checkpoint was reused.
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
    trained: bool = True

    @property
    def epochs(self):
        return len(self.val_acc)

    def to_dict(self):
        return asdict(self)

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


def _code_hash():
    """SHA-256 of the package version and the code of the training path."""
    h = hashlib.sha256(__version__.encode())
    for name in _CODE_FILES:
        h.update(_code_digest((Path(__file__).parent / name).read_bytes()).encode())
    return h.hexdigest()


def _code_digest(source):
    """SHA-256 of a module's syntax tree without its docstrings: an edit to a comment,
    a docstring or the layout keeps the checkpoints, any change to the code does not.
    (The tree's format can change with the Python version, which then retrains.)"""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef,
                              ast.AsyncFunctionDef))
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def run_fingerprint(net, data_fingerprint, recipe):
    """SHA-256 of everything that decides a run's result.

    Args:
        net: the network *before* training (its config and initial weights).
        data_fingerprint: ``FashionMNISTData.fingerprint``.
        recipe: dict of the training hyper-parameters (and the shuffle seed).
    """
    h = hashlib.sha256(json.dumps([net.config, data_fingerprint, recipe],
                                  sort_keys=True).encode())
    for name, tensor in net.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    h.update(_code_hash().encode())
    return h.hexdigest()


def _history_file(model_path, model_name):
    return checkpoint_dir(model_path) / f"{model_name}.history.json"


def _try_reuse(net, model_path, model_name, fingerprint, device):
    """The stored History if a finished run with this fingerprint is on disk."""
    path = _history_file(model_path, model_name)
    if not path.is_file():
        return None
    try:
        history = History.from_dict(read_json(path, "training history"))
    except (CheckpointError, TypeError):
        return None  # unreadable or from another version: retrain
    if history.fingerprint != fingerprint:
        return None
    initial = {k: v.detach().clone() for k, v in net.state_dict().items()}
    try:
        load_model(model_path, model_name, net=net, map_location=device)
    except CheckpointError as err:
        net.load_state_dict(initial)  # a damaged checkpoint is trained again
        warnings.warn(f"{err}\nTraining {model_name} again.", stacklevel=3)
        return None
    history.trained = False
    return history


def train_model(net, model_name, data, *, lr=1e-2, momentum=0.9, batch_size=256,
                max_epochs=50, patience=7, seed=42, device=None, model_path=None,
                overwrite=False, progress=None):
    """Train ``net`` on ``data.train``; keep the best on ``data.val``; test it.

    Recipe defaults are the course's: SGD(lr 1e-2, momentum 0.9), batch 256 with
    drop_last, at most 50 epochs, stop when validation accuracy has not improved for
    ``patience`` epochs. The best network is saved as ``model_name`` in ``model_path``
    (with ``NAME.history.json``) and loaded into ``net``; a later call with the same
    fingerprint loads it instead of training (``overwrite=True`` forces training).

    Args:
        net: freshly initialised network (its initial weights are fingerprinted).
        data: ``FashionMNISTData`` (``train``/``val``/``test``, ``fingerprint``).
        seed: seed of the shuffle order (its own generator).
        progress: tqdm bar per epoch; ``None`` shows it unless ``$ACTFNS_PROGRESS=0``.
    Returns:
        History (accuracies as fractions).
    """
    device = get_device(device)
    recipe = dict(lr=lr, momentum=momentum, batch_size=batch_size,
                  max_epochs=max_epochs, patience=patience, seed=seed)
    fingerprint = run_fingerprint(net, data.fingerprint, recipe)
    net.to(device)
    if progress is None:
        progress = os.environ.get("ACTFNS_PROGRESS", "1") != "0"
    if not overwrite:
        history = _try_reuse(net, model_path, model_name, fingerprint, device)
        if history is not None:
            return history
    with _training_lock(model_path, model_name, progress):
        if not overwrite:  # another process may have trained it while we waited
            history = _try_reuse(net, model_path, model_name, fingerprint, device)
            if history is not None:
                return history
        history = _fit(net, model_name, data, recipe, fingerprint, device, progress)
        save_model(net, model_path, model_name)
        text = json.dumps(history.to_dict(), indent=1).encode()
        atomic_write(_history_file(model_path, model_name), lambda f: f.write(text))
    return history


@contextlib.contextmanager
def _training_lock(model_path, model_name, progress):
    """Hold ``.NAME.lock`` in the checkpoint folder while NAME is trained.

    Two processes asked for the same run (two chapters executed side by side, two
    notebooks) then train it once: the second waits and loads the first one's result.
    The operating system releases the lock of a process that dies.
    """
    folder = checkpoint_dir(model_path)
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(folder / f".{model_name}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if progress:
            print(f"{model_name}: another process is training it; waiting for it",
                  flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _fit(net, model_name, data, recipe, fingerprint, device, progress):
    """The training loop of :func:`train_model`; returns the History (best loaded)."""
    start = time.perf_counter()
    history = History(model_name, fingerprint=fingerprint)
    optimizer = torch.optim.SGD(net.parameters(), lr=recipe["lr"],
                                momentum=recipe["momentum"])
    generator = torch.Generator().manual_seed(recipe["seed"])
    loader = batches(data.train, recipe["batch_size"], shuffle=True, drop_last=True,
                     generator=generator)
    best_state = None
    bar = tqdm(range(recipe["max_epochs"]), desc=model_name, disable=not progress,
               leave=False)
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
        if epoch + 1 - history.best_epoch >= recipe["patience"]:
            break
    bar.close()
    net.load_state_dict(best_state)
    history.test_acc = evaluate(net, data.test, device)
    history.wall_time = time.perf_counter() - start
    return history


def train_or_load(act_fn, data, *, seed=42, hidden_sizes=(512, 256, 256, 128),
                  model_name=None, **train_kwargs):
    """Seed, build a ``BaseNetwork``, and ``train_model`` it (or load its checkpoint).

    The same ``seed`` initialises the weights and orders the batches, so every
    activation starts from the same random state, as in the course. The checkpoint is
    named ``FashionMNIST_<activation>`` for the course's own run (seed 42, default
    network and recipe); any other run gets its fingerprint in the name, so runs
    with different settings never overwrite each other.

    Args:
        act_fn: activation instance, registry name or config.
        train_kwargs: passed to :func:`train_model` (``max_epochs``, ``lr``, ...).
    Returns:
        ``(net, history)``: the best network (on its device) and its History.
    """
    from .model import BaseNetwork, make_activation

    act = make_activation(act_fn)
    set_seed(seed)
    net = BaseNetwork(act, hidden_sizes=hidden_sizes)
    if model_name is None:
        model_name = f"FashionMNIST_{act.name.lower()}"
        default_act = type(act)().config == act.config
        custom = {k: v for k, v in train_kwargs.items()
                  if k not in ("device", "model_path", "progress", "overwrite")}
        if (seed != 42 or tuple(hidden_sizes) != (512, 256, 256, 128) or custom
                or not default_act):
            recipe = dict(seed=seed, **custom)
            model_name += "_" + run_fingerprint(net, data.fingerprint, recipe)[:10]
    history = train_model(net, model_name, data, seed=seed, **train_kwargs)
    return net, history
