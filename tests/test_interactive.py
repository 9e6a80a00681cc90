"""The activation explorer (actfns.interactive): the live widget without a frontend,
the precomputed grids, the object's three views, and the static HTML explorer in a
real browser (headless Chromium, the page opened from a file; no network)."""

import base64
import json
import re

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

import actfns as af  # noqa: E402
from actfns import interactive  # noqa: E402

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def test_explorer_figure_shows_the_parameter():
    fig = interactive.explorer_figure("leakyrelu", 0.3)
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["LeakyReLU, alpha=0.3"]
    plt.close(fig)


@pytest.mark.parametrize("name, value, match", [
    ("relu", 0.1, "no explorer for 'relu'"),
    ("elu", -1.0, "alpha must be >= 0"),
])
def test_explorer_figure_rejects_bad_input(name, value, match):
    with pytest.raises(ValueError, match=match):
        interactive.explorer_figure(name, value)


def test_widget_redraws_once_per_change(monkeypatch):
    calls = []
    monkeypatch.setattr(interactive, "explorer_figure",
                        lambda name, value, x=None: calls.append((name, value)))
    box = interactive.explorer_widget()
    choice, slider = box.children[0].children
    assert calls == [("leakyrelu", 0.1)]

    slider.value = 0.3
    assert calls[-1] == ("leakyrelu", 0.3) and len(calls) == 2

    choice.value = "swish"  # slider takes Swish's range and default
    assert calls[-1] == ("swish", 1.0) and len(calls) == 3
    assert (slider.description, slider.min, slider.max) == ("beta", 0.0, 5.0)

    choice.value = "elu"
    assert calls[-1] == ("elu", 1.0) and len(calls) == 4
    assert (slider.description, slider.min, slider.max) == ("alpha", 0.0, 3.0)


@pytest.mark.parametrize("name", list(interactive.EXPLORER_PARAMS))
def test_grid_holds_the_package_values_for_every_parameter(name):
    param, low, high, default = interactive.EXPLORER_PARAMS[name]
    grid = interactive.explorer_grid(name)
    assert grid["param"] == param and grid["default"] == default
    assert grid["values"][0] == low and grid["values"][-1] == pytest.approx(high)
    assert default in grid["values"]
    assert len(grid["f"]) == len(grid["df"]) == len(grid["values"])
    x = torch.tensor(grid["x"])
    for k in (0, len(grid["values"]) // 2, len(grid["values"]) - 1):
        act = af.get_activation(name, **{param: grid["values"][k]})
        with torch.no_grad():
            assert torch.allclose(torch.tensor(grid["f"][k]), act(x), atol=1e-4)
        assert torch.allclose(torch.tensor(grid["df"][k]), af.get_grads(act, x),
                              atol=1e-4)
    json.dumps(grid)  # ready for the page


@pytest.mark.parametrize("name, step, match", [
    ("relu", 0.1, "no explorer for 'relu'"),
    ("elu", 0.0, "step must be positive"),
    ("elu", 0.7, "does not divide"),
])
def test_grid_rejects_bad_input(name, step, match):
    with pytest.raises(ValueError, match=match):
        interactive.explorer_grid(name, step)


def test_html_needs_a_grid():
    with pytest.raises(ValueError, match="at least one grid"):
        interactive.explorer_html([])


def test_explorer_offers_widget_html_and_png():
    explorer = af.activation_explorer()
    data, metadata = explorer._repr_mimebundle_()
    assert {"text/plain", "text/html", "image/png", WIDGET_VIEW} <= set(data)
    assert data[WIDGET_VIEW]["model_id"] == explorer.widget.model_id
    png = base64.b64decode(data["image/png"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width_px = int.from_bytes(png[16:20], "big")
    assert width_px >= 1.9 * metadata["image/png"]["width"]  # retina
    html = data["text/html"]
    assert html.count('class="actfns-explorer"') == 1
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), (
        "the static explorer must not load anything")
    payload = re.search(r'<script type="application/json">(.*?)</script>', html, re.S)
    grids = json.loads(payload[1].replace("<\\/", "</"))
    assert [g["name"] for g in grids] == list(interactive.EXPLORER_PARAMS)


def test_explorer_without_ipywidgets_keeps_html(monkeypatch):
    def no_widgets(x=None):
        raise ImportError("No module named 'ipywidgets'")

    monkeypatch.setattr(interactive, "explorer_widget", no_widgets)
    data, _ = af.activation_explorer()._repr_mimebundle_()
    assert WIDGET_VIEW not in data and "text/html" in data


def test_two_explorers_have_distinct_ids():
    ids = [re.search(r'id="(actfns-explorer-[^"]+)"', interactive.explorer_html(
        [interactive.explorer_grid("elu")]))[1] for _ in range(2)]
    assert ids[0] != ids[1]


@pytest.mark.slow  # starts Chromium
def test_static_explorer_in_a_browser(tmp_path, browser):
    page_file = tmp_path / "explorer.html"
    page_file.write_text("<!doctype html><html><body>"
                         + af.activation_explorer().html() + "</body></html>")
    problems = []
    context = browser.new_context()
    try:
        context.route("**/*", lambda route: route.continue_()
                      if route.request.url.startswith("file://")
                      else (problems.append(route.request.url), route.abort()))
        page = context.new_page()
        page.on("pageerror", lambda err: problems.append(f"page error: {err}"))
        page.on("console", lambda msg: msg.type == "error"
                and problems.append(f"console: {msg.text}"))
        page.goto(page_file.as_uri())
        root = page.locator(".actfns-explorer")
        title = root.locator("text.title")
        curve = root.locator("path.f")
        assert title.text_content() == "LeakyReLU, alpha=0.1"
        before = curve.get_attribute("d")
        root.locator("input[type=range]").fill("0.5")
        assert title.text_content() == "LeakyReLU, alpha=0.5"
        assert curve.get_attribute("d") != before
        root.locator("select").select_option("swish")
        assert title.text_content() == "Swish, beta=1"
        slider = root.locator("input[type=range]")
        assert (slider.get_attribute("max"), slider.input_value()) == ("5", "1")
    finally:
        context.close()
    assert not problems, problems
