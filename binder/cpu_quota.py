"""How many CPUs this container may really use: its cgroup CPU quota, not the host's.

Binder (Kubernetes) gives a notebook about one CPU through a CFS quota, while
``os.cpu_count()`` and torch's default thread pool see every core of the host. Torch
with dozens of threads on one CPU's quota is several times slower than with one (see
benchmarks/bench_threads.py). ``binder/start`` runs this file and sets
``OMP_NUM_THREADS`` and friends from what it prints.

The quota is read the way the JVM and Go's runtime read it: the process's cgroup
from ``/proc/self/cgroup``, where that cgroup is mounted from ``/proc/self/mountinfo``,
then ``cpu.max`` (cgroup v2) or ``cpu.cfs_quota_us``/``cpu.cfs_period_us`` (v1) in that
folder and every parent up to the mount point (the smallest limit wins). The result is
the smallest of: the quota rounded up, the CPUs in the process's affinity mask, and
``$CPU_LIMIT`` (which BinderHub's KubeSpawner sets), at least 1.

Usage: ``python3 cpu_quota.py`` prints the number; ``--explain`` says where it
came from.
"""

import math
import os
import sys
from pathlib import Path

__all__ = ["cpu_limit", "cgroup_quota"]


def _read(path):
    try:
        return Path(path).read_text()
    except OSError:
        return None


def _cgroup_paths(cgroup_file):
    """``{"v2": path}`` and/or ``{"v1": path}`` of the cpu controller's cgroup."""
    found = {}
    for line in (_read(cgroup_file) or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        hierarchy, controllers, path = parts
        if hierarchy == "0" and controllers == "":
            found["v2"] = path
        elif "cpu" in controllers.split(","):
            found["v1"] = path
    return found


def _mounts(mountinfo_file):
    """``[(version, root, mount point)]`` of the cgroup mounts holding the cpu
    controller (v1) or the unified hierarchy (v2)."""
    mounts = []
    for line in (_read(mountinfo_file) or "").splitlines():
        if " - " not in line:
            continue
        left, right = line.split(" - ", 1)
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        root, point = fields[3], fields[4].replace("\\040", " ")
        fstype, options = tail[0], tail[2].split(",")
        if fstype == "cgroup2":
            mounts.append(("v2", root, point))
        elif fstype == "cgroup" and "cpu" in options:
            mounts.append(("v1", root, point))
    return mounts


def _limit_in(folder, version):
    """CPUs allowed by the limit files of ``folder`` (float), or None: no limit."""
    if version == "v2":
        text = _read(folder / "cpu.max")
        fields = (text or "").split()
        if len(fields) != 2 or fields[0] == "max" or int(fields[1]) <= 0:
            return None
        return int(fields[0]) / int(fields[1])
    quota = _read(folder / "cpu.cfs_quota_us")
    period = _read(folder / "cpu.cfs_period_us")
    if quota is None or period is None or int(quota) <= 0 or int(period) <= 0:
        return None
    return int(quota) / int(period)


def cgroup_quota(cgroup_file="/proc/self/cgroup",
                 mountinfo_file="/proc/self/mountinfo"):
    """The CPU quota of this process's cgroup and its parents, in CPUs (float), or None
    when no limit is set or nothing can be read."""
    paths, limits = _cgroup_paths(cgroup_file), []
    for version, root, point in _mounts(mountinfo_file):
        path = paths.get(version)
        if path is None:
            continue
        # inside a cgroup namespace the mount's root is the process's own cgroup
        relative = os.path.relpath(path, root) if path.startswith(root) else path
        folder = (Path(point) / relative.lstrip("/")).resolve()
        top = Path(point).resolve()
        while True:
            limit = _limit_in(folder, version)
            if limit is not None:
                limits.append(limit)
            if folder == top or top not in folder.parents:
                break
            folder = folder.parent
    return min(limits) if limits else None


def _affinity():
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_limit(cgroup_file="/proc/self/cgroup", mountinfo_file="/proc/self/mountinfo",
              environ=None, affinity=None):
    """``(cpus, why)``: the CPUs this process may use (int >= 1), and why.

    Args:
        cgroup_file, mountinfo_file: ``/proc/self/...`` (tests pass their own).
        environ: the environment to read ``CPU_LIMIT`` from (default ``os.environ``).
        affinity: the number of CPUs in the affinity mask (default: this process's).
    """
    environ = os.environ if environ is None else environ
    candidates = [(affinity if affinity is not None else _affinity(), "affinity")]
    quota = cgroup_quota(cgroup_file, mountinfo_file)
    if quota is not None:
        candidates.append((math.ceil(quota - 1e-9), f"cgroup quota {quota:g} CPUs"))
    try:
        limit = float(environ.get("CPU_LIMIT", ""))
        if limit > 0:
            candidates.append((math.ceil(limit - 1e-9), f"CPU_LIMIT={limit:g}"))
    except ValueError:
        pass
    cpus, why = min(candidates)
    return max(1, cpus), why


if __name__ == "__main__":
    cpus, why = cpu_limit()
    print(f"{cpus} ({why})" if "--explain" in sys.argv[1:] else cpus)
