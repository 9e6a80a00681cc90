"""Binder: the image a reader's rocket button starts, and every chapter run as a reader
pressing "Run all" would.

- Each page of ``_toc.yml`` that is a notebook is converted with jupytext and executed
  top to bottom in a fresh kernel, from a fresh empty working folder (slow).
- binder/requirements.txt pins every package itself (no ``-r``/``-e``, so repo2docker
  caches the layer), holds only what readers need (no test or lint tools), matches
  requirements.txt's versions (CPU-only torch of the tested versions), is what
  binder/pin_requirements.py writes, and covers every module the chapters import.
- binder/start sets the thread count from the container's real CPU quota (cgroup v1,
  v2, ``CPU_LIMIT``, affinity: unit-tested on fake cgroup files) and the published
  networks' URL (the Pages site of the repository in ``_config.yml``).
- binder/postBuild, run as repo2docker does: installs actfns, makes JupyterLab open
  MyST markdown as notebooks with the kernel started, fetches FashionMNIST and the
  published networks, and still succeeds when the site is unreachable.
"""

import ast
import importlib.util
import json
import os
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import jupytext
import pytest
import yaml
from book_helpers import (
    ROOT,
    USER_ENV,
    closed_port_url,
    docnames,
    notebook_docnames,
    serve,
    source_of,
)
from conftest import make_blob_data
from packaging.utils import canonicalize_name

import actfns as af

BINDER = ROOT / "binder"
CHAPTERS = notebook_docnames()
TOOLS = {"pytest", "ruff", "zizmor", "playwright", "check-jsonschema"}


def load_binder_module(name):
    """A Python file of binder/ as a module (binder/ is not a package)."""
    spec = importlib.util.spec_from_file_location(f"binder_{name}",
                                                  BINDER / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


cpu_quota = load_binder_module("cpu_quota")


def pins(path):
    """``{name: version}`` (names canonical) for the ``name==version`` lines of a
    requirements file."""
    found = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==(\S+)", line.split("#")[0].strip())
        if m:
            found[canonicalize_name(m[1])] = m[2]
    return found


# ---- the chapters -----------------------------------------------------------------

def test_chapters_are_found():
    """The toc lists executable chapters (tests/test_jupyterlab.py runs each of them
    as a Binder reader does; it is not vacuous)."""
    assert len(CHAPTERS) >= 1, "no executable chapter found from _toc.yml"


@pytest.mark.parametrize("docname", docnames())
def test_every_toc_entry_has_a_source(docname):
    assert source_of(docname).is_file()


# ---- requirements ------------------------------------------------------------------

def test_binder_requirements_pin_every_line_with_no_r_or_e():
    """repo2docker installs binder/requirements.txt before it copies the repository:
    a ``-r ../file`` or ``-e .`` there defeats its layer cache (and ``-e .`` reinstalls
    on every push)."""
    for number, line in enumerate((BINDER / "requirements.txt").read_text()
                                  .splitlines(), 1):
        line = line.split("#")[0].strip()
        if not line:
            continue
        assert not re.match(r"^(-r|--requirement|-e|--editable|-c)\b", line), (
            f"binder/requirements.txt:{number}: {line!r} (pin packages here instead)")
        assert line.startswith("--extra-index-url ") or re.match(
            r"^[A-Za-z0-9_.\-]+==\S+$", line), (
            f"binder/requirements.txt:{number}: {line!r} is not an exact pin")


def test_binder_installs_cpu_torch_of_the_tested_versions():
    top, binder = pins(ROOT / "requirements.txt"), pins(BINDER / "requirements.txt")
    text = (BINDER / "requirements.txt").read_text()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in text
    for name in ("torch", "torchvision"):
        assert binder[name] == f"{top[name]}+cpu", (
            f"binder pins {name}=={binder[name]}, the tested version is {top[name]}")


def test_binder_pins_equal_requirements_pins():
    """Every package both files name has one version (torch's builds aside)."""
    top, binder = pins(ROOT / "requirements.txt"), pins(BINDER / "requirements.txt")
    differ = {name: (top[name], binder[name]) for name in set(top) & set(binder)
              if binder[name].removesuffix("+cpu") != top[name]}
    assert not differ, (
        f"binder/requirements.txt and requirements.txt disagree (requirements.txt, "
        f"binder): {differ}; regenerate with "
        "`.venv/bin/python binder/pin_requirements.py > binder/requirements.txt`")
    missing = sorted(set(binder) - set(top))
    assert not missing, f"binder pins {missing}, which requirements.txt does not pin"


def test_binder_holds_no_test_or_lint_tools():
    found = TOOLS & set(pins(BINDER / "requirements.txt"))
    assert not found, f"binder/requirements.txt installs test/lint tools {found}"


def test_binder_installs_jupyterlab_myst_and_jupytext():
    binder = pins(BINDER / "requirements.txt")
    for name in ("jupyterlab", "jupyterlab-myst", "jupytext", "ipykernel"):
        assert name in binder, f"binder/requirements.txt lacks {name}"


def test_binder_requirements_are_what_the_pin_script_writes():
    """binder/requirements.txt is the closure of actfns and the reader's packages in
    this (requirements.txt's) environment: nothing missing, nothing stale."""
    script = load_binder_module("pin_requirements")
    expected = script.render(script.reader_pins())
    assert (BINDER / "requirements.txt").read_text() == expected, (
        "binder/requirements.txt is out of date: run "
        "`.venv/bin/python binder/pin_requirements.py > binder/requirements.txt`")


def chapter_imports():
    """``{top-level module: [chapters]}`` imported by the chapters' code cells."""
    found = {}
    for docname in CHAPTERS:
        nb = jupytext.read(source_of(docname))
        for cell in nb.cells:
            if cell.cell_type != "code":
                continue
            source = "\n".join(line for line in cell.source.splitlines()
                               if not line.lstrip().startswith(("%", "!")))
            for node in ast.walk(ast.parse(source)):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module] if isinstance(node, ast.ImportFrom)
                         and node.module and not node.level else [])
                for name in names:
                    found.setdefault(name.split(".")[0], set()).add(docname)
    return found


