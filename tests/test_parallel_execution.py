"""book/_ext/parallel_execution.py: how many chapters run at once, and in what order.

That the built book really executed two chapters at a time, with the speed appendix
alone, is checked on the real build in test_site.py.
"""

import sys
from types import SimpleNamespace

import pytest
from book_helpers import ROOT

sys.path.insert(0, str(ROOT / "book" / "_ext"))
import parallel_execution as pe  # noqa: E402


@pytest.mark.parametrize("cpus, jobs", [(1, 1), (2, 2), (16, 2), (None, 1)])
def test_default_jobs_is_two_where_there_are_two_cpus(monkeypatch, cpus, jobs):
    monkeypatch.delenv("ACTFNS_BUILD_JOBS", raising=False)
    monkeypatch.setattr(pe.os, "cpu_count", lambda: cpus)
    assert pe.default_jobs() == jobs


def test_jobs_from_the_environment(monkeypatch):
    monkeypatch.setenv("ACTFNS_BUILD_JOBS", "3")
    assert pe.default_jobs() == 3


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", ""])
def test_bad_jobs_value_is_refused_with_what_to_set(monkeypatch, value):
    monkeypatch.setenv("ACTFNS_BUILD_JOBS", value)
    with pytest.raises(ValueError, match=r"ACTFNS_BUILD_JOBS must be a whole number"):
        pe.default_jobs()


def test_each_chapter_is_a_task_of_its_own():
    assert pe.one_per_chunk(["a", "b", "c"], nproc=2) == [["a"], ["b"], ["c"]]


def test_schedule_puts_listed_chapters_first_in_their_order():
    config = SimpleNamespace(actfns_execution_order=["slow", "slower", "missing"],
                             actfns_execute_alone=[])
    app = SimpleNamespace(parallel=2, config=config)
    env = SimpleNamespace()
    docnames = ["a", "slower", "b", "slow"]
    pe.schedule(app, env, docnames)
    assert docnames == ["slow", "slower", "a", "b"]
    assert pe.report_alone(app, env) == []


def test_wait_policy_is_restored(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "PASSIVE")
    with pe.wait_policy(None):
        assert "OMP_WAIT_POLICY" not in pe.os.environ
    assert pe.os.environ["OMP_WAIT_POLICY"] == "PASSIVE"


def _start_order(tasks_class, n=5):
    """Order in which ``tasks_class(1)`` runs n tasks added in order 0..n-1."""
    order = []
    tasks = tasks_class(1)
    for i in range(n):
        tasks.add_task(lambda arg: arg, i, lambda arg, result: order.append(result))
    tasks.join()
    return order


def test_waiting_chapters_start_in_the_order_they_were_added():
    assert _start_order(pe.FifoParallelTasks) == [0, 1, 2, 3, 4]
    # why the class exists: Sphinx's own starts the waiting ones last in, first out
    # (if this fails, Sphinx has changed and FifoParallelTasks may be dropped)
    assert _start_order(pe.sphinx.util.parallel.ParallelTasks) == [0, 4, 3, 2, 1]
