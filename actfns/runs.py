"""Training runs: what a run is (``RunSpec``), and training it once.

A run is an activation, a seed, the hidden sizes, an initialisation and a recipe.
Its *name* says what was asked for (``FashionMNIST_relu`` for the course's own run,
``FashionMNIST_relu_<digest>`` for any other); its *fingerprint* says what the result
depends on: the specification, the initial weights, the data, the training code and
the torch release. A stored run is reused only when its fingerprint matches; a run
that is not in the store is fetched from ``$ACTFNS_PRETRAINED_URL`` when a published
copy has the same fingerprint, and trained otherwise.
"""

import ast
import hashlib
import json
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .activations import make_activation, registry_name
from .checkpoints import CheckpointError
from .course import (
    COURSE_HIDDEN_SIZES,
    COURSE_INPUT_SIZE,
    COURSE_NUM_CLASSES,
    COURSE_RECIPE,
    COURSE_SEED,
    Recipe,
)
from .env import get_device, progress_enabled
from .initialisation import INIT_SCHEMES, initial_network
from .pretrained import fetch_run
from .store import RunStore
from .train import fit
from .version import __version__

__all__ = ["RunSpec", "RunCost", "train_run", "train_or_load",
           "train_with_init", "train_model", "run_cost", "code_hash", "torch_release"]

# The modules whose code decides a trained network's weights.
CODE_FILES = ("activations.py", "model.py", "data.py", "train.py")
# Why a stored run is not reused (anything else is an error to report).
RETRAIN_KINDS = ("missing", "stale", "damaged")
_REASONS = {"missing": "not in the store",
            "stale": "the stored run is from other code, data or torch",
            "damaged": "the stored files are damaged"}


def torch_release():
    """torch's version without its build tag (``2.14.1+cpu`` -> ``2.14.1``)."""
    return torch.__version__.split("+")[0]


