"""GitHub Actions workflows, validated offline, and the structure of the deploy.

- every workflow validates against the GitHub workflow schema (check-jsonschema's
  vendored copy) and dependabot.yml against Dependabot's;
- zizmor (``--offline``) reports no security finding;
- the Pages workflow deploys on pushes to main (and manual runs) only, with the
  official Pages actions, least-privilege permissions, and the artifact being the
  folder ``jupyter-book build book`` writes;
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
    assert {p.name for p in FILES} >= {"ci.yml", "pages.yml"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_workflow_matches_schema(path):
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows",
         str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


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


def test_pages_workflow_deploys_the_book():
    workflow = load(WORKFLOWS / "pages.yml")
    assert set(workflow["on"]) == {"push", "workflow_dispatch"}
    assert workflow["on"]["push"] == {"branches": ["main"]}
    build, deploy = workflow["jobs"]["build"], workflow["jobs"]["deploy"]

    assert build["permissions"] == {"contents": "read", "pages": "read"}
    assert deploy["permissions"] == {"pages": "write", "id-token": "write"}
    assert deploy["needs"] == "build"
    assert deploy["environment"]["name"] == "github-pages"
    assert workflow["concurrency"]["cancel-in-progress"] is False

    assert uses(build, "actions/configure-pages")
    runs = "\n".join(s.get("run", "") for s in steps(build))
    assert "jupyter-book build book -W --keep-going" in runs
    [upload] = uses(build, "actions/upload-pages-artifact")
    expected = html_dir().relative_to(ROOT).as_posix()
    assert upload["with"]["path"].strip("./") == expected, (
        f"the artifact is {upload['with']['path']}, the book is built into {expected}")
    [deployment] = uses(deploy, "actions/deploy-pages")
    assert deployment["id"] == "deployment"
    assert "steps.deployment.outputs.page_url" in deploy["environment"]["url"]


@pytest.mark.parametrize("name", ["ci.yml", "pages.yml"])
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