def test_binder_installs_every_module_the_chapters_import():
    imports = chapter_imports()
    assert "actfns" in imports and "torch" in imports, "no chapter imports found"
    binder = set(pins(BINDER / "requirements.txt"))
    owners = packages_distributions()
    missing = {}
    for module, where in sorted(imports.items()):
        if module in sys.stdlib_module_names or module == "actfns":
            continue
        dists = {canonicalize_name(d) for d in owners.get(module, [])}
        if not dists & binder:
            missing[module] = sorted(where)
    assert not missing, (
        f"the chapters import modules binder/requirements.txt does not install "
        f"(module: chapters): {missing}")


def test_requirements_install_the_package_with_its_extras():
    text = (ROOT / "requirements.txt").read_text()
    extras = re.search(r"^-e \.\[([\w,]+)\]$", text, re.M)
    assert extras, "requirements.txt must install actfns itself (-e .[extras])"
    assert {"book", "test"} <= set(extras[1].split(",")), extras[0]
    assert pins(ROOT / "requirements.txt")["jupyter-book"].startswith("1.")


def test_requirements_pin_the_tested_environment():
    """Every package actfns[book,test] needs is pinned, at the installed version."""
    result = subprocess.run([sys.executable, str(ROOT / ".ci" / "pin_requirements.py")],
                            capture_output=True, text=True, check=True)
    wanted = {canonicalize_name(k): v for k, v in (
        line.split("==") for line in result.stdout.splitlines() if "==" in line)}
    pinned = pins(ROOT / "requirements.txt")
    missing = sorted(set(wanted) - set(pinned))
    assert not missing, f"requirements.txt lacks {missing}"
    differ = {k: (pinned[k], v) for k, v in wanted.items() if pinned[k] != v}
    assert not differ, (
        f"requirements.txt pins differ from this environment (pinned, installed): "
        f"{differ}; run `.venv/bin/python .ci/pin_requirements.py > requirements.txt`")


def test_binder_python_is_the_ci_python():
    runtime = (BINDER / "runtime.txt").read_text().strip()
    workflow = (ROOT / ".github" / "workflows" / "ci.yml").read_text()
    version = re.search(r"python-version:\s*\"?([\d.]+)", workflow)[1]
    assert runtime == f"python-{version}"


# ---- the CPU quota (binder/cpu_quota.py) on fake cgroup files ------------------------

def fake_cgroup(tmp_path, cgroup, mountinfo, files):
    """``/proc/self/cgroup`` and ``mountinfo`` texts and a cgroup tree under
    ``tmp_path/sys``; mount points in ``mountinfo`` are written as ``SYS/...``."""
    sys_dir = tmp_path / "sys"
    for rel, text in files.items():
        path = sys_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (tmp_path / "cgroup").write_text(cgroup)
    (tmp_path / "mountinfo").write_text(mountinfo.replace("SYS", str(sys_dir)))
    return dict(cgroup_file=tmp_path / "cgroup", mountinfo_file=tmp_path / "mountinfo")


