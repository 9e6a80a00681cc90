"""GitHub Actions workflows, validated offline, and the structure of the deploy.

- every workflow validates against the GitHub workflow schema (check-jsonschema's
  vendored copy) and dependabot.yml against Dependabot's;
- zizmor (``--offline``) reports no security finding;
- every action is pinned to a commit with its release in a comment, the same release
  in every workflow; Dependabot watches the actions, requirements.txt and binder/;
- the Pages workflow deploys on pushes to main (and manual runs) only, with the
  official Pages actions, least-privilege permissions, the book and its PDF, the
  trained networks the chapters used, and the artifact being the folder
  ``jupyter-book build book`` writes;
- the weekly workflow runs the full test suite and the link check, and deploys only
  when both pass;
- pull requests run the README's test command and deploy nothing.
"""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from book_helpers import ROOT, html_dir

WORKFLOWS = ROOT / ".github" / "workflows"
FILES = sorted(WORKFLOWS.glob("*.y*ml"))
BIN = Path(sys.executable).parent
SHA_PIN = re.compile(r"^[\w.-]+/[\w.-]+(/[\w./-]+)?@[0-9a-f]{40}$")


def load(path):
    data = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps(job):
    return job.get("steps", [])


def uses(job, action):
    """The job's steps that use ``action`` (``owner/name``)."""
    return [s for s in steps(job) if s.get("uses", "").split("@")[0] == action]


def test_there_are_workflows():
    assert {p.name for p in FILES} >= {"ci.yml", "pages.yml", "weekly.yml"}


USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*([\w.-]+/[\w./-]+)@([0-9a-f]{40})"
                       r"\s*#\s*v(\d+\.\d+\.\d+)\s*$")


def pinned_actions():
    """``{action: {(sha, version), ...}}`` over every workflow's ``uses:`` lines."""
    pins = {}
    for path in FILES:
        for line in path.read_text().splitlines():
            if re.match(r"^\s*(-\s+)?uses:", line):
                match = USES_LINE.match(line)
                assert match, (f"{path.name}: {line.strip()!r} is not pinned as "
                               "`owner/name@<40-hex commit>  # vX.Y.Z`")
                pins.setdefault(match[1], set()).add((match[2], match[3]))
    return pins


def test_each_action_is_pinned_to_one_release_with_its_version():
    """A release in a comment beside each commit, and one release per action across
    the workflows (Dependabot bumps them together: one group)."""
    pins = pinned_actions()
    assert pins, "no action found"
    for action, releases in pins.items():
        assert len(releases) == 1, f"{action} is pinned to several releases: {releases}"


def test_actions_are_on_node24_majors():
    """The releases checked for this book (issue 16): the first majors of each action
    that run on Node 24 or later. An older major fails here; Dependabot may move on."""
    oldest = {"actions/checkout": 6, "actions/setup-python": 6, "actions/cache": 5,
              "actions/upload-artifact": 6, "actions/configure-pages": 6,
              "actions/upload-pages-artifact": 5, "actions/deploy-pages": 5}
    for action, releases in pinned_actions().items():
        [(_, version)] = releases
        assert action in oldest, f"{action}: not checked yet, add it to this test"
        assert int(version.split(".")[0]) >= oldest[action], (action, version)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_workflow_matches_schema(path):
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
         str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dependabot_watches_actions_python_and_binder():
    config = yaml.safe_load((ROOT / ".github" / "dependabot.yml").read_text())
    watched = {(u["package-ecosystem"], u["directory"]) for u in config["updates"]}
    assert watched >= {("github-actions", "/"), ("pip", "/"), ("pip", "/binder")}


def test_dependabot_matches_schema():
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.dependabot",
         str(ROOT / ".github" / "dependabot.yml")], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_zizmor_finds_nothing():
    result = subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--persona", "pedantic", "--format", "json",
         str(ROOT / ".github")], capture_output=True, text=True)
    findings = json.loads(result.stdout or "[]")
    summary = [(f["ident"], f["desc"]) for f in findings]
    assert result.returncode == 0 and not findings, (
        f"zizmor findings: {summary}\n{result.stderr[-3000:]}")


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_actions_pinned_and_checkout_without_credentials(path):
    for name, job in load(path)["jobs"].items():
        for step in steps(job):
            if "uses" in step:
                assert SHA_PIN.match(step["uses"]), (
                    f"{path.name}:{name}: {step['uses']} is not pinned to a commit")
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_least_privilege_and_concurrency(path):
    workflow = load(path)
    assert workflow.get("permissions") == {}, "top-level permissions must be {}"
    assert workflow.get("concurrency", {}).get("group")
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, f"{path.name}:{name} sets no permissions"
        assert job.get("timeout-minutes"), f"{path.name}:{name} has no timeout"


def run_lines(job):
    """The job's ``run:`` commands, one line each (continuations joined)."""
    return [line.strip() for step in steps(job)
            for line in step.get("run", "").replace("\\\n", " ").splitlines()
            if line.strip()]


def index_of(lines, text):
    """Position of the first line containing ``text``."""
    return next(i for i, line in enumerate(lines) if text in line)


def check_deploy_job(deploy):
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["environment"]["name"] == "github-pages"
    [deployment] = uses(deploy, "actions/deploy-pages")
    assert deployment["id"] == "deployment"
    assert "steps.deployment.outputs.page_url" in deploy["environment"]["url"]


