"""check_activation: accepts the package's activations and sound rewrites of them,
and names each flaw of the textbook versions a reader would write, in one line."""

import math
import re

import pytest
import torch
import torch.nn.functional as F

import actfns.activations as A
from actfns.exercises import (
    EXERCISE_STUBS,
    GRID,
    ActivationCheck,
    check_activation,
    exercise_stubs,
)


def written(name, formula, param=None, default=None, store=True):
    """A reader's class named ``name`` whose forward is ``formula(x[, param])``,
    written course-style (``forward``, parameters kept in ``config``)."""
    if param is None:
        return type(name, (A.ActivationFunction,), {"forward": lambda s, x: formula(x)})

    def init(self, **kw):
        A.ActivationFunction.__init__(self, **{param: kw.pop(param, default)}, **kw)

    def forward(self, x):
        return formula(x, self.config[param]) if store else formula(x)

    return type(name, (A.ActivationFunction,), {"__init__": init, "forward": forward})


@pytest.mark.parametrize("name", list(A.ACTIVATIONS))
def test_accepts_every_package_activation(name):
    cls = A.ACTIVATIONS[name]
    check = check_activation(cls)
    assert check.ok, check.message
    assert check.message.startswith(f"agrees with af.{cls.__name__} ")
    assert "Note" not in check.message  # finite at +-inf too


SOUND = [  # other correct ways to write them: torch's own functions, rewritings
    written("Sigmoid", torch.sigmoid),
    written("Sigmoid", lambda x: torch.where(x >= 0, 1, torch.exp(x.clamp(max=0)))
            / (1 + torch.exp(torch.where(x >= 0, -x, x)))),
    written("Tanh", torch.tanh),
    written("Tanh", lambda x: 2 * torch.sigmoid(2 * x) - 1),
    written("ReLU", F.relu),
    written("ReLU", lambda x: torch.where(x > 0, x, 0.0)),
    written("ReLU", lambda x: torch.maximum(x, 0 * x)),  # gradient 1/2 at the kink
    written("LeakyReLU", F.leaky_relu, "alpha", 0.1),
    written("LeakyReLU", lambda x, a: torch.where(x > 0, x, a * x), "alpha", 0.1),
    written("ELU", lambda x, a: F.elu(x, a), "alpha", 1.0),
    written("ELU", lambda x, a: torch.where(
        x > 0, x, a * torch.expm1(torch.where(x > 0, 0.0, x))), "alpha", 1.0),
    written("Swish", lambda x, b: F.silu(b * x) / b, "beta", 1.0),
    written("GELU", F.gelu),
    written("Mish", F.mish),
    written("SELU", F.selu),
]


@pytest.mark.parametrize("cls", SOUND, ids=lambda c: c.__name__)
def test_accepts_sound_rewritings(cls):
    check = check_activation(cls)
    assert check.ok, check.message


@pytest.mark.parametrize("cls, note", [
    (written("Sigmoid", lambda x: torch.where(x >= 0, 1, torch.exp(-x.abs()))
             / (1 + torch.exp(-x.abs()))), "the gradient at x = 0 is 0, not 0.25: abs"),
    (written("ELU", lambda x, a: torch.where(x > 0, x, a * torch.expm1(x.clamp(max=0))),
             "alpha", 1.0), "the gradient at x = 0 is 0, not 1: clamp"),
])
def test_a_gradient_lost_at_a_kink_of_torch_is_only_a_note(cls, note):
    """exp(-|x|) is smooth in the sigmoid, but torch's abs passes gradient 0 at 0."""
    check = check_activation(cls)
    assert check.ok, check.message
    assert f"Note: {note} passes gradient 0 at its kink" in check.message


def test_a_gradient_wrong_at_0_otherwise_fails():
    no_kink = written("Sigmoid", lambda x: torch.where(x == 0, 0.5 + 0 * x,
                                                       torch.sigmoid(x)))
    assert check_activation(no_kink).message == (
        "wrong gradient at x = 0 (float32): got 0, expected 0.25 (af.Sigmoid)")
    # a kink in the branch not taken does not excuse a wrong sign
    wrong_sign = written("Sigmoid", lambda x: torch.where(
        x >= 0, 1, torch.exp(x.clamp(max=0)))
        / (1 + torch.exp(torch.where(x > 0, -x, x))))
    assert check_activation(wrong_sign).message == (
        "wrong gradient at x = 0 (float32): got -0.25, expected 0.25 (af.Sigmoid)")


def test_nan_at_minus_inf_where_the_limit_is_finite_is_only_a_note():
    swish = written("Swish", lambda x, b: x * torch.sigmoid(b * x), "beta", 1.0)
    check = check_activation(swish)
    assert check.ok
    assert check.message.endswith(
        "Note: value is nan at x = -inf, whose limit is 0; inf * 0 is nan")


