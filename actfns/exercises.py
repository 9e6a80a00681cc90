"""Exercises with feedback: write an activation, and compare it with the package's.

``check_activation(MySigmoid)`` runs the reader's class and the package's activation
of the same name on a grid from -1e4 to 1e4 (and +-inf), in float32 and float64, and
compares values and gradients; it checks that the dtype is kept and that parameters
(LeakyReLU's and ELU's alpha, Swish's beta) are used. It answers in one line, naming
the first problem and a hint, with the details in a table.

What "agrees" means: at every point where the package's value (or gradient) is
finite, the reader's is finite too and within ``ATOL + RTOL * |expected|`` (per
dtype, below): tight enough to catch a wrong formula or a wrong parameter, loose
enough for a different but sound way of writing it. Points where the package gives
NaN are not compared. At x = 0, where ReLU and LeakyReLU have a kink, any gradient
between the one-sided derivatives counts. Two disagreements are notes, not failures,
since no training step depends on them: a NaN at x = +-inf where the package gives
the limit (``-inf * 0`` is NaN; torch's own ``F.silu`` gives it), and a gradient
lost at exactly x = 0 because the formula passes through torch's abs, clamp, ...,
which pass gradient 0 at their kink.
"""

import html
import inspect
import math
from dataclasses import dataclass

import pandas as pd
import torch
from torch.overrides import TorchFunctionMode

from .activations import activation_class, get_grads
from .source import Source

__all__ = ["ActivationCheck", "check_activation", "exercise_stubs", "EXERCISE_STUBS",
           "GRID", "RTOL", "ATOL"]

RTOL = {torch.float32: 1e-4, torch.float64: 1e-9}
"""Relative tolerance per dtype (float32 rounds at about 6e-8, float64 at 1e-16)."""
ATOL = {torch.float32: 1e-6, torch.float64: 1e-12}
"""Absolute tolerance per dtype: near x = 0 a sound formula can lose relative, but
not absolute, precision (e.g. (e^x - e^-x) / (e^x + e^-x) is 0 at x = 1e-8)."""

GRID_TINY = 1e-30  # the one-sided derivatives at 0 are taken at +-GRID_TINY
_EXTREMES = (1e4, 1000, 100, 50, 20, 10, 5, 3, 1e-3, 1e-8, GRID_TINY)
GRID = sorted({0.0, *_EXTREMES, *(-v for v in _EXTREMES),
               *(round(-6 + 0.1 * i, 10) for i in range(121))})
"""Finite inputs: 0, tiny, moderate and extreme values, and -6..6 in steps of 0.1."""

_KINKS = {"abs", "clamp", "clamp_min", "clamp_max", "clip", "relu", "maximum",
          "minimum", "threshold", "sign"}  # torch picks gradient 0 (or 1/2) at x = 0
_PROBES = (0.3, 2.0)  # a parameter is tried at the first that is not its default
_OPS = {"div": "a division", "mul": "a multiplication", "add": "an addition",
        "sub": "a subtraction", "pow": "a power"}  # operator methods share these names


def _op_name(func):
    name = func.__name__
    if name.startswith("__"):  # __rtruediv__ -> truediv
        name = name.strip("_").removeprefix("r").removeprefix("i")
    name = {"truediv": "div", "true_divide": "div", "divide": "div"}.get(name, name)
    return _OPS.get(name, name)


@dataclass(eq=False)
class ActivationCheck:
    """The result of ``check_activation``: ``ok``, a one-line ``message`` and a table.

    ``bool(check)`` is ``check.ok``; in a notebook it shows the line and, folded, the
    table of every check (``details``: columns check, result, problem).
    """

    name: str
    ok: bool
    message: str
    details: pd.DataFrame

    def __bool__(self):
        return self.ok

    def __str__(self):
        return ("✓ " if self.ok else "✗ ") + f"{self.name}: {self.message}"

    def _repr_pretty_(self, printer, cycle):
        printer.text(str(self))

    def _repr_html_(self):
        table = self.details.to_html(index=False, escape=True, border=0)
        return (f"<p><strong>{html.escape(str(self))}</strong></p><details><summary>"
                f"{len(self.details)} checks</summary>{table}</details>")