V2_NS = "1 0 0:26 / SYS/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n"
V1_NS = ("30 25 0:27 / SYS/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup "
         "rw,cpu,cpuacct\n"
         "31 25 0:28 / SYS/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n")


@pytest.mark.parametrize("cpu_max, affinity, expected", [
    ("100000 100000", 64, (1, "cgroup quota 1 CPUs")),
    ("150000 100000", 64, (2, "cgroup quota 1.5 CPUs")),
    ("50000 100000", 64, (1, "cgroup quota 0.5 CPUs")),
    ("max 100000", 64, (64, "affinity")),
    ("400000 100000", 2, (2, "affinity")),
])
def test_quota_cgroup_v2_in_a_namespace(tmp_path, cpu_max, affinity, expected):
    files = fake_cgroup(tmp_path, "0::/\n", V2_NS, {"fs/cgroup/cpu.max": cpu_max})
    assert cpu_quota.cpu_limit(**files, environ={}, affinity=affinity) == expected


def test_quota_cgroup_v2_nested_path_and_a_smaller_parent_limit(tmp_path):
    """Without a cgroup namespace the mount is the host's root: the process's own
    folder is found from /proc/self/cgroup, and a parent's smaller limit wins."""
    files = fake_cgroup(tmp_path, "0::/kubepods/pod1/ctr\n", V2_NS, {
        "fs/cgroup/cpu.max": "max 100000",
        "fs/cgroup/kubepods/pod1/cpu.max": "200000 100000",
        "fs/cgroup/kubepods/pod1/ctr/cpu.max": "800000 100000",
    })
    assert cpu_quota.cgroup_quota(**files) == 2.0
    assert cpu_quota.cpu_limit(**files, environ={}, affinity=96)[0] == 2


def test_quota_cgroup_v1_cpu_cpuacct(tmp_path):
    cgroup = "9:memory:/docker/abc\n4:cpu,cpuacct:/docker/abc\n0::/\n"
    mountinfo = V1_NS.replace(" / SYS", " /docker/abc SYS")
    files = fake_cgroup(tmp_path, cgroup, mountinfo, {
        "fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "250000\n",
        "fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
    })
    assert cpu_quota.cpu_limit(**files, environ={}, affinity=32) == (
        3, "cgroup quota 2.5 CPUs")


def test_quota_cgroup_v1_unlimited_is_the_affinity(tmp_path):
    files = fake_cgroup(tmp_path, "4:cpu,cpuacct:/\n", V1_NS, {
        "fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
        "fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
    })
    assert cpu_quota.cgroup_quota(**files) is None
    assert cpu_quota.cpu_limit(**files, environ={}, affinity=12) == (12, "affinity")


def test_quota_binderhub_cpu_limit_and_unreadable_files(tmp_path):
    files = dict(cgroup_file=tmp_path / "absent", mountinfo_file=tmp_path / "absent")
    assert cpu_quota.cpu_limit(**files, environ={"CPU_LIMIT": "1.0"}, affinity=48) == (
        1, "CPU_LIMIT=1")
    assert cpu_quota.cpu_limit(**files, environ={"CPU_LIMIT": "junk"}, affinity=3) == (
        3, "affinity")
    (tmp_path / "bad").write_text("garbage\n\n1:2\n")
    assert cpu_quota.cpu_limit(cgroup_file=tmp_path / "bad",
                               mountinfo_file=tmp_path / "bad", environ={},
                               affinity=5) == (5, "affinity")


def test_quota_of_this_machine_is_at_most_its_affinity():
    cpus, why = cpu_quota.cpu_limit()
    assert 1 <= cpus <= len(os.sched_getaffinity(0)), why


# ---- binder/start ------------------------------------------------------------------

def pages_networks_url():
    """``https://OWNER.github.io/REPO/networks/`` for the repository in _config.yml."""
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    owner, repo = re.match(r"https://github\.com/([^/]+)/([^/]+?)/?$", url).groups()
    return f"https://{owner}.github.io/{repo}/networks/"


