"""Activation functions: values and gradients against torch's references, registry,
configs, get_grads, the formula-not-builtin rule, and the course's overflow bugs."""

import ast
import inspect
import json
import math
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import actfns as af
import actfns.activations as A

COURSE_SIX = ["sigmoid", "tanh", "relu", "leakyrelu", "elu", "swish"]
ALL_NAMES = [*COURSE_SIX, "gelu", "mish", "selu", "softplus", "identity"]


def _softplus_ref(beta):
    # F.softplus returns x itself once beta*x > threshold (default 20); there the exact
    # value differs by log1p(e^-20)/beta ~ 2.1e-9, far above float64 rounding. With
    # threshold=40 the neglected term e^-40 ~ 4e-18 is below the float64 rounding of
    # any value >= 40, so the reference is exact to rounding in every dtype.
    return lambda x: F.softplus(x, beta=beta, threshold=40)


# (registry name, parameters, torch reference)
CASES = [
    ("sigmoid", {}, torch.sigmoid),
    ("tanh", {}, torch.tanh),
    ("relu", {}, F.relu),
    ("leakyrelu", {}, lambda x: F.leaky_relu(x, 0.1)),
    ("leakyrelu", {"alpha": 0.3}, lambda x: F.leaky_relu(x, 0.3)),
    ("elu", {}, F.elu),
    ("elu", {"alpha": 0.5}, lambda x: F.elu(x, alpha=0.5)),
    ("swish", {}, F.silu),
    ("swish", {"beta": 2.0}, lambda x: F.silu(2 * x) / 2),
    ("gelu", {}, F.gelu),
    ("mish", {}, F.mish),
    ("selu", {}, F.selu),
    ("softplus", {}, _softplus_ref(1.0)),
    ("softplus", {"beta": 2.0}, _softplus_ref(2.0)),
    ("identity", {}, lambda x: x.clone()),
]
CASE_IDS = [name + "".join(f"-{k}{v:g}" for k, v in p.items()) for name, p, _ in CASES]
DTYPES = [torch.float64, torch.float32, torch.bfloat16, torch.float16]


def input_grid(dtype):
    """-1e4..1e4 (log-spaced magnitudes plus a dense [-30, 30]), 0, -0, +-inf, NaN,
    rounded to ``dtype`` (so every point is exactly representable there)."""
    mags = torch.logspace(-8, 4, 1500, dtype=torch.float64)
    dense = torch.linspace(-30, 30, 4001, dtype=torch.float64)
    grid = torch.cat([-mags, dense, mags, torch.tensor([0.0, 1e4, -1e4])])
    grid = torch.unique(grid.to(dtype).double())
    special = torch.tensor([-0.0, math.inf, -math.inf, math.nan], dtype=torch.float64)
    return torch.cat([grid, special]).to(dtype)


def reference(fn, x):
    """Reference value, derivative and second derivative, in float64 at ``x``."""
    x = x.double().clone().requires_grad_()
    y = fn(x)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=True)
    h = None
    if g.requires_grad:
        (h,) = torch.autograd.grad(g.sum(), x, allow_unused=True)
    h = torch.zeros_like(g) if h is None else h
    return y.detach(), g.detach(), h.detach()


def ours(act, x):
    """Value and autograd derivative of ``act`` at ``x`` (computed in x's dtype)."""
    x = x.clone().requires_grad_()
    y = act(x)
    y.sum().backward()
    return y.detach(), x.grad


