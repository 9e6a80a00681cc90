"""actfns: activation functions, gradient flow and dead neurons in PyTorch.

The package behind the actfns book. Everything public is importable from here::

    import actfns as af
    net = af.initial_network("relu")            # the course's network, seeded
    net, history = af.train_or_load("relu", af.load_fashion_mnist())
"""

from .activations import (
    ACTIVATIONS,
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
    activation_class,
    activation_from_config,
    get_activation,
    get_grads,
    make_activation,
    registry_name,
    sigmoid,
    softplus,
    tanh,
)
from .checkpoints import CheckpointError, load_model, save_model
from .course import (
    COURSE_ACTIVATIONS,
    COURSE_DEAD_NEURONS,
    COURSE_DEEP_HIDDEN_SIZES,
    COURSE_HIDDEN_SIZES,
    COURSE_RECIPE,
    COURSE_SEED,
    COURSE_TEST_ACC,
    Recipe,
)
from .data import (
    CLASS_NAMES,
    DatasetError,
    FashionMNISTData,
    batches,
    load_fashion_mnist,
    prepare_fashion_mnist,
    read_idx,
)
from .depth import depth_sweep, neuron_census
from .diagnostics import (
    DeadNeurons,
    Plateau,
    activation_stats,
    count_dead_neurons,
    grad_stats,
    hidden_preactivations,
    layer_activations,
    plateau,
    units_ever,
    weight_grads,
)
from .diagram import plot_network_diagram
from .env import checkpoint_dir, data_dir, device_of, get_device, set_seed
from .exercises import ActivationCheck, check_activation, exercise_stubs
from .initialisation import (
    INIT_SCHEMES,
    init_gain,
    init_network,
    init_study,
    initial_network,
)
from .interactive import (
    EXPLORER_PARAMS,
    activation_explorer,
    explorer_figure,
)
from .logo import logo_figure
from .model import BaseNetwork
from .plotting import (
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
from .pretrained import fetch_course_checkpoints, fetch_runs, publish_runs
from .runs import (
    RunCost,
    RunSpec,
    run_cost,
    train_model,
    train_or_load,
    train_run,
    train_with_init,
)
from .seeds import (
    SWEEP_ACTIVATIONS,
    compare_to_best,
    read_sweep,
    runs_frame,
    screen_table,
    summarize_runs,
    sweep_specs,
    sweep_tables,
    train_seeds,
    write_sweep,
)
from .source import show_source
from .store import RunStore
from .sweep import DataSource, RunFailure, SweepError, cluster_executor, train_runs
from .train import History, evaluate, fit, train_epoch
from .version import __version__

__all__ = [
    "__version__",
    # activations
    "ACTIVATIONS", "ELU", "GELU", "SELU", "ActivationFunction", "Identity",
    "LeakyReLU", "Mish", "ReLU", "Sigmoid", "Softplus", "Swish", "Tanh",
    "act_fn_by_name", "activation_class", "activation_from_config", "get_activation",
    "get_grads", "make_activation", "registry_name", "sigmoid", "softplus", "tanh",
    # the course
    "COURSE_ACTIVATIONS", "COURSE_DEAD_NEURONS", "COURSE_DEEP_HIDDEN_SIZES",
    "COURSE_HIDDEN_SIZES", "COURSE_RECIPE", "COURSE_SEED", "COURSE_TEST_ACC", "Recipe",
    # network, data, environment
    "BaseNetwork", "CLASS_NAMES", "DatasetError", "FashionMNISTData", "batches",
    "load_fashion_mnist", "prepare_fashion_mnist", "read_idx",
    "checkpoint_dir", "data_dir", "device_of", "get_device", "set_seed",
    "INIT_SCHEMES", "init_gain", "init_network", "init_study", "initial_network",
    # training and runs
    "History", "evaluate", "fit", "train_epoch",
    "RunCost", "RunSpec", "RunStore", "run_cost", "train_model", "train_or_load",
    "train_run", "train_runs", "train_with_init", "CheckpointError", "load_model",
    "save_model",
    "fetch_course_checkpoints", "fetch_runs", "publish_runs",
    "compare_to_best", "runs_frame", "summarize_runs", "train_seeds",
    # sweeps: many runs on any executor (a Dask cluster too)
    "SWEEP_ACTIVATIONS", "DataSource", "RunFailure", "SweepError", "cluster_executor",
    "read_sweep", "screen_table", "sweep_specs", "sweep_tables", "write_sweep",
    # diagnostics
    "DeadNeurons", "activation_stats", "count_dead_neurons", "grad_stats",
    "hidden_preactivations", "layer_activations", "units_ever", "weight_grads",
    "Plateau", "plateau",
    "depth_sweep", "neuron_census",
    # figures
    "ACT_COLORS", "color_of", "plot_activation_functions", "plot_activation_hists",
    "plot_dead_neurons", "plot_grad_norms", "plot_image_grid", "plot_lines",
    "plot_seed_points", "plot_val_curves", "plot_weight_grads",
    "EXPLORER_PARAMS", "activation_explorer", "explorer_figure", "logo_figure",
    "plot_network_diagram",
    # for the reader: exercises and the package's own code
    "ActivationCheck", "check_activation", "exercise_stubs", "show_source",
]