class _Fail(Exception):
    """A check's verdict: the one-line message."""


def check_activation(act, reference=None):
    """Compare an activation written by the reader with the package's.

    Args:
        act: the reader's class (built with its defaults) or instance; it defines
            ``forward(x)`` (as in the course) or ``value(x)``.
        reference: the activation to agree with: a package class, instance or
            registry name. Default: the package's activation named like ``act``'s
            class (``Sigmoid``, ``LeakyReLU``, ...).

    Returns:
        An ``ActivationCheck`` (``ok``, ``message``, ``details``).

    Raises:
        ValueError: no package activation has ``act``'s class name and no
            ``reference`` is given.
    """
    cls = act if isinstance(act, type) else type(act)
    ref_cls, ref = _reference(cls, reference)
    rows, notes = [], []

    def run(label, check, *args):
        try:
            note = check(*args)
            rows.append((label, "✓", ""))
            if note:
                notes.append(note)
        except _Fail as fail:
            rows.append((label, "✗", str(fail)))

    try:
        mine = act if not isinstance(act, type) else _build(cls, {})
        if ref is None:  # the reader's parameters, e.g. LeakyReLU(alpha=0.2)
            config = getattr(mine, "config", {})
            ref = _build(ref_cls, {k: v for k, v in config.items() if k != "name"})
    except _Fail as fail:
        rows.append(("build", "✗", str(fail)))
    else:
        for dtype in (torch.float32, torch.float64):
            run(f"values, {_dt(dtype)}", _check_values, mine, ref, dtype)
            run(f"gradients, {_dt(dtype)}", _check_grads, mine, ref, dtype)
        for dtype in (torch.float16, torch.bfloat16):
            run(f"dtype, {_dt(dtype)}", _check_dtype_only, mine, dtype)
        for param, probe, default in _probes(ref_cls):
            run(f"{param}={probe:g}", _check_param, cls, ref_cls, param, probe, default)
    details = pd.DataFrame(rows, columns=["check", "result", "problem"])
    failed = details[details["result"] == "✗"]
    if len(failed):
        return ActivationCheck(cls.__name__, False, failed["problem"].iloc[0], details)
    used = "".join(f"; {p} used" for p, _, _ in _probes(ref_cls))
    message = (f"agrees with {_name(ref_cls)} (values and gradients at {len(GRID) + 2} "
               f"points from -inf to inf, float32 and float64; dtype kept{used})"
               + "".join(f". Note: {n}" for n in notes[:1]))
    return ActivationCheck(cls.__name__, True, message, details)


def _reference(cls, reference):
    """(reference class, reference instance or None) for ``check_activation``."""
    if reference is None:
        try:
            return activation_class(cls.__name__), None
        except ValueError:
            raise ValueError(
                f"check_activation: the package has no activation named "
                f"{cls.__name__!r}; name your class like one of the package's "
                "(Sigmoid, Tanh, ReLU, LeakyReLU, ELU, Swish, ...) or pass "
                "reference=af.Sigmoid (say)") from None
    if isinstance(reference, str):
        return activation_class(reference), None
    if isinstance(reference, type):
        return reference, None
    return type(reference), reference


def _name(ref_cls):
    module = ref_cls.__module__
    return f"af.{ref_cls.__name__}" if module.startswith("actfns") else ref_cls.__name__


def _dt(dtype):
    return str(dtype).removeprefix("torch.")


def _build(cls, params):
    """cls(**params), or a _Fail saying what went wrong."""
    call = f"{cls.__name__}({', '.join(f'{k}={v!r}' for k, v in params.items())})"
    try:
        return cls(**params)
    except TypeError as err:
        if len(params) != 1:
            raise _Fail(f"{call} raised TypeError: {err}") from None
        param = next(iter(params))
        raise _Fail(f"does not take {param}: {call} raised TypeError ({err}). Hint: "
                    f"accept {param} in __init__ and use it in forward") from None
    except Exception as err:  # e.g. NotImplementedError in a stub's __init__
        raise _Fail(f"{call} raised {type(err).__name__}: {err}") from None