def run_start(*command, env=None, cpus=None):
    """Run binder/start COMMAND (under ``taskset -c CPUS`` if given)."""
    base = {k: v for k, v in USER_ENV.items()
            if not k.endswith("_NUM_THREADS") and k not in (
                "ACTFNS_PRETRAINED_URL", "CPU_LIMIT")}
    prefix = ["taskset", "-c", cpus] if cpus else []
    return subprocess.run([*prefix, str(BINDER / "start"), *command],
                          env={**base, **(env or {})}, capture_output=True, text=True,
                          timeout=60)


def printed_env(result):
    return dict(line.split("=", 1) for line in result.stdout.splitlines()
                if "=" in line)


def test_start_sets_threads_from_the_quota_and_the_published_networks():
    assert os.access(BINDER / "start", os.X_OK), "binder/start must be executable"
    env = printed_env(run_start("env"))
    cpus = str(cpu_quota.cpu_limit()[0])
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        assert env.get(var) == cpus, f"{var}={env.get(var)}, the quota allows {cpus}"
    assert env["ACTFNS_PRETRAINED_URL"] == pages_networks_url()


def test_start_on_one_cpu_gives_torch_one_thread():
    """Under ``taskset -c 0`` (util-linux, as on every Debian)."""
    result = run_start(sys.executable, "-c",
                       "import torch; print(torch.get_num_threads())", cpus="0")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_start_keeps_the_readers_settings_and_the_exit_status():
    env = printed_env(run_start("env", env={"OMP_NUM_THREADS": "3",
                                            "ACTFNS_PRETRAINED_URL": ""}))
    assert env["OMP_NUM_THREADS"] == "3"
    assert env["ACTFNS_PRETRAINED_URL"] == "", "an empty URL (never fetch) was replaced"
    assert run_start("sh", "-c", "exit 7").returncode == 7
    assert run_start("printf", "%s|", "a b", "c").stdout == "a b|c|"


# ---- binder/postBuild --------------------------------------------------------------

def run_postbuild(tmp_path, url):
    env = dict(USER_ENV, HOME=str(tmp_path / "home"),
               JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter"),
               ACTFNS_DATA=str(tmp_path / "data"),
               ACTFNS_CHECKPOINTS=str(tmp_path / "store"),
               ACTFNS_PRETRAINED_URL=url,
               PATH=f"{Path(sys.executable).parent}:{USER_ENV.get('PATH', '')}")
    (tmp_path / "home").mkdir(exist_ok=True)
    return subprocess.run([str(BINDER / "postBuild")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=900)


def check_lab_settings_and_data(tmp_path):
    settings = json.loads((tmp_path / "jupyter" / "labconfig" /
                           "default_setting_overrides.json").read_text())
    viewers = settings["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers["markdown"] == viewers["myst"] == "Jupytext Notebook"
    tracker = settings["@jupyterlab/notebook-extension:tracker"]
    assert tracker["autoStartDefaultKernel"] is True
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    assert len(list(raw.glob("*-ubyte"))) == 4, "postBuild did not fetch FashionMNIST"


@pytest.mark.slow
def test_postbuild_installs_settings_data_and_the_published_networks(tmp_path):
    """Run binder/postBuild as repo2docker does, with the site's networks served from
    127.0.0.1: JupyterLab opens MyST as notebooks, FashionMNIST and the published
    run are in the image."""
    postbuild = BINDER / "postBuild"
    assert os.access(postbuild, os.X_OK), "binder/postBuild must be executable"
    site_store = af.RunStore(tmp_path / "site-store")
    spec = af.RunSpec("relu", hidden_sizes=(16,), input_size=16, num_classes=4,
                      recipe=af.Recipe(max_epochs=1, batch_size=64))
    af.train_run(spec, make_blob_data(), store=site_store, progress=False)
    manifest = af.publish_runs(site_store, tmp_path / "site" / "networks")
    with serve(tmp_path / "site") as base:
        result = run_postbuild(tmp_path, base + "networks/")
    assert result.returncode == 0, result.stdout + result.stderr
    check_lab_settings_and_data(tmp_path)
    fetched = af.RunStore(tmp_path / "store")
    assert set(fetched.names()) == set(manifest["runs"]), result.stdout
    assert f"{spec.name}: fetched" in result.stdout


@pytest.mark.slow
def test_postbuild_succeeds_when_the_site_is_unreachable(tmp_path):
    result = run_postbuild(tmp_path, closed_port_url())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "published networks could not be fetched" in result.stderr
    check_lab_settings_and_data(tmp_path)