def assert_close_to_reference(got, ref, dref, x, dtype, what, eps_abs, factor=4):
    """Check ``got`` (computed in ``dtype``) against the float64 ``ref`` at ``x``.

    The dtype tolerance, with eps and tiny the dtype's machine epsilon and smallest
    normal number:

        |got - ref| <= factor * (eps (|ref| + |x ref'|) + eps_abs (1 + |x|)) + tiny

    - eps |ref|: a few roundings of the result.
    - eps |x ref'|: a few roundings of the input; |x ref'| / |ref| is the function's
      condition number, which no formula evaluated in ``dtype`` can beat (GELU's far
      negative tail, for instance).
    - eps_abs (1 + |x|): absolute rounding of O(1) intermediates. Values: torch's
      formulas subtract O(1) terms (1 + erf(x / sqrt 2) in GELU), so even the float64
      reference is only accurate to ~eps64 there, and torch evaluates float16 and
      bfloat16 in float32 (eps_abs = eps64 or eps32). Derivatives: torch (and we)
      compute them from the rounded output, e.g. 1 - tanh(x)^2 and sigmoid (1 -
      sigmoid), so they carry an absolute error of ~eps of the dtype (eps_abs = eps).
    With factor 4 torch's own implementation in each dtype passes (checked below);
    the errors that matter (NaN, overflow, a wrong formula) are orders larger.

    Where the reference is finite, ``got`` must be finite; where it is +-inf, ``got``
    must equal it; where it is NaN (e.g. GELU(-inf)), anything goes. NaN inputs are
    not compared here (see test_nan_propagates_and_shape_kept).
    """
    got, x = got.double(), x.double()
    assert got.shape == ref.shape, f"{what}: shape {got.shape} != {ref.shape}"
    fin = torch.isfinite(ref) & ~torch.isnan(x)
    bad_fin = fin & ~torch.isfinite(got)
    assert not bad_fin.any(), (
        f"{what} ({dtype}): non-finite where the reference is finite at "
        f"x={x[bad_fin][:6].tolist()}: got {got[bad_fin][:6].tolist()}, "
        f"reference {ref[bad_fin][:6].tolist()}")
    inf = torch.isinf(ref)
    assert torch.equal(got[inf], ref[inf]), f"{what} ({dtype}): wrong infinity"
    finfo = torch.finfo(dtype)
    cond = (x * dref).abs()
    cond = torch.where(torch.isfinite(cond), cond, torch.zeros_like(cond))
    tol = finfo.eps * (ref.abs() + cond) + eps_abs * (1 + x.abs())
    tol = torch.where(torch.isfinite(x), tol, finfo.eps * ref.abs())  # x = +-inf
    tol = factor * tol + finfo.tiny
    err = (got - ref).abs()
    bad = fin & ~(err <= tol)
    assert not bad.any(), (
        f"{what} ({dtype}): {int(bad.sum())} points off by more than the dtype "
        f"tolerance, e.g. x={x[bad][:4].tolist()}: got {got[bad][:4].tolist()}, "
        f"reference {ref[bad][:4].tolist()}")