def _call(act, x):
    """act(x), or a _Fail saying what went wrong (a stub, an error, not a tensor)."""
    if not callable(act):
        raise _Fail("its instances cannot be called: subclass af.ActivationFunction "
                    "(an nn.Module, which calls forward)")
    try:
        out = act(x)
    except NotImplementedError:
        raise _Fail("is not written yet (forward raises NotImplementedError): "
                    "fill it in") from None
    except Exception as err:
        raise _Fail(f"raised {type(err).__name__} for a {_dt(x.dtype)} input of "
                    f"shape {tuple(x.shape)}: {err}") from None
    if out is None:
        raise _Fail("returns None: did forward forget its return?")
    if not isinstance(out, torch.Tensor):
        raise _Fail(f"returns a {type(out).__name__}, not a torch.Tensor: compute "
                    "it with torch operations on x")
    if out.shape != x.shape:
        raise _Fail(f"returns shape {tuple(out.shape)} for input shape "
                    f"{tuple(x.shape)}: an activation works element by element")
    if out.dtype != x.dtype:
        hint = (".float() converts to float32" if out.dtype == torch.float32 else
                "something is float64 (.double(), a float64 tensor or NumPy array)")
        raise _Fail(f"returns {_dt(out.dtype)} for {_dt(x.dtype)} input: {hint}. "
                    "Hint: keep x's dtype (Python numbers for constants, "
                    ".to(x.dtype) for masks)")
    return out


def _grid(dtype):
    finite = torch.tensor(GRID, dtype=torch.float64).to(dtype)
    return torch.cat([finite, torch.tensor([-math.inf, math.inf], dtype=dtype)])


def _close(got, expected, dtype):
    """Where ``got`` agrees with ``expected``, element-wise (see the module's doc)."""
    got, expected = got.double(), expected.double()
    err = (got - expected).abs()
    return (got == expected) | (err <= ATOL[dtype] + RTOL[dtype] * expected.abs())


def _worst(x, bad):
    """The point to report among ``bad``: the smallest |x| >= 1 if any, else the
    smallest |x|; positive first (a message about x = 1 reads better than one about
    x = -0.1)."""
    idx = bad.nonzero().flatten().tolist()
    return min(idx, key=lambda i: (abs(x[i].item()) < 1, abs(x[i].item()), x[i] < 0))


def _compare(mine, what, x, got, expected, ref_cls, dtype, extra=""):
    """Raise a _Fail for the first disagreement of ``what`` (value or gradient);
    return a note for one that only torch's conventions cause (see ``_note``)."""
    bad = expected.isfinite() & ~_close(got, expected, dtype)
    finite = bad & x.isfinite()
    if finite.any():
        note = _note(mine, what, x, got, expected, finite, dtype)
        if note:
            return note
        i = _worst(x, finite)
        xi, g, e = x[i].item(), got[i].item(), expected[i].item()
        at = f"at x = {xi:g} ({_dt(dtype)}){extra}"
        if not math.isfinite(g):
            raise _Fail(f"{what} is {g} {at}: " + _cause(mine, what, xi, dtype))
        others = int(finite.sum()) - 1
        more = f", and at {others} more points" if others else ""
        raise _Fail(f"wrong {what} {at}: got {g:.6g}, expected {e:.6g} "
                    f"({_name(ref_cls)}){more}")
    if bad.any():
        i = bad.nonzero()[0].item()
        return (f"{what} is {got[i].item()} at x = {x[i].item()}, whose limit is "
                f"{expected[i].item():g}; inf * 0 is nan")
    return None