FLAWED = [  # (class, the message it must get)
    (written("Sigmoid", lambda x: 1 / (1 + torch.exp(-x))),
     "gradient is nan at x = -100 (float32): exp(100) overflows to inf (above 88.7 "
     "in float32) and backward multiplies that inf by 0. Hint: exponentiate only "
     "numbers <= 0, e.g. torch.exp(-x.abs())"),
    (written("Tanh", lambda x: (torch.exp(x) - torch.exp(-x))
             / (torch.exp(x) + torch.exp(-x))),
     "value is nan at x = 100 (float32): exp(100) overflows to inf (above 88.7 in "
     "float32) and a division then gives nan. Hint: exponentiate only numbers <= 0, "
     "e.g. torch.exp(-x.abs())"),
    (written("ELU", lambda x: torch.where(x > 0, x, torch.exp(x) - 1)),
     "gradient is nan at x = 100 (float32): exp(100) overflows to inf (above 88.7 in "
     "float32) and backward multiplies that inf by 0. Hint: torch.where "
     "differentiates both branches; give the one not taken a safe input: "
     "torch.exp(torch.where(x > 0, 0.0, x))"),
    (written("LeakyReLU", lambda x: torch.where(x > 0, x, 0.1 * x), "alpha", 0.1,
             store=False),
     "ignores alpha: LeakyReLU(alpha=0.3) gives -0.1 at x = -1, expected -0.3. Hint: "
     "use the alpha given to __init__ (e.g. self.config['alpha']) in forward, not 0.1"),
    (written("ELU", lambda x: torch.where(x > 0, x, torch.expm1(x.clamp(max=0))),
             "alpha", 1.0, store=False),
     "ignores alpha: ELU(alpha=0.3) gives -0.6321 at x = -1, expected -0.1896."),
    (written("Swish", lambda x: x * torch.sigmoid(x)),
     "does not take beta: Swish(beta=0.3) raised TypeError (Swish takes no "
     "parameters, got {'beta': 0.3}). Hint: accept beta in __init__"),
    (written("ReLU", lambda x: torch.where(x > 0, x, 0.0).double()),
     "returns float64 for float32 input: something is float64 (.double(), a float64 "
     "tensor or NumPy array). Hint: keep x's dtype"),
    (written("ReLU", lambda x: x * (x > 0).float()),  # the course's ReLU
     "returns float32 for float16 input: .float() converts to float32."),
    (written("Swish", lambda x, b: x * torch.tanh(b * x), "beta", 1.0),
     "wrong value at x = 1 (float32): got 0.761594, expected 0.731059 (af.Swish), "
     "and at 127 more points"),
]


@pytest.mark.parametrize("cls, message", FLAWED,
                         ids=[f"{c.__name__}-{m[:20]}" for c, m in FLAWED])
def test_names_the_flaw_in_one_line(cls, message):
    check = check_activation(cls)
    assert not check.ok
    assert check.message.startswith(message), check.message
    assert "\n" not in check.message
    assert str(check) == f"✗ {cls.__name__}: {check.message}"


def test_the_float64_version_of_a_flaw_is_found_too():
    """In float64 exp overflows above 709.8: the grid's -1000 and -1e4 catch it."""
    sigmoid = written("Sigmoid", lambda x: 1 / (1 + torch.exp(-x)))
    details = check_activation(sigmoid).details.set_index("check")
    assert details.loc["gradients, float64", "problem"].startswith(
        "gradient is nan at x = -1000 (float64): exp(1000) overflows to inf (above "
        "709.8 in float64)")
    assert details.loc["values, float64", "result"] == "✓"


@pytest.mark.parametrize("forward, message", [
    (lambda x: None, "returns None: did forward forget its return?"),
    (lambda x: x.sum(), "returns shape () for input shape (141,)"),
    (lambda x: x.tolist(), "returns a list, not a torch.Tensor"),
    (lambda x: torch.sigmoid(x).detach(), "its output has no gradient"),
    (lambda x: x.numpy(), "returns a ndarray, not a torch.Tensor"),
    (lambda x: x.nonexistent(), "raised AttributeError for a float32 input of shape "
                                "(141,): 'Tensor' object has no attribute"),
])
def test_broken_forwards_get_a_clear_message(forward, message):
    check = check_activation(written("Sigmoid", forward))
    assert message in check.message


def test_a_class_that_is_not_a_module_is_explained():
    class Sigmoid:
        def forward(self, x):
            return torch.sigmoid(x)

    assert check_activation(Sigmoid).message.startswith(
        "its instances cannot be called: subclass af.ActivationFunction")


