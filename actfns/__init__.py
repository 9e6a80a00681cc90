"""actfns: activation functions, gradient flow and dead neurons in PyTorch.

The package behind the actfns book. Everything public is importable from here::

    import actfns as af
    net = af.BaseNetwork(af.ReLU())
"""

__version__ = "0.1.0"

from .activations import (  # noqa: E402
    ACTIVATIONS,
    COURSE_ACTIVATIONS,
    ELU,
    GELU,
    SELU,
    ActivationFunction,
    Identity,
    LeakyReLU,
    Mish,
    ReLU,
    Sigmoid,
    Softplus,
    Swish,
    Tanh,
    act_fn_by_name,
    activation_from_config,
    get_activation,
    get_grads,
    sigmoid,
    softplus,
    tanh,
)
from .checkpoints import CheckpointError, load_model, save_model  # noqa: E402
from .data import (  # noqa: E402
    CLASS_NAMES,
    DatasetError,
    FashionMNISTData,
    batches,
    load_fashion_mnist,
    prepare_fashion_mnist,
    read_idx,
)
from .depth import depth_sweep, neuron_census  # noqa: E402
from .diagnostics import (  # noqa: E402
    DeadNeurons,
    count_dead_neurons,
    grad_stats,
    layer_activations,
    units_ever,
    weight_grads,
)
from .interactive import (  # noqa: E402
    EXPLORER_PARAMS,
    activation_explorer,
    explorer_figure,
)
from .model import BaseNetwork  # noqa: E402
from .paths import checkpoint_dir, data_dir  # noqa: E402
from .plotting import (  # noqa: E402
    ACT_COLORS,
    color_of,
    plot_activation_functions,
    plot_activation_hists,
    plot_dead_neurons,
    plot_grad_norms,
    plot_image_grid,
    plot_lines,
    plot_seed_points,
    plot_val_curves,
    plot_weight_grads,
)
from .studies import (  # noqa: E402
    INIT_SCHEMES,
    activation_stats,
    compare_to_best,
    init_gain,
    init_network,
    init_study,
    runs_frame,
    summarize_runs,
    train_seeds,
    train_with_init,
)
from .train import (  # noqa: E402
    History,
    evaluate,
    get_device,
    run_fingerprint,
    set_seed,
    train_epoch,
    train_model,
    train_or_load,
)

__all__ = [
    "ACTIVATIONS", "COURSE_ACTIVATIONS", "ELU", "GELU", "SELU", "ActivationFunction",
    "Identity", "LeakyReLU", "Mish", "ReLU", "Sigmoid", "Softplus", "Swish", "Tanh",
    "act_fn_by_name", "activation_from_config", "get_activation", "get_grads",
    "sigmoid", "softplus", "tanh",
    "CheckpointError", "load_model", "save_model",
    "CLASS_NAMES", "DatasetError", "FashionMNISTData", "batches",
    "load_fashion_mnist", "prepare_fashion_mnist", "read_idx",
    "DeadNeurons", "count_dead_neurons", "grad_stats", "layer_activations",
    "units_ever", "weight_grads",
    "EXPLORER_PARAMS", "activation_explorer", "explorer_figure",
    "BaseNetwork", "checkpoint_dir", "data_dir",
    "ACT_COLORS", "color_of", "plot_activation_functions", "plot_activation_hists",
    "plot_dead_neurons", "plot_grad_norms", "plot_image_grid", "plot_val_curves",
    "plot_weight_grads",
    "History", "evaluate", "get_device", "run_fingerprint", "set_seed",
    "train_epoch", "train_model", "train_or_load",
    "plot_lines", "plot_seed_points",
    "INIT_SCHEMES", "activation_stats", "compare_to_best", "depth_sweep", "init_gain",
    "init_network", "init_study", "neuron_census", "runs_frame", "summarize_runs",
    "train_seeds", "train_with_init",
]