def _note(mine, what, x, got, expected, bad, dtype):
    """A note, instead of a failure, for a gradient wrong only at x = 0 because the
    formula passes through a kink there: torch's abs, clamp, relu, ... pass gradient
    0 at their kink, so autograd loses, at that one point, the gradient of a formula
    such as exp(-|x|) that is smooth there."""
    if what != "gradient" or not (x[bad] == 0).all():
        return None
    i = (x == 0).nonzero()[0].item()
    lost = min(0, expected[i]) <= got[i] <= max(0, expected[i])  # 0 or part of it
    kinks = [op for op in _trace(mine, 0.0, dtype).ops if op in _KINKS]
    if not (lost and kinks):
        return None
    return (f"the gradient at x = 0 is {got[i].item():g}, not {expected[i].item():g}: "
            f"{kinks[0]} passes gradient 0 at its kink (torch's choice); selecting "
            "the branch with torch.where instead keeps it")


def _check_values(mine, ref, dtype):
    x = _grid(dtype)
    with torch.no_grad():
        got, expected = _call(mine, x), ref(x)
    return _compare(mine, "value", x, got, expected, type(ref), dtype)


def _grads(mine, x):
    """d mine(x) / dx element-wise, or a _Fail saying why there is none."""
    x = x.detach().clone().requires_grad_()
    out = _call(mine, x)
    if not out.requires_grad:
        raise _Fail("its output has no gradient: .detach(), .numpy(), "
                    "torch.tensor(...) or .item() cut it from x. Hint: compute it "
                    "with torch operations on x")
    try:
        out.sum().backward()
    except Exception as err:
        raise _Fail(f"backward raised {type(err).__name__}: {err}") from None
    return x.grad


def _check_grads(mine, ref, dtype):
    x = _grid(dtype)
    got = _grads(mine, x)
    expected = _at_kink(x, got, get_grads(ref, x), dtype)
    return _compare(mine, "gradient", x, got, expected, type(ref), dtype)


def _at_kink(x, got, expected, dtype):
    """``expected``, where at x = 0 any value between the one-sided derivatives counts:
    ReLU's and LeakyReLU's kink has no single derivative (torch takes 0 for ReLU,
    ``torch.maximum(x, 0 * x)`` gives 1/2), while ELU with alpha = 1 has one, 1."""
    expected = expected.clone()
    (i,), sides = (x == 0).nonzero()[0].tolist(), expected[x.abs() == GRID_TINY]
    lo, hi = sides.min(), sides.max()
    if lo - ATOL[dtype] <= got[i] <= hi + ATOL[dtype]:
        expected[i] = got[i]
    return expected


def _check_dtype_only(mine, dtype):
    with torch.no_grad():
        _call(mine, torch.tensor([-2.0, 0.0, 0.5, 3.0], dtype=dtype))


def _probes(ref_cls):
    """(parameter, value to try, default) for each numeric parameter of ``ref_cls``."""
    for p in inspect.signature(ref_cls).parameters.values():
        if isinstance(p.default, (int, float)) and not isinstance(p.default, bool):
            yield p.name, next(v for v in _PROBES if v != p.default), p.default


def _check_param(cls, ref_cls, param, probe, default):
    mine = _build(cls, {param: probe})
    ref, ref_default = ref_cls(**{param: probe}), ref_cls(**{param: default})
    x = _grid(torch.float32)
    with torch.no_grad():
        got, expected, usual = _call(mine, x), ref(x), ref_default(x)
    wrong = expected.isfinite() & x.isfinite() & ~_close(got, expected, torch.float32)
    if wrong.any() and _close(got, usual, torch.float32)[wrong].all():
        i = _worst(x, wrong)
        raise _Fail(f"ignores {param}: {cls.__name__}({param}={probe:g}) gives "
                    f"{got[i].item():.4g} at x = {x[i].item():g}, expected "
                    f"{expected[i].item():.4g}. Hint: use the {param} given to "
                    f"__init__ (e.g. self.config['{param}']) in forward, not "
                    f"{default:g}")
    extra = f" with {param}={probe:g}"
    _compare(mine, "value", x, got, expected, ref_cls, torch.float32, extra)
    got = _grads(mine, x)
    expected = _at_kink(x, got, get_grads(ref, x), torch.float32)
    _compare(mine, "gradient", x, got, expected, ref_cls, torch.float32, extra)