def test_an_instance_is_checked_with_its_own_parameters():
    assert check_activation(A.LeakyReLU(alpha=0.2)).ok
    leaky = written("LeakyReLU", lambda x: torch.where(x > 0, x, 0.1 * x), "alpha",
                    0.1, store=False)
    check = check_activation(leaky(alpha=0.2))
    assert check.message.startswith(
        "wrong value at x = -1 (float32): got -0.1, expected -0.2 (af.LeakyReLU)")


def test_reference_by_name_class_or_instance():
    mine = written("MySigmoid", lambda x: torch.sigmoid(x))
    assert check_activation(mine, reference="sigmoid").ok
    assert check_activation(mine, reference=A.Sigmoid).ok
    assert not check_activation(mine, reference=A.Tanh()).ok
    with pytest.raises(ValueError, match="no activation named 'MySigmoid'.*reference="):
        check_activation(mine)
    with pytest.raises(ValueError, match="unknown activation 'sigmoidal'"):
        check_activation(mine, reference="sigmoidal")


def test_the_grid_reaches_the_extremes_and_tiny_values():
    for x in (-1e4, -100, -20, 0.0, 1e-30, -1e-8, 20, 100, 1e4):
        assert x in GRID
    assert sorted(set(GRID)) == GRID
    assert all(math.isfinite(x) for x in GRID)


def test_the_result_displays_in_a_notebook():
    good, bad = check_activation(A.Sigmoid), check_activation(
        written("Sigmoid", lambda x: 1 / (1 + torch.exp(-x))))
    assert isinstance(good, ActivationCheck) and good and not bad
    assert str(good).startswith("✓ Sigmoid: agrees with af.Sigmoid")
    page = bad._repr_html_()
    assert page.startswith("<p><strong>✗ Sigmoid: gradient is nan at x = -100")
    assert "<details><summary>6 checks</summary><table" in page
    assert "&lt;= 0" in page  # escaped
    assert list(bad.details.columns) == ["check", "result", "problem"]
    assert list(bad.details["check"]) == [
        "values, float32", "gradients, float32", "values, float64",
        "gradients, float64", "dtype, float16", "dtype, bfloat16"]
    assert list(bad.details["result"]) == ["✓", "✗", "✓", "✗", "✓", "✓"]
    assert list(check_activation(A.ELU).details["check"])[-1] == "alpha=0.3"


STUB_NAMES = ["Sigmoid", "Tanh", "ReLU", "LeakyReLU", "ELU", "Swish"]


def stubs_namespace():
    namespace = {}
    exec(compile(EXERCISE_STUBS, "<stubs>", "exec"), namespace)
    return namespace


def test_the_stubs_are_the_courses_six_and_say_they_are_not_written():
    namespace = stubs_namespace()
    classes = [v for v in namespace.values()
               if isinstance(v, type) and v.__module__ != "actfns.activations"
               and issubclass(v, A.ActivationFunction)]
    assert [c.__name__ for c in classes] == STUB_NAMES
    for cls in classes:
        check = check_activation(cls)
        assert check.message == ("is not written yet (forward raises "
                                 "NotImplementedError): fill it in")


@pytest.mark.parametrize("name, body", [
    ("Sigmoid", "e = torch.exp(-x.abs())\n        "
                "return torch.where(x >= 0, 1 / (1 + e), e / (1 + e))"),
    ("Tanh", "return 2 * torch.sigmoid(2 * x) - 1"),
    ("ReLU", "return torch.where(x > 0, x, 0.0)"),
    ("LeakyReLU", "return torch.where(x > 0, x, self.config['alpha'] * x)"),
    ("ELU", "safe = torch.where(x > 0, 0.0, x)\n        "
            "return torch.where(x > 0, x, self.config['alpha'] * torch.expm1(safe))"),
    ("Swish", "return x * torch.sigmoid(self.config['beta'] * x)"),
])
def test_filled_in_stubs_pass(name, body):
    """The stubs' own __init__s (parameters in config) work with a sound forward."""
    text = EXERCISE_STUBS
    start = text.index(f"class {name}(")
    stop = text.index("raise NotImplementedError", start)
    text = text[:stop] + body + text[stop + len("raise NotImplementedError"):]
    namespace = {}
    exec(compile(text, "<filled>", "exec"), namespace)
    check = check_activation(namespace[name])
    assert check.ok, check.message


def test_exercise_stubs_displays_the_stub_text():
    source = exercise_stubs()
    assert str(source) == EXERCISE_STUBS
    assert '<span class="nc">LeakyReLU</span>' in source._repr_html_()
    assert re.search(r"class Swish\(af\.ActivationFunction\):\n    def __init__\("
                     r"self, beta=1\.0\)", EXERCISE_STUBS)
