"""The course's settings and published results, in one place.

The course is the "Activation Functions" tutorial (tutorial 3) of the UvA deep
learning course by Phillip Lippe. Its recipe is the default of every training
function; its published numbers are what the book compares its own runs with.
"""

from dataclasses import asdict, dataclass, replace

__all__ = ["Recipe", "COURSE_RECIPE", "COURSE_SEED", "COURSE_ACTIVATIONS",
           "COURSE_INPUT_SIZE", "COURSE_NUM_CLASSES", "COURSE_HIDDEN_SIZES",
           "COURSE_NUM_VAL", "COURSE_DEEP_HIDDEN_SIZES", "COURSE_TEST_ACC",
           "COURSE_DEAD_NEURONS", "COURSE_CHECKPOINT_URL", "COURSE_CHECKPOINT_SHA256"]


@dataclass(frozen=True)
class Recipe:
    """How a network is trained: SGD with momentum, early stopping on validation
    accuracy. The defaults are the course's.

    Args:
        lr: learning rate; momentum: SGD momentum.
        batch_size: images per step (the last, incomplete batch is dropped).
        max_epochs: at most this many passes over the training set.
        patience: stop after this many epochs without a better validation accuracy.
    """

    lr: float = 1e-2
    momentum: float = 0.9
    batch_size: int = 256
    max_epochs: int = 50
    patience: int = 7

    def __post_init__(self):
        for name in ("batch_size", "max_epochs", "patience"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        for name in ("lr", "momentum"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    value >= 0 and value < float("inf")):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        object.__setattr__(self, "lr", float(self.lr))
        object.__setattr__(self, "momentum", float(self.momentum))

    def to_dict(self):
        return asdict(self)

    def replace(self, **changes):
        """A copy with some fields changed (unknown names raise a clear error)."""
        unknown = sorted(set(changes) - set(asdict(self)))
        if unknown:
            raise TypeError(f"not part of a Recipe: {', '.join(unknown)}; the fields "
                            f"are {', '.join(asdict(self))}")
        return replace(self, **changes)


COURSE_RECIPE = Recipe()
"""SGD(lr 1e-2, momentum 0.9), batch 256, at most 50 epochs, patience 7."""

COURSE_SEED = 42
"""Seed of the weights and of the batch order of every course run."""

COURSE_ACTIVATIONS = ("sigmoid", "tanh", "relu", "leakyrelu", "elu", "swish")
"""The six activations of the course, in its order (registry names)."""

COURSE_INPUT_SIZE = 784  # 28 x 28 pixels
COURSE_NUM_CLASSES = 10
COURSE_HIDDEN_SIZES = (512, 256, 256, 128)
COURSE_NUM_VAL = 10_000
"""Images held out of FashionMNIST's 60,000 for validation."""

COURSE_DEEP_HIDDEN_SIZES = (256,) * 5 + (128,) * 5
"""The deeper network of the course's dead-neuron section."""

COURSE_TEST_ACC = {"sigmoid": 0.1000, "tanh": 0.8759, "relu": 0.8862,
                   "leakyrelu": 0.8892, "elu": 0.8727, "swish": 0.8873}
"""Test accuracies (fractions) the course published for its runs (trained on a GPU)."""

COURSE_DEAD_NEURONS = {
    "untrained": (0, 0, 3, 10),
    "trained": (0, 0, 0, 3),
    "untrained_deep": (0, 0, 7, 27, 89, 60, 58, 61, 72, 56),
}
"""Dead ReLU units per hidden layer the course published: its untrained and trained
network, and the untrained network of ``COURSE_DEEP_HIDDEN_SIZES``."""

COURSE_CHECKPOINT_URL = ("https://raw.githubusercontent.com/phlippe/saved_models/main/"
                         "tutorial3/")
"""Where the course's notebook downloads its six trained networks (MIT licence,
(c) 2020 Phillip Lippe)."""

COURSE_CHECKPOINT_SHA256 = {
    "FashionMNIST_sigmoid.config": "3a266e849977a204b51bcd7f041a3261cb392d017eb159b5283c50e1af83e69e",  # noqa: E501
    "FashionMNIST_sigmoid.tar": "733c23d3a4717595c36506675de4ed6892c9b1df6c454b3de279d6dfa7b27bc2",  # noqa: E501
    "FashionMNIST_tanh.config": "9e9654a586ca47e8b0491bd5a7ce94557fa6dc64ad54325e989e91e4971938ce",  # noqa: E501
    "FashionMNIST_tanh.tar": "f27b1999c4f18fec2c7673266e97ca22ee9445d7b1ad5a896dd930488be09dd3",  # noqa: E501
    "FashionMNIST_relu.config": "dd63e07b83259e9cf0f3eef646cefb7bfaa536bde7062910884b45de50cfcb20",  # noqa: E501
    "FashionMNIST_relu.tar": "0d7184a8ebc940c61580fd2df1c864b1817e1a16a1e3783e47d47d5efc3a6555",  # noqa: E501
    "FashionMNIST_leakyrelu.config": "45e9e320c2190f53bae21276c11d073a70689711790d17bb7322f612655e234c",  # noqa: E501
    "FashionMNIST_leakyrelu.tar": "76598913dab64fbc1e6d4cdcc0590d4d8f24a2ad311d6d721699a3c5790e590f",  # noqa: E501
    "FashionMNIST_elu.config": "163999f76542bfec5b1d41c31e61ef833397ab3df8222659a9605fc8e416ba68",  # noqa: E501
    "FashionMNIST_elu.tar": "35c38b937200b89665c9ce9fca174908b6494abd603ae1fbb39a162af7620a1a",  # noqa: E501
    "FashionMNIST_swish.config": "a617c8feae74e0bc412111ad1b63c4035418f83d8c6d66830061c7c565c29839",  # noqa: E501
    "FashionMNIST_swish.tar": "f3fc3b4e9b4d55717f94eba60425da2489f1fef4f8b5478d9f0200699a6c57dc",  # noqa: E501
}
"""SHA-256 of each of the course's published checkpoint files."""