def _code_digest(source):
    """SHA-256 of a module's syntax tree without its docstrings: an edit to a comment,
    a docstring or the layout keeps the stored runs, any change to the code does not.
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


def code_hash():
    """SHA-256 of the package version and the code of the training path."""
    h = hashlib.sha256(__version__.encode())
    for name in CODE_FILES:
        h.update(_code_digest((Path(__file__).parent / name).read_bytes()).encode())
    return h.hexdigest()


def _fingerprint(description, data, net):
    """SHA-256 of a run's description, data, code, torch release and initial weights."""
    h = hashlib.sha256(json.dumps([description, data.fingerprint, code_hash(),
                                   torch_release()], sort_keys=True).encode())
    for name, tensor in net.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class RunSpec:
    """One training run: the network, its initialisation and its recipe.

    ``activation`` may be given as an instance, a registry name or a config dict; it
    is kept as its config. Small, hashable and picklable (a task for a worker).
    """

    activation: object
    seed: int = COURSE_SEED
    hidden_sizes: tuple = COURSE_HIDDEN_SIZES
    init: str = "default"
    recipe: Recipe = COURSE_RECIPE
    input_size: int = COURSE_INPUT_SIZE
    num_classes: int = COURSE_NUM_CLASSES
    _config: tuple = field(default=(), init=False, repr=False, compare=False)

    def __post_init__(self):
        act = make_activation(self.activation)
        config = tuple(sorted(act.config.items()))
        object.__setattr__(self, "activation", act.config["name"])
        object.__setattr__(self, "_config", config)
        object.__setattr__(self, "hidden_sizes", tuple(self.hidden_sizes))
        if self.init not in INIT_SCHEMES:
            raise ValueError(f"unknown init scheme {self.init!r}; valid: "
                             f"{INIT_SCHEMES}")
        if not isinstance(self.recipe, Recipe):
            raise TypeError(f"recipe must be a Recipe, got {self.recipe!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"seed must be an integer, got {self.seed!r}")

    # identity ---------------------------------------------------------------------
    def __eq__(self, other):
        return isinstance(other, RunSpec) and self.to_dict() == other.to_dict()

    def __hash__(self):
        return hash(self.digest)

    @property
    def act_config(self):
        """The activation's config, e.g. ``{"name": "LeakyReLU", "alpha": 0.1}``."""
        return dict(self._config)

    @property
    def act_name(self):
        """The activation's registry name ("relu"), or its class name in lower case."""
        return registry_name(self.act_config) or self.activation.lower()

    def to_dict(self):
        return {"activation": self.act_config, "seed": self.seed,
                "hidden_sizes": list(self.hidden_sizes), "init": self.init,
                "recipe": self.recipe.to_dict(), "input_size": self.input_size,
                "num_classes": self.num_classes}

    @classmethod
    def from_dict(cls, d):
        d = dict(d)
        return cls(d.pop("activation"), recipe=Recipe(**d.pop("recipe")), **d)

    @property
    def digest(self):
        """SHA-256 of the specification (what was asked for, not the result)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True)
                              .encode()).hexdigest()

    @property
    def is_course_run(self):
        """The course's run of this activation: its default parameters, seed, sizes,
        initialisation and recipe."""
        default = RunSpec(type(make_activation(self.act_config))())
        return self == default

    @property
    def name(self):
        """``FashionMNIST_<act>`` for the course's run, else with the init scheme and
        ten digits of :attr:`digest` added (runs never share a name)."""
        name = f"FashionMNIST_{self.act_name}"
        if self.is_course_run:
            return name
        if self.init != "default":
            name += f"_{self.init}"
        return f"{name}_{self.digest[:10]}"

    # the run -----------------------------------------------------------------------
    def initial_network(self):
        """The network at its initial weights (seeded: the same every time)."""
        return initial_network(self.act_config, self.seed, self.hidden_sizes,
                               self.init, self.input_size, self.num_classes)

    def fingerprint(self, data, net=None):
        """What the trained result depends on (see the module docstring)."""
        net = self.initial_network() if net is None else net
        return _fingerprint(self.to_dict(), data, net)


def _versions():
    import platform

    return {"actfns": __version__, "torch": torch.__version__,
            "python": platform.python_version()}


def estimate_minutes(net, data, recipe, device):
    """Rough upper bound on the training time in minutes: a few steps, timed, times
    the steps of ``max_epochs`` epochs (early stopping usually ends sooner)."""
    import copy

    net = copy.deepcopy(net).to(device)
    X, y = data.train.tensors
    X, y = X[:recipe.batch_size].to(device), y[:recipe.batch_size].to(device)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.0)
    timings = []
    for _ in range(4):
        t0 = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(net(X), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        timings.append(time.perf_counter() - t0)
    steps = len(data.train) // recipe.batch_size * recipe.max_epochs
    return min(timings[1:]) * steps * 1.3 / 60  # + evaluation and bookkeeping


def _train_or_reuse(net, name, fingerprint, spec_dict, data, recipe, seed, *, store,
                    device, progress, overwrite, fetch):
    """Reuse run NAME if its fingerprint matches, else fetch or train and store it."""
    device = get_device(device)
    net.to(device)
    reason = "asked to retrain (overwrite=True)"
    if not overwrite:
        try:
            return store.get(name, fingerprint, net, device)[1]
        except CheckpointError as err:
            if err.kind not in RETRAIN_KINDS:
                raise
            if err.kind == "damaged":
                warnings.warn(f"{err}\nTraining {name} again.", stacklevel=3)
            reason = _REASONS[err.kind]
    with store.lock(name, progress):
        if not overwrite:
            try:  # another process may have stored it while we waited
                return store.get(name, fingerprint, net, device)[1]
            except CheckpointError as err:
                if err.kind not in RETRAIN_KINDS:
                    raise
            if fetch:
                fetched, why = fetch_run(store, name, fingerprint)
                if fetched:
                    return store.get(name, fingerprint, net, device)[1]
                reason = why or reason
        store.check_put(name)  # refuse a foreign or unreadable NAME before training
        if progress_enabled(progress):
            minutes = estimate_minutes(net, data, recipe, device)
            print(f"{name}: training it ({reason}); at most about "
                  f"{max(minutes, 0.1):.1f} min here, often less (early stopping)",
                  flush=True)
        history = fit(net, data, recipe, seed, device, progress, name)
        history.fingerprint, history.spec = fingerprint, spec_dict
        history.versions = _versions()
        return store.put(name, net, history)


def train_run(spec, data, *, store=None, device=None, progress=None, overwrite=False,
              fetch=True):
    """Train run ``spec`` on ``data``, or reuse it: the store's copy, or a published
    one with the same fingerprint (``$ACTFNS_PRETRAINED_URL``).

    Args:
        spec: a ``RunSpec``.
        data: ``FashionMNISTData``.
        store: a ``RunStore`` or folder (None: ``$ACTFNS_CHECKPOINTS``).
        overwrite: train even if a reusable run exists (it is then replaced).
        fetch: allow fetching a published network.
    Returns:
        ``(net, history)``: the best network (on ``device``) and its History
        (``trained`` is False when reused).
    """
    store = store if isinstance(store, RunStore) else RunStore(store)
    net = spec.initial_network()
    fingerprint = spec.fingerprint(data, net)
    history = _train_or_reuse(net, spec.name, fingerprint, spec.to_dict(), data,
                              spec.recipe, spec.seed, store=store, device=device,
                              progress=progress, overwrite=overwrite, fetch=fetch)
    return net, history




def _spec(act_fn, seed, hidden_sizes, init, recipe_changes):
    return RunSpec(act_fn, seed=seed, hidden_sizes=hidden_sizes, init=init,
                   recipe=COURSE_RECIPE.replace(**recipe_changes))


def train_or_load(act_fn, data, *, seed=COURSE_SEED, hidden_sizes=COURSE_HIDDEN_SIZES,
                  init="default", model_path=None, device=None, progress=None,
                  overwrite=False, **recipe):
    """Train (or reuse) the network of one activation, as the course does.

    The same ``seed`` initialises the weights and orders the batches, so every
    activation starts from the same random state. The course's run (seed 42, default
    network and recipe) is stored as ``FashionMNIST_<activation>``.

    Args:
        act_fn: activation instance, registry name or config.
        recipe: changes to the course's ``Recipe`` (``max_epochs=3``, ``lr=...``).
        model_path: the store's folder (None: ``$ACTFNS_CHECKPOINTS``).
    Returns:
        ``(net, history)``.
    """
    spec = _spec(act_fn, seed, hidden_sizes, init, recipe)
    return train_run(spec, data, store=model_path, device=device, progress=progress,
                     overwrite=overwrite)


def train_with_init(act_fn, data, init="default", **kwargs):
    """:func:`train_or_load` of a network initialised with ``init``
    (``"default"``, ``"kaiming"`` or ``"xavier"``, see ``init_network``)."""
    return train_or_load(act_fn, data, init=init, **kwargs)


def train_model(net, model_name, data, *, seed=COURSE_SEED, device=None,
                model_path=None, overwrite=False, progress=None, **recipe):
    """Train any network ``net`` (at its initial weights) as run ``model_name``.

    Like :func:`train_run` for a network that no ``RunSpec`` describes: it is reused
    only when its fingerprint (the network's config and initial weights, the data,
    the recipe, the seed and the training code) matches. ``recipe`` changes the
    course's ``Recipe``; ``seed`` orders the batches.

    Returns:
        History; ``net`` holds the best weights.
    """
    recipe = COURSE_RECIPE.replace(**recipe)
    description = {"network": getattr(net, "config", type(net).__name__),
                   "seed": seed, "recipe": recipe.to_dict()}
    fingerprint = _fingerprint(description, data, net)
    store = model_path if isinstance(model_path, RunStore) else RunStore(model_path)
    return _train_or_reuse(net, model_name, fingerprint, description, data, recipe,
                           seed, store=store, device=device, progress=progress,
                           overwrite=overwrite, fetch=False)


@dataclass
class RunCost:
    """What training a list of runs costs (see :func:`run_cost`).

    ``train_seconds`` is the training time each stored run recorded when it was
    trained (on the machine that trained it), plus an estimate (an upper bound) for the
    runs not stored yet; ``estimated`` counts those. ``download_bytes`` is the size of
    the stored runs' files, what fetching the published copies downloads.
    """

    runs: int
    stored: int
    estimated: int
    train_seconds: float
    download_bytes: int

    @property
    def train_minutes(self):
        return self.train_seconds / 60

    def __str__(self):
        return (f"{self.runs} networks: about {self.train_minutes:.0f} min of training"
                f" ({self.stored} stored, {self.estimated} estimated); the published "
                f"copies are {self.download_bytes / 1e6:.0f} MB")


def run_cost(specs, data, store=None, device=None):
    """How long training ``specs`` takes from scratch, and what fetching them costs.

    Cheap: builds each initial network to compute its fingerprint, reads the stored
    histories, and times a few steps only for runs that are not stored.
    """
    store = store if isinstance(store, RunStore) else RunStore(store)
    device = get_device(device)
    seconds, stored, estimated, size = 0.0, 0, 0, 0
    for spec in specs:
        net = spec.initial_network()
        try:
            _, history = store.get(spec.name, spec.fingerprint(data, net))
        except CheckpointError:
            seconds += 60 * estimate_minutes(net, data, spec.recipe, device)
            size += sum(4 * p.numel() for p in net.parameters())  # float32 weights
            estimated += 1
            continue
        seconds += history.wall_time
        size += sum(p.stat().st_size for p in store.path(spec.name).iterdir())
        stored += 1
    return RunCost(len(specs), stored, estimated, seconds, size)