def check_against_reference(act, ref_fn, dtype, finite_only=False):
    """Values and derivatives of ``act`` against ``ref_fn`` over ``input_grid``."""
    x = input_grid(dtype)
    if finite_only:
        x = x[torch.isfinite(x)]
    y, g = ours(act, x)
    assert y.dtype == dtype and g.dtype == dtype
    r, dr, ddr = reference(ref_fn, x)
    value_eps = torch.finfo(torch.float64 if dtype == torch.float64 else torch.float32)
    assert_close_to_reference(y, r, dr, x, dtype, "value", value_eps.eps)
    # d/dx at a NaN input is not compared: torch's ELU backward returns 1 there
    assert_close_to_reference(g, dr, ddr, x, dtype, "gradient",
                              torch.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize(("name", "params", "ref_fn"), CASES, ids=CASE_IDS)
def test_values_and_gradients_match_torch(name, params, ref_fn, dtype):
    check_against_reference(af.get_activation(name, **params), ref_fn, dtype)
    # torch's own implementation in this dtype meets the same tolerance (at finite x:
    # torch's float32 GELU returns NaN at +inf where its float64 GELU returns inf)
    check_against_reference(ref_fn, ref_fn, dtype, finite_only=True)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("name", ALL_NAMES)
def test_nan_propagates_and_shape_kept(name, dtype):
    act = af.get_activation(name)
    x = torch.tensor([[math.nan, 1.0, -2.0], [0.5, math.nan, 3.0]], dtype=dtype)
    y = act(x)
    assert y.shape == x.shape and y.dtype == dtype
    assert torch.equal(torch.isnan(y), torch.isnan(x))


@pytest.mark.parametrize(("name", "limit_low", "limit_high"), [
    ("sigmoid", 0.0, 1.0), ("tanh", -1.0, 1.0), ("relu", 0.0, math.inf),
    ("elu", -1.0, math.inf), ("selu", -A.SELU.ALPHA * A.SELU.SCALE, math.inf),
    ("softplus", 0.0, math.inf), ("leakyrelu", -math.inf, math.inf),
])
def test_limits_at_infinity(name, limit_low, limit_high):
    x = torch.tensor([-math.inf, math.inf], dtype=torch.float64)
    y = af.get_activation(name)(x)
    assert y.tolist() == pytest.approx([limit_low, limit_high])


def test_no_overflow_at_extreme_finite_inputs():
    """Huge finite inputs of each dtype: finite values and gradients wherever the
    function and its derivative are finite there.

    Known limit (beyond the -1e4..1e4 of the spec): Mish's gradient is NaN for
    x >= finfo.max / 2 (32752 in float16), where x times dtanh/dm = -2 overflows in
    backward; torch's F.mish returns 1 there.
    """
    for dtype in DTYPES:
        big = torch.finfo(dtype).max / 4
        x = torch.tensor([-big, -1e4, 1e4, big], dtype=dtype)
        for name in ["sigmoid", "tanh", "elu", "selu", "softplus", "swish", "mish",
                     "gelu"]:
            y, g = ours(af.get_activation(name), x)
            assert torch.isfinite(g).all(), (name, dtype, g)
            assert torch.isfinite(y[:3]).all(), (name, dtype, y)


# ---------------------------------------------------------------------------------
# The course's formulas overflow; ours do not. Running the same checks on the
# course's code proves that the checks above can fail.


class CourseSigmoid(nn.Module):
    def forward(self, x):
        return 1 / (1 + torch.exp(-x))


class CourseTanh(nn.Module):
    def forward(self, x):
        x_exp, neg_x_exp = torch.exp(x), torch.exp(-x)
        return (x_exp - neg_x_exp) / (x_exp + neg_x_exp)


class CourseELU(nn.Module):
    def forward(self, x):
        return torch.where(x > 0, x, torch.exp(x) - 1)


def test_course_tanh_overflows_ours_does_not():
    x = torch.tensor([100.0, -100.0, 1e4])
    assert torch.isnan(CourseTanh()(x)).all()  # inf / inf
    assert af.Tanh()(x).tolist() == [1.0, -1.0, 1.0]
    with pytest.raises(AssertionError, match="non-finite where the reference"):
        check_against_reference(CourseTanh(), torch.tanh, torch.float32)
    check_against_reference(af.Tanh(), torch.tanh, torch.float32)


def test_course_elu_has_nan_gradients_ours_does_not():
    x = torch.tensor([100.0, 1e4])
    y, g = ours(CourseELU(), x)
    assert torch.equal(y, x)  # the value is right ...
    assert torch.isnan(g).all()  # ... but 0 * exp(x) = 0 * inf = NaN in backward
    assert ours(af.ELU(), x)[1].tolist() == [1.0, 1.0]
    with pytest.raises(AssertionError, match="gradient.*non-finite"):
        check_against_reference(CourseELU(), F.elu, torch.float32)


def test_course_sigmoid_has_nan_gradients_ours_does_not():
    x = torch.tensor([-100.0, -1e4])
    assert torch.isnan(ours(CourseSigmoid(), x)[1]).all()  # -0 * inf in backward
    grad = ours(af.Sigmoid(), x)[1]
    assert grad[0].item() == pytest.approx(math.exp(-100), rel=1e-3)  # subnormal
    assert grad[1].item() == 0.0
    with pytest.raises(AssertionError, match="gradient.*non-finite"):
        check_against_reference(CourseSigmoid(), torch.sigmoid, torch.float32)


def test_tolerance_rejects_an_approximation():
    """The tanh approximation of GELU (error ~1e-3) is not within float32 tolerance."""
    with pytest.raises(AssertionError, match="off by more than"):
        check_against_reference(
            nn.GELU(approximate="tanh"), F.gelu, torch.float32)


# ---------------------------------------------------------------------------------
# Written from the formula, not torch's built-in of the same name

BUILTIN = re.compile(
    r"\bF\.|functional|torch\.special\.expit|"
    r"\.(sigmoid|tanh|relu|relu_|leaky_relu|elu|selu|celu|silu|mish|gelu|softplus|"
    r"logsigmoid|hardtanh|hardswish)\s*\(|"
    r"\bnn\.(Sigmoid|Tanh|ReLU|LeakyReLU|ELU|SELU|SiLU|Mish|GELU|Softplus)\b")


def forward_sources(cls, module=A):
    """Source of the formula methods ``cls`` defines (``value``, ``derivative`` or
    ``forward``) and of every module-level function they call (deep)."""
    sources, seen = [], set()
    todo = [vars(cls)[m] for m in ("forward", "value", "derivative") if m in vars(cls)]
    while todo:
        fn = todo.pop()
        if fn in seen:
            continue
        seen.add(fn)
        src = inspect.getsource(fn)
        sources.append(src)
        for node in ast.walk(ast.parse(inspect.cleandoc("\n" + src))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                target = getattr(module, node.func.id, None)
                if inspect.isfunction(target) and target.__module__ == module.__name__:
                    todo.append(target)
    return sources


def builtin_calls(cls, module=A):
    return [m.group(0) for src in forward_sources(cls, module)
            for m in BUILTIN.finditer(src)]


@pytest.mark.parametrize("name", ALL_NAMES)
def test_forward_does_not_call_torch_builtin(name):
    cls = af.ACTIVATIONS[name]
    assert "value" in vars(cls), f"{cls.__name__} must write its own formula"
    assert "forward" not in vars(cls)  # the base class's forward applies the formula
    assert builtin_calls(cls) == []


def test_builtin_check_can_fail():
    import sys

    class Cheating(af.ActivationFunction):
        def forward(self, x):
            return helper(x) + x.tanh()

    def helper(x):
        return F.relu(x)

    this = sys.modules[__name__]
    this.helper = helper
    try:
        found = builtin_calls(Cheating, module=this)
    finally:
        del this.helper
    assert ".tanh(" in found and "F." in found
    assert builtin_calls(CourseSigmoid) == []  # exp-based: allowed
    assert builtin_calls(type("S", (), {"forward": lambda s, x: torch.sigmoid(x)}))


# ---------------------------------------------------------------------------------
# Modules, configs, registry


def test_registry_names_and_order():
    assert af.act_fn_by_name is af.ACTIVATIONS
    assert list(af.ACTIVATIONS) == ALL_NAMES  # the course's six first
    assert tuple(COURSE_SIX) == af.COURSE_ACTIVATIONS
    for key, cls in af.ACTIVATIONS.items():
        assert key == key.lower() == cls.__name__.lower()
        assert issubclass(cls, af.ActivationFunction)
        assert issubclass(cls, nn.Module)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_name_and_config_round_trip(name):
    act = af.ACTIVATIONS[name]()
    assert act.name == type(act).__name__
    assert act.config["name"] == act.name
    rebuilt = af.activation_from_config(json.loads(json.dumps(act.config)))
    assert type(rebuilt) is type(act) and rebuilt.config == act.config
    x = torch.linspace(-5, 5, 101)
    assert torch.equal(rebuilt(x), act(x))


@pytest.mark.parametrize(("cls", "params"), [
    (af.LeakyReLU, {"alpha": 0.1}), (af.ELU, {"alpha": 1.0}), (af.Swish, {"beta": 1.0}),
    (af.Softplus, {"beta": 1.0}),
])
def test_default_parameters(cls, params):
    assert cls().config == {"name": cls.__name__, **params}


def test_parameters_are_stored_and_used():
    act = af.get_activation("LeakyReLU", alpha=0.25)
    assert act.config == {"name": "LeakyReLU", "alpha": 0.25}
    assert act(torch.tensor([-4.0])).item() == -1.0
    assert "alpha=0.25" in repr(act)
    assert af.activation_from_config({"name": "ELU", "alpha": 2}).config["alpha"] == 2.0


@pytest.mark.parametrize("spelling", ["relu", "ReLU", "RELU", " relu "])
def test_get_activation_any_case(spelling):
    assert type(af.get_activation(spelling)) is af.ReLU


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError, match="unknown activation 'sigmoidal'") as info:
        af.get_activation("sigmoidal")
    for name in ALL_NAMES:
        assert name in str(info.value)
    with pytest.raises(ValueError, match="valid names"):
        af.activation_from_config({"name": "Swoosh"})
    with pytest.raises(TypeError, match="must be a string"):
        af.get_activation(3)


@pytest.mark.parametrize(("name", "params", "words"), [
    ("relu", {"alpha": 0.1}, "alpha"),  # ReLU takes no parameter
    ("leakyrelu", {"alpha": -0.1}, ">= 0"),
    ("leakyrelu", {"alpha": "0.1"}, "real number"),
    ("elu", {"alpha": math.nan}, "finite"),
    ("swish", {"beta": True}, "real number"),
    ("softplus", {"beta": 0}, ">="),
    ("swish", {"gamma": 1.0}, "gamma"),
])
def test_bad_parameter_raises(name, params, words):
    with pytest.raises(ValueError, match=re.escape(words)) as info:
        af.get_activation(name, **params)
    assert af.ACTIVATIONS[name].__name__ in str(info.value)


def test_bad_config_raises():
    for bad in [None, "relu", {"alpha": 0.1}]:
        with pytest.raises(ValueError, match="'name' key"):
            af.activation_from_config(bad)


# ---------------------------------------------------------------------------------
# get_grads


@pytest.mark.parametrize(("name", "params", "ref_fn"), CASES, ids=CASE_IDS)
def test_get_grads_is_the_derivative(name, params, ref_fn):
    x = torch.linspace(-6, 6, 240).reshape(3, 80, 1)  # any shape
    grads = af.get_grads(af.get_activation(name, **params), x)
    assert grads.shape == x.shape
    _, dref, _ = reference(ref_fn, x)
    torch.testing.assert_close(grads.double(), dref, rtol=1e-5, atol=1e-6)


def test_get_grads_leaves_input_alone_and_works_under_no_grad():
    x = torch.tensor([-1.0, 0.5, 2.0])
    with torch.no_grad():
        grads = af.get_grads(af.Sigmoid(), x)
    s = torch.sigmoid(x)
    torch.testing.assert_close(grads, s * (1 - s))
    assert x.grad is None and not x.requires_grad
    assert af.get_grads(af.ReLU(), x).tolist() == [0.0, 1.0, 1.0]


def test_functional_forms():
    x = torch.linspace(-50, 50, 1001, dtype=torch.float64)
    torch.testing.assert_close(af.sigmoid(x), torch.sigmoid(x))
    torch.testing.assert_close(af.tanh(x), torch.tanh(x))
    torch.testing.assert_close(af.softplus(x, beta=3.0), _softplus_ref(3.0)(x))


# ---------------------------------------------------------------------------------
# Hand-written derivatives


WITH_DERIVATIVE = [n for n in ALL_NAMES if af.ACTIVATIONS[n].derivative is not None]


def test_the_smooth_and_piecewise_functions_write_their_derivative():
    assert set(WITH_DERIVATIVE) == {"sigmoid", "tanh", "elu", "selu", "softplus",
                                    "swish", "gelu", "mish"}


@pytest.mark.parametrize("name", ["swish", "gelu", "mish"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32,
                                   torch.float64])
def test_products_with_a_vanishing_factor_are_finite_at_infinity(name, dtype):
    """x * sigma(x), x * Phi(x), x * tanh(softplus(x)) at x = -inf are their limit 0
    (not -inf * 0 = NaN), and every gradient at +-inf is finite (their limits: 0 at
    -inf, 1 at +inf)."""
    x = torch.tensor([-math.inf, math.inf], dtype=dtype, requires_grad=True)
    y = af.get_activation(name)(x)
    (g,) = torch.autograd.grad(y.sum(), x)
    assert y.tolist() == [0.0, math.inf]
    assert g.tolist() == [0.0, 1.0]


@pytest.mark.parametrize("name", ALL_NAMES)
@pytest.mark.parametrize("dtype", [torch.uint8, torch.int32, torch.int64, torch.bool])
def test_integer_and_bool_inputs_are_computed_in_floating_point(name, dtype):
    """As torch.sigmoid does: 1 as uint8 gives sigma(1) = 0.73, not 0."""
    x = torch.tensor([0, 1], dtype=dtype)
    y = af.get_activation(name)(x)
    assert y.dtype == torch.get_default_dtype()
    ref = af.get_activation(name)(x.to(torch.get_default_dtype()))
    assert torch.equal(y, ref)


def test_non_tensors_and_complex_tensors_are_refused_clearly():
    with pytest.raises(TypeError, match="expects a torch.Tensor"):
        af.ReLU()([1.0, 2.0])
    with pytest.raises(TypeError, match="real numbers"):
        af.Sigmoid()(torch.tensor([1 + 1j]))


DERIVATIVE_CASES = [(i, c) for i, c in zip(CASE_IDS, CASES) if c[0] in WITH_DERIVATIVE]


@pytest.mark.parametrize(("name", "params", "ref_fn"), [c for _, c in DERIVATIVE_CASES],
                         ids=[i for i, _ in DERIVATIVE_CASES])
def test_derivative_is_differentiable_again(name, params, ref_fn):
    """create_graph=True through the hand-written derivative gives the second
    derivative (its formula is made of differentiable tensor operations)."""
    x = torch.linspace(-8, 8, 321, dtype=torch.float64)
    x = x[x != 0]  # ELU/SELU: f'' jumps at 0
    _, _, ddref = reference(ref_fn, x)
    x = x.clone().requires_grad_()
    (g,) = torch.autograd.grad(af.get_activation(name, **params)(x).sum(), x,
                               create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), x)
    torch.testing.assert_close(h, ddref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("name", WITH_DERIVATIVE)
def test_derivative_method_matches_autograd_of_value(name):
    """derivative(x, value(x)) against autograd of value's own operations, where
    those are finite (moderate x)."""
    act = af.get_activation(name)
    x = torch.linspace(-10, 10, 401, dtype=torch.float64)
    x = x[x != 0].requires_grad_()
    (auto,) = torch.autograd.grad(act.value(x).sum(), x)
    with torch.no_grad():
        formula = act.derivative(x, act.value(x))
    assert formula.dtype == x.dtype
    torch.testing.assert_close(formula, auto, rtol=1e-12, atol=1e-15)


def test_elu_gradient_is_exact_in_the_far_negative_tail():
    """alpha e^x, not (e^x - 1) + 1 rounded: nonzero down to e^x's underflow."""
    for dtype, x0 in [(torch.float64, -700.0), (torch.float32, -80.0)]:
        x = torch.tensor([-20.0, -40.0, x0], dtype=dtype)
        for act, scale in [(af.ELU(alpha=0.5), 0.5),
                           (af.SELU(), af.SELU.SCALE * af.SELU.ALPHA)]:
            g = af.get_grads(act, x)
            torch.testing.assert_close(g, scale * torch.exp(x), rtol=1e-5, atol=0)
            assert (g > 0).all()


@pytest.mark.parametrize("name", WITH_DERIVATIVE)
def test_written_derivatives_keep_relative_precision_in_the_tails(name):
    """In float32, over [-100, 100], every written derivative is within 1e-5 of the
    float64 one, relative, wherever that is a normal float32 number: no derivative
    rounds to 0 or loses its digits in a saturated tail (as sigma (1 - sigma) and
    1 - tanh^2 do: 0 from x = 17 and |x| = 9.1)."""
    act = af.get_activation(name)
    x = torch.linspace(-100, 100, 20001)
    if name in ("swish", "gelu", "mish"):
        # f' = (a factor) + x (its slope) is 0 near x = -1 (a minimum of f): there the
        # two terms cancel and no float32 formula keeps relative digits; the tails are
        # |x| >= 3
        x = x[x.abs() >= 3]
    exact = af.get_grads(act, x.double())
    normal = exact.abs() >= torch.finfo(torch.float32).tiny
    got = af.get_grads(act, x).double()
    torch.testing.assert_close(got[normal], exact[normal], rtol=1e-5, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_sigmoid_and_tanh_derivatives_never_exceed_their_maximum(dtype):
    """1/4 and 1, attained at x = 0, are upper bounds after rounding too (the book's
    arguments use them: 0.25 per layer for the sigmoid, no tanh gain above 1)."""
    x = torch.cat([torch.zeros(1, dtype=dtype), torch.linspace(-1, 1, 200_001,
                                                                dtype=dtype)])
    for act, peak in [(af.Sigmoid(), 0.25), (af.Tanh(), 1.0)]:
        g = af.get_grads(act, x)
        assert g[0].item() == peak and g.max().item() == peak


def test_sigmoid_and_tanh_derivatives_in_the_far_tail():
    """Closed forms e^-x and 4 e^-2x (to rounding) where torch's own backward,
    computed from the rounded output, gives 0."""
    x = torch.tensor([17.0, 20.0, -20.0, 40.0])
    for act, exact, builtin in [
            (af.Sigmoid(), torch.exp(-x.abs()), torch.sigmoid),
            (af.Tanh(), 4 * torch.exp(-2 * x.abs()), torch.tanh)]:
        torch.testing.assert_close(af.get_grads(act, x), exact, rtol=1e-6, atol=0)
        assert af.get_grads(builtin, x)[0] == 0  # why the formula matters


def test_user_subclasses_value_only_or_course_style_forward():
    class Square(af.ActivationFunction):
        def value(self, x):
            return x * x

    class CourseStyle(af.ActivationFunction):
        def forward(self, x):
            return x * x * x

    x = torch.tensor([-2.0, 0.5, 3.0])
    assert af.get_grads(Square(), x).tolist() == [-4.0, 1.0, 6.0]
    assert af.get_grads(CourseStyle(), x).tolist() == [12.0, 0.75, 27.0]
    with pytest.raises(NotImplementedError, match="must define value"):
        af.ActivationFunction()(x)


def test_backward_through_a_network_matches_autograd_of_the_values():
    """The hand-written derivatives inside a network: the same weight gradients as
    autograd differentiating each formula's operations (float64, moderate inputs)."""
    torch.manual_seed(0)
    x = torch.randn(16, 784, dtype=torch.float64)
    for name in WITH_DERIVATIVE:
        net = af.BaseNetwork(name).double()
        grads = []
        for plain in (False, True):
            if plain:
                for layer in net.modules():
                    if isinstance(layer, af.ActivationFunction):
                        layer.forward = layer.value
            net.zero_grad()
            net(x).square().sum().backward()
            grads.append([p.grad.clone() for p in net.parameters()])
        for a, b in zip(*grads):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_the_books_add_your_own_solution_runs(capsys):
    """The exercise solution in book/activation_functions.md (a dropdown, not executed
    by the build) runs against the current package and prints True twice."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    text = (Path(__file__).parents[1] / "book" / "activation_functions.md").read_text()
    start = text.index("import torch.nn.functional as F\n\nclass HardSigmoid")
    saved = dict(af.ACTIVATIONS)
    try:  # the solution registers its class
        exec(text[start:text.index("```", start)], {"torch": torch, "af": af})
    finally:
        af.ACTIVATIONS.clear()
        af.ACTIVATIONS.update(saved)
    out = capsys.readouterr().out.split("\n")
    assert out[:2] == ["True", "True"]
    assert out[-2].startswith("largest derivative:")
    assert float(out[-2].split(":")[1]) == pytest.approx(1 / 6)