def check_publishes_site(job):
    """Stamp, clean builds (book, PDF), prune, publish networks, upload the site."""
    lines = run_lines(job)
    stamp = index_of(lines, "touch ")
    stamp_file = lines[stamp].split("touch ", 1)[1]
    builds = ("jupyter-book build book -W --keep-going", "make pdf", "make test")
    built = [index_of(lines, cmd) for cmd in builds if any(cmd in x for x in lines)]
    prune = index_of(lines, "-m actfns runs prune --unused-since")
    publish = index_of(lines, "-m actfns runs publish")
    assert stamp < min(built) and max(built) < prune < publish, lines
    assert lines[prune].endswith(f"--unused-since {stamp_file}"), lines[prune]
    expected = html_dir().relative_to(ROOT).as_posix()
    assert lines[publish].endswith(f"runs publish {expected}/networks"), lines[publish]
    [upload] = uses(job, "actions/upload-pages-artifact")
    assert upload["with"]["path"].strip("./") == expected, (
        f"the artifact is {upload['with']['path']}, the book is built into {expected}")
    names = [s.get("uses", s.get("run", "")) for s in steps(job)]
    assert names.index(upload["uses"]) == len(names) - 1, "upload the site last"


def test_pages_workflow_deploys_the_book():
    workflow = load(WORKFLOWS / "pages.yml")
    assert set(workflow["on"]) == {"push", "workflow_dispatch"}
    assert workflow["on"]["push"] == {"branches": ["main"]}
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]

    assert build["permissions"] == {"contents": "read", "pages": "read"}
    assert deploy["needs"] == "build"
    check_deploy_job(deploy)
    assert workflow["concurrency"]["cancel-in-progress"] is False

    assert uses(build, "actions/configure-pages")
    lines = run_lines(build)
    assert "make latex" in lines, "TeX Live for the PDF"
    assert index_of(lines, "jupyter-book build book -W --keep-going") < index_of(
        lines, "make pdf")
    check_publishes_site(build)


def test_weekly_workflow_tests_checks_links_and_deploys_only_when_clean():
    workflow = load(WORKFLOWS / "weekly.yml")
    assert set(workflow["on"]) == {"schedule", "workflow_dispatch"}
    [cron] = workflow["on"]["schedule"]
    minute, hour, day, month, weekday = cron["cron"].split()
    assert (day, month) == ("*", "*") and weekday.isdigit(), "once a week"
    test, deploy = workflow["jobs"]["test"], workflow["jobs"]["deploy"]
    lines = run_lines(test)
    assert "make latex" in lines
    assert index_of(lines, readme_test_command()) < index_of(lines, "make linkcheck")
    check_publishes_site(test)
    assert deploy["needs"] == "test"  # runs only if every test step passed
    check_deploy_job(deploy)
    assert deploy["concurrency"] == {"group": load(WORKFLOWS / "pages.yml")[
        "concurrency"]["group"], "cancel-in-progress": False}, (
        "one deployment at a time, with the Pages workflow's")
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^linkcheck:\n\t.*--builder linkcheck -W", makefile, re.M)


@pytest.mark.parametrize("name", ["ci.yml", "pages.yml", "weekly.yml"])
def test_caches_and_cpu_only_torch(name):
    workflow = load(WORKFLOWS / name)
    job = workflow["jobs"]["build" if name == "pages.yml" else "test"]
    [python] = uses(job, "actions/setup-python")
    assert python["with"]["cache"] == "pip"
    cached = {s["with"]["path"] for s in uses(job, "actions/cache")}
    assert cached == {"~/.cache/actfns/data", "~/.cache/actfns/checkpoints"}
    install = next(s["run"] for s in steps(job) if "pip install" in s.get("run", ""))
    assert "--index-url https://download.pytorch.org/whl/cpu" in install
    assert install.index("whl/cpu") < install.index("make setup"), (
        "CPU torch must be installed before requirements.txt")


def test_pull_requests_test_and_never_deploy():
    workflow = load(WORKFLOWS / "ci.yml")
    assert "pull_request" in workflow["on"]
    for name, job in workflow["jobs"].items():
        assert not uses(job, "actions/deploy-pages")
        assert not uses(job, "actions/upload-pages-artifact")
        assert set(job["permissions"].values()) <= {"read"}, name
    runs = [s.get("run", "") for s in steps(workflow["jobs"]["test"])]
    assert readme_test_command() in runs
    lines = run_lines(workflow["jobs"]["test"])
    assert index_of(lines, "touch ") < index_of(lines, "make test") < index_of(
        lines, "-m actfns runs prune --unused-since"), "prune after a clean test run"


def readme_test_command():
    """The command of the README's "make test" block (the test command)."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    return next(b.strip() for b in blocks if b.strip().startswith("make test"))


def test_ci_runs_the_readme_test_command():
    script = (ROOT / ".ci" / "run").read_text()
    assert script.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in script
    assert re.search(rf"^{re.escape(readme_test_command())}$", script, re.M)
    for package in ("dataset-fashion-mnist", "chromium"):
        assert package in script
    assert re.search(r"^make latex$", script, re.M), "TeX Live for the PDF"


def test_latex_packages_are_debians_and_cover_the_pdf_test():
    """`make latex` installs TeX Live (XeLaTeX, latexmk) and poppler-utils from the
    distribution; `make test` and `make book` depend on it."""
    makefile = (ROOT / "Makefile").read_text()
    packages = re.search(r"^LATEX_PACKAGES := ((?:.*\\\n)*.*)$", makefile, re.M)[1]
    packages = set(packages.replace("\\\n", " ").split())
    assert {"texlive-xetex", "latexmk", "poppler-utils"} <= packages
    assert re.search(r"^test: .*\blatex\b", makefile, re.M)
    assert re.search(r"^book: .*\blatex\b", makefile, re.M)