class _Trace(TorchFunctionMode):
    """Records the torch operations a forward pass runs (``ops``), the first that
    makes inf or nan from finite inputs (``root``: name, input) and the first that
    makes nan (``nan``)."""

    def __init__(self):
        super().__init__()
        self.ops, self.root, self.nan = [], None, None

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        op = _op_name(func)
        self.ops.append(op)
        if isinstance(out, torch.Tensor) and out.is_floating_point():
            flat = [a for arg in (*args, *(kwargs or {}).values())
                    for a in (arg if isinstance(arg, (list, tuple)) else [arg])]
            inputs = [a for a in flat
                      if isinstance(a, torch.Tensor) and a.is_floating_point()]
            if self.root is None and not out.isfinite().all() and all(
                    a.isfinite().all() for a in inputs):
                self.root = (op, inputs[0].flatten()[0].item() if inputs else None,
                             len(self.ops))
            if self.nan is None and out.isnan().any():
                self.nan = op
        return out


def _trace(act, x, dtype):
    """Run ``act`` at the single point x under a ``_Trace``, and return the trace."""
    trace = _Trace()
    try:
        with trace:
            act(torch.tensor([x], dtype=dtype, requires_grad=True))
    except Exception:  # reported by another check; keep what the trace saw
        pass
    return trace


def _cause(act, what, x, dtype):
    """Why ``act``'s value or gradient is not finite at x, with a hint."""
    trace = _trace(act, x, dtype)
    if trace.root is None:
        return ("an operation is undefined there (0/0, inf - inf, the log of a "
                "negative number, sqrt at 0 in backward). Hint: rewrite the formula "
                "so that each step is defined at this x")
    op, arg, step = trace.root
    if op != "exp" or arg is None:
        given = "" if arg is None else f" for the finite input {arg:g}"
        return (f"{op} gives inf or nan{given}. Hint: rewrite the formula so that no "
                "step overflows or divides by 0 at this x")
    limit = math.log(torch.finfo(dtype).max)
    cause = f"exp({arg:g}) overflows to inf (above {limit:.1f} in {_dt(dtype)})"
    if what == "value":
        return (cause + (f" and {trace.nan} then gives nan" if trace.nan else "")
                + ". Hint: exponentiate only numbers <= 0, e.g. torch.exp(-x.abs())")
    cause += " and backward multiplies that inf by 0"
    if "where" in trace.ops[step:]:
        return (cause + ". Hint: torch.where differentiates both branches; give "
                "the one not taken a safe input: torch.exp(torch.where(x > 0, 0.0, x))")
    return cause + ". Hint: exponentiate only numbers <= 0, e.g. torch.exp(-x.abs())"


EXERCISE_STUBS = '''\
import torch

import actfns as af


class Sigmoid(af.ActivationFunction):
    def forward(self, x):
        # sigma(x) = 1 / (1 + e^-x)
        raise NotImplementedError


class Tanh(af.ActivationFunction):
    def forward(self, x):
        # tanh(x) = (e^x - e^-x) / (e^x + e^-x)
        raise NotImplementedError


class ReLU(af.ActivationFunction):
    def forward(self, x):
        # x where x > 0, else 0
        raise NotImplementedError


class LeakyReLU(af.ActivationFunction):
    def __init__(self, alpha=0.1):
        super().__init__(alpha=alpha)  # kept in self.config["alpha"]

    def forward(self, x):
        # x where x > 0, else alpha * x
        raise NotImplementedError


class ELU(af.ActivationFunction):
    def __init__(self, alpha=1.0):
        super().__init__(alpha=alpha)

    def forward(self, x):
        # x where x > 0, else alpha * (e^x - 1)
        raise NotImplementedError


class Swish(af.ActivationFunction):
    def __init__(self, beta=1.0):
        super().__init__(beta=beta)

    def forward(self, x):
        # x * sigma(beta * x)
        raise NotImplementedError
'''
"""The six activations of the course as stubs to fill in, course-style (``forward``)."""


def exercise_stubs():
    """The exercise stubs (``EXERCISE_STUBS``), displayed as highlighted code."""
    return Source(EXERCISE_STUBS, "actfns.exercises.EXERCISE_STUBS")
