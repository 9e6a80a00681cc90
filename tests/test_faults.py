"""Fault injection (issue 17): kill -9 during saves and trainings, concurrent readers
and writers, every single-byte change of a small checkpoint, permission-denied files,
a device the machine lacks, a thread creating files during saves, foreign checkpoints
under a run's name, odd names.

Each test sorts its trials by outcome: a clear error (a ``CheckpointError`` naming the
file, or a ``ValueError`` naming the argument), a correct result (the same weights,
config and history as saved), a silent wrong answer, a file lost. Silent wrong answers
and lost files must be zero. The counts are printed (``pytest -s``) on lines starting
with ``FAULTS``, and appended as JSON lines to ``$ACTFNS_FAULTS_REPORT`` when set.

The kills are real: a worker process (started once, so torch is imported once) forks a
child per trial that saves or trains, sends it SIGKILL after a random delay, reaps it,
and then loads as the next process would. The permission checks run as the user
``nobody`` when the tests run as root (root reads any file).

Run as a script, this module is that worker (``worker``) or the permission scenario
(``perms FOLDER``).
"""

import collections
import json
import os
import random
import select
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from pathlib import Path

import pytest
import torch
from conftest import make_blob_data, snapshot

import actfns as af
import actfns.checkpoints
import actfns.store

NAME = "net"
TESTS = Path(__file__).resolve().parent
torch.set_num_threads(1)


def report(fault, **counts):
    """Print one fault class's counts and append them to $ACTFNS_FAULTS_REPORT."""
    line = json.dumps({"fault": fault, **counts}, sort_keys=True, default=str)
    print(f"\nFAULTS {line}")
    path = os.environ.get("ACTFNS_FAULTS_REPORT")
    if path:
        with open(path, "a") as f:
            f.write(line + "\n")


# ---------------------------------------------------------------------------------
# Networks, runs and checks shared by the tests and the worker


def numbered_net(k, hidden=(256, 256), input_size=64):
    """Network number k: its own weights and its own config (LeakyReLU alpha)."""
    torch.manual_seed(1000 + k)
    return af.BaseNetwork(af.LeakyReLU((k + 1) / 64), input_size=input_size,
                          num_classes=10, hidden_sizes=hidden)


def numbered_history(k):
    return af.History(NAME, val_acc=[k / 100], best_epoch=1, best_val_acc=k / 100,
                      test_acc=k / 100, fingerprint=f"fp{k}")


def same_weights(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(
        sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]) for k in sa)


def identify(net, nets):
    """The k whose network ``net`` equals exactly (config and every tensor), or None."""
    for k, ref in enumerate(nets):
        if net.config == ref.config and same_weights(net, ref):
            return k
    return None


def tiny_spec():
    return af.RunSpec("relu", hidden_sizes=(32,), input_size=16, num_classes=4,
                      recipe=af.Recipe(max_epochs=3, batch_size=64))


def course_pair(folder, name, net):
    """NAME.config and NAME.tar as the course's code writes them."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.config").write_text(json.dumps(net.config))
    torch.save(net.state_dict(), folder / f"{name}.tar")


def leftovers(folder, name):
    """What writers left beside NAME's link, its current version and its lock."""
    folder = Path(folder)
    try:
        current = os.readlink(folder / name)
    except OSError:
        current = None
    found = collections.Counter()
    if not folder.is_dir():
        return found
    for path in folder.iterdir():
        entry = path.name
        if entry in (name, f".{name}.lock", current):
            continue
        if entry.endswith(".new"):
            found["staging folder"] += 1
        elif entry.endswith(".link"):
            found["temporary link"] += 1
        elif entry.startswith(f".{name}.v-"):
            found["version not current"] += 1
        else:
            found[f"other {entry}"] += 1
    return found


# ---------------------------------------------------------------------------------
# The worker: forks children, kills them, loads what they left


def save_and_load(kind, folder, nets):
    """``(save(k), load())`` for one name in ``folder``: ``save_model`` /
    ``load_model`` (kind ``"save_model"``, load gives no history) or the run store's
    ``put`` / ``get`` (``save(k)`` stores ``nets[k]`` with ``numbered_history(k)``)."""
    folder, store = Path(folder), af.RunStore(folder)

    def save(k):
        if kind == "save_model":
            af.save_model(nets[k], folder, NAME)
        else:
            store.put(NAME, nets[k], numbered_history(k))

    def load():
        if kind == "save_model":
            return af.load_model(folder, NAME), None
        return store.get(NAME)

    return save, load


def spawn(job):
    """Fork a child running ``job(say)``; ``say(text)`` sends a line to the parent.

    Returns ``(pid, fd)``: the read end of the pipe (EOF when the child is gone).
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 0
        try:
            os.close(read_end)
            job(lambda text: os.write(write_end, f"{text}\n".encode()))
        except BaseException:  # noqa: BLE001 (reported on stderr, exit code 1)
            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    os.close(write_end)
    return pid, read_end


def read_until(fd, deadline, stop=None):
    """Bytes from ``fd`` until EOF, ``deadline`` (time.monotonic) or a line ``stop``;
    returns ``(text, eof)``."""
    text = b""
    while (stop is None or f"{stop}\n".encode() not in text):
        remaining = deadline - time.monotonic()
        if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
            return text.decode(), False
        chunk = os.read(fd, 65536)
        if not chunk:
            return text.decode(), True
        text += chunk
    return text.decode(), False


def kill_after(job, delay):
    """Run ``job`` in a child; SIGKILL it ``delay`` s after it says "ready" (unless
    it ended before).

    Returns ``(lines it said after "ready", killed)``.
    """
    pid, fd = spawn(job)
    try:
        text, eof = read_until(fd, time.monotonic() + 120, stop="ready")
        if "ready\n" not in text:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise RuntimeError(f"the child did not start: {text!r}")
        said, eof = read_until(fd, time.monotonic() + delay)
        said = text.split("ready\n", 1)[1] + said
        os.kill(pid, signal.SIGKILL)  # a process that ended is a zombie: no error
        _, status = os.waitpid(pid, 0)
        rest, _ = read_until(fd, time.monotonic() + 10)
    finally:
        os.close(fd)
    killed = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL
    return (said + rest).split(), killed


def _where_the_kill_landed(left, state):
    """A name for the moment of the kill, read from what it left."""
    if left["staging folder"]:
        return "writing the files"
    if left["temporary link"]:
        return "between the new link and the rename"
    if left["version not current"]:
        return ("after the link, before the old version was removed" if state == "new"
                else "after the version's rename, before the link")
    return {"new": "after publishing", "previous": "before any file was written",
            "none": "before any file was written"}.get(state, state)


def kill_saves(folder, kind, trials, seed):
    """kill -9 at random points of repeated saves (``save_model`` or
    ``RunStore.put``); then load, as the next process would."""
    folder, rng = Path(folder), random.Random(seed)
    nets = [numbered_net(k) for k in range(6)]
    save, load = save_and_load(kind, folder, nets)

    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    for k in range(4):
        save(k)
    per_save = (time.perf_counter() - start) / 4
    outcomes, landed, examples = (collections.Counter(), collections.Counter(), [])
    for trial in range(trials):
        shutil.rmtree(folder, ignore_errors=True)
        previous = None if trial % 5 == 0 else trial % len(nets)
        if previous is not None:
            save(previous)
        first = 0 if previous is None else (previous + 1) % len(nets)

        def job(say, first=first):
            say("ready")
            k = first
            while True:
                save(k)
                say(k)
                k = (k + 1) % len(nets)

        said, killed = kill_after(job, rng.uniform(0, 3 * per_save))
        done = [int(k) for k in said]
        last = done[-1] if done else previous  # the last complete save
        in_progress = (done[-1] + 1) % len(nets) if done else first
        left = leftovers(folder, NAME)
        try:
            net, history = load()
        except af.CheckpointError as err:
            state = "none" if err.kind == "missing" else f"error {err.kind}"
            outcome = ("correct" if state == "none" and last is None
                       else "lost" if state == "none" else "error")
            if outcome != "correct":
                examples.append(str(err)[:300])
        else:
            k = identify(net, nets)
            state = ("new" if k == in_progress else "previous" if k == last
                     else "other")
            consistent = history is None or (history.test_acc == k / 100
                                             and history.fingerprint == f"fp{k}")
            outcome = "correct" if state != "other" and consistent else "silent"
        outcomes[outcome] += 1
        outcomes["killed" if killed else "not killed"] += 1
        landed[_where_the_kill_landed(left, state)] += 1
        if leftovers(folder, NAME):
            outcomes["leftovers after the next load"] += 1
        save(in_progress)
        if leftovers(folder, NAME):
            outcomes["leftovers after the next save"] += 1
    return {"trials": trials, "per_save_ms": round(per_save * 1e3, 1),
            "outcomes": outcomes, "kill landed": landed, "examples": examples[:3]}


WRITE_PATH = ("publish_files", "_write_new", "clean_versions", "_remove", "put_files",
              "touch")  # the functions of checkpoints.py and store.py that write


def kill_at_each_line(folder, kind):
    """kill -9 at every line a save executes in the functions that write
    (``WRITE_PATH``): a tracer in the child sends SIGKILL to its own process when it
    reaches the n-th such line, for every n."""
    folder = Path(folder)
    nets = [numbered_net(k, hidden=(32,), input_size=16) for k in range(2)]
    watched = {actfns.checkpoints.__file__, actfns.store.__file__}
    save, load = save_and_load(kind, folder, nets)

    def save_killed_at(stop, say):
        seen = [0]

        def line(frame, event, arg):
            if event == "line":
                seen[0] += 1
                if seen[0] == stop:
                    say(f"{frame.f_code.co_name}:{frame.f_lineno}")
                    os.kill(os.getpid(), signal.SIGKILL)
            return line

        def calls(frame, event, arg):
            code = frame.f_code
            if code.co_filename in watched and code.co_name in WRITE_PATH:
                return line
            return None

        sys.settrace(calls)
        try:
            save(1)
        finally:
            sys.settrace(None)
        say(f"lines {seen[0]}")

    def reset():
        shutil.rmtree(folder, ignore_errors=True)
        save(0)

    reset()
    said, _ = kill_after(lambda say: (say("ready"), save_killed_at(None, say)), 120)
    total = int(said[-1])
    outcomes, states, lines = collections.Counter(), collections.Counter(), []
    for stop in range(1, total + 1):
        reset()
        said, killed = kill_after(
            lambda say, stop=stop: (say("ready"), save_killed_at(stop, say)), 120)
        lines.append(said[0] if killed else "completed")
        try:
            net, history = load()
        except af.CheckpointError as err:
            outcomes["lost" if err.kind == "missing" else "error"] += 1
            continue
        k = identify(net, nets)
        consistent = history is None or history.fingerprint == f"fp{k}"
        states[{0: "previous", 1: "new"}.get(k, "other")] += 1
        outcomes["correct" if k in (0, 1) and consistent else "silent"] += 1
        if leftovers(folder, NAME):
            outcomes["leftovers after the next load"] += 1
    return {"trials": total, "outcomes": outcomes, "loaded": states,
            "killed at": lines}


def _copy_store(source, dest):
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(source, dest, symlinks=True)


def kill_trains(folder, trials, seed):
    """kill -9 at random points of ``train_run`` replacing a stale run A by run B;
    then read the store, and train again (only if B is not there)."""
    folder, rng = Path(folder), random.Random(seed)
    spec = tiny_spec()
    sizes = (600, 200, 200)
    data_a = make_blob_data(seed=1, tag="A", sizes=sizes)
    data_b = make_blob_data(seed=2, tag="B", sizes=sizes)
    refs = Path(f"{folder}-refs")
    net_a, hist_a = af.train_run(spec, data_a, store=refs / "A", progress=False,
                                 fetch=False)
    net_b, hist_b = af.train_run(spec, data_b, store=refs / "B", progress=False,
                                 fetch=False)

    def job(say):
        say("ready")
        start = time.perf_counter()
        af.train_run(spec, data_b, store=folder, progress=False, fetch=False)
        say(f"{time.perf_counter() - start:.4f}")

    # whole runs in a child: how long one takes, and that a child trains like us
    durations, child_trains_alike = [], True
    for _ in range(3):
        _copy_store(refs / "A", folder)
        said, killed = kill_after(job, 120)  # ends long before
        durations.append(float(said[0]))
        net, history = af.RunStore(folder).get(spec.name, hist_b.fingerprint)
        child_trains_alike &= history.trained is False and same_weights(net, net_b)
    duration = min(durations)
    outcomes, landed, examples = (collections.Counter(), collections.Counter(), [])
    for trial in range(trials):
        with_a = trial % 4 != 0
        if with_a:
            _copy_store(refs / "A", folder)
        else:
            shutil.rmtree(folder, ignore_errors=True)
        # half of the kills anywhere in the run, half near its end (storing it)
        low = 0.0 if trial % 2 else 0.75 * duration
        said, killed = kill_after(job, rng.uniform(low, 1.05 * duration))
        left = leftovers(folder, spec.name)
        try:
            net, history = af.RunStore(folder).get(spec.name)
        except af.CheckpointError as err:
            state = "none" if err.kind == "missing" else f"error {err.kind}"
            outcome = ("correct" if state == "none" and not with_a
                       else "lost" if state == "none" else "error")
            if outcome != "correct":
                examples.append(str(err)[:300])
        else:
            if history.fingerprint == hist_a.fingerprint and same_weights(net, net_a):
                state = "previous"
            elif history.fingerprint == hist_b.fingerprint and same_weights(net,
                                                                           net_b):
                state = "new"
            else:
                state = "other"
            ok = state != "other" and (state != "previous" or with_a)
            outcome = "correct" if ok else "silent"
        outcomes[outcome] += 1
        outcomes["killed" if killed else "not killed"] += 1
        landed[_where_the_kill_landed(left, state)] += 1
        if leftovers(folder, spec.name):
            outcomes["leftovers after the next load"] += 1
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            net, history = af.train_run(spec, data_b, store=folder, progress=False,
                                        fetch=False)
        if caught:
            outcomes["warnings on the rerun"] += 1
        if history.trained != (state != "new") or not same_weights(net, net_b):
            outcomes["rerun trained when not needed, or gave other weights"] += 1
        else:
            outcomes["rerun trained only if needed"] += 1
        if leftovers(folder, spec.name):
            outcomes["leftovers after the rerun"] += 1
    return {"trials": trials, "train_run_s": round(duration, 2),
            "child_trains_alike": child_trains_alike, "outcomes": outcomes,
            "kill landed": landed, "examples": examples[:3]}


def concurrent(folder, kind, seconds, writers, readers, seed):
    """Writers save numbered networks over and over while readers load them: every
    load must be exactly one of the saved networks (and its history)."""
    folder = Path(folder)
    nets = [numbered_net(k, hidden=(32,), input_size=16) for k in range(6)]
    save, load = save_and_load(kind, folder, nets)

    shutil.rmtree(folder, ignore_errors=True)
    save(0)
    deadline = time.time() + 1 + seconds

    def writer(say, number):
        say("ready")
        rng, saves = random.Random(seed + number), 0
        while time.time() < deadline:
            save(rng.randrange(len(nets)))
            saves += 1
        say(json.dumps({"saves": saves}))

    def reader(say):
        say("ready")
        counts, last = collections.Counter(), [None]
        while time.time() < deadline:
            try:
                net, history = load()
            except af.CheckpointError as err:
                counts[f"error {err.kind}"] += 1
                continue
            k = identify(net, nets)
            if k is None or (history is not None and (
                    history.test_acc != k / 100 or history.fingerprint != f"fp{k}")):
                counts["silent"] += 1
            else:
                counts["correct"] += 1
                if k != last[0]:
                    counts["changes seen"] += 1  # the readers did race the writers
                    last[0] = k
        say(json.dumps(counts))

    children = [spawn(lambda say, n=n: writer(say, n)) for n in range(writers)]
    children += [spawn(reader) for _ in range(readers)]
    totals = collections.Counter()
    failed = 0
    for pid, fd in children:
        said, _ = read_until(fd, time.monotonic() + seconds + 120)
        said = said.split("\n")
        os.close(fd)
        _, status = os.waitpid(pid, 0)
        failed += os.waitstatus_to_exitcode(status) != 0
        result = [line for line in said if line.startswith("{")]
        totals.update(json.loads(result[-1]) if result else {"no result": 1})
    load()
    return {"saves": totals.pop("saves", 0), "changes seen by readers": totals.pop(
                "changes seen", 0), "loads": sum(totals.values()), "outcomes": totals,
            "children failed": failed, "leftovers at the end": sum(
                leftovers(folder, NAME).values())}


COMMANDS = {"kill_saves": kill_saves, "kill_trains": kill_trains,
            "kill_at_each_line": kill_at_each_line, "concurrent": concurrent}


def worker_main():
    """Run COMMANDS read as JSON lines from stdin; one JSON reply line each."""
    replies = sys.stdout
    sys.stdout = sys.stderr  # keep the reply channel clean
    for line in sys.stdin:
        request = json.loads(line)
        try:
            reply = {"result": COMMANDS[request["command"]](**request["args"])}
        except Exception:  # noqa: BLE001 (the test reports it)
            reply = {"error": traceback.format_exc()}
        replies.write(json.dumps(reply, default=str) + "\n")
        replies.flush()
    sys.stderr.flush()
    os._exit(0)  # no interpreter teardown (seconds with torch loaded)


def child_env(**extra):
    """Environment of the processes these tests start: one quiet torch thread."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "OMP_NUM_THREADS": "1",
           "MKL_NUM_THREADS": "1", "ACTFNS_PROGRESS": "0"}
    env.update(extra)
    return env


class Worker:
    """The worker process, driven by JSON lines."""

    def __init__(self, folder):
        self.stderr = open(Path(folder) / "worker.stderr", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "worker"], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=child_env(),
            cwd=folder)

    def call(self, command, timeout=300, **args):
        self.proc.stdin.write(json.dumps({"command": command, "args": args}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.proc.kill()
            self.stderr.seek(0)
            pytest.fail(f"the worker gave no answer to {command} within {timeout} s:\n"
                        f"{self.stderr.read()[-3000:]}")
        reply = json.loads(line)
        if "error" in reply:
            pytest.fail(f"{command} failed in the worker:\n{reply['error']}")
        return reply["result"]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(30)
        self.stderr.close()


@pytest.fixture(scope="module", autouse=True)
def worker(tmp_path_factory):
    """The worker, started with the module's first test: it imports torch while the
    tests before the kill tests (last in this file) run."""
    folder = tmp_path_factory.mktemp("worker")
    process = Worker(folder)
    yield process
    process.close()


def _no_silent_or_lost(result):
    outcomes = result["outcomes"]
    assert outcomes.get("silent", 0) == 0, result
    assert outcomes.get("lost", 0) == 0, result
    assert outcomes.get("error", 0) == 0, result


# ---------------------------------------------------------------------------------
# Every single-byte change


FLIPS = (lambda b: b ^ 0x10, lambda b: b ^ 0xFF)  # 0x10: the zip "directory" bit
ALL_FLIPS = tuple((lambda b, m=1 << i: b ^ m) for i in range(8)) + (
    lambda b: 0x00, lambda b: 0xFF)  # every bit, and the two constant bytes
MORE_FLIPS = (lambda b: b ^ 0x01, *FLIPS)


def flips(data, changes):
    """Every ``(position, new byte)`` of ``data`` under ``changes``."""
    for pos in range(len(data)):
        for new in sorted({change(data[pos]) for change in changes} - {data[pos]}):
            yield pos, new


def load_outcome(load, ref, path):
    """"correct", "clear" (a CheckpointError naming ``path``) or what went wrong."""
    try:
        got = load()
    except af.CheckpointError as err:
        return "clear" if str(path) in str(err) else f"unclear: {str(err)[:200]}"
    except Exception as err:  # noqa: BLE001 (counted: must not happen)
        return f"raw {type(err).__name__}: {str(err)[:200]}"
    net = got[0] if isinstance(got, tuple) else got
    same = net.config == ref.config and same_weights(net, ref)
    return "correct" if same else "silent"


def tally(outcomes):
    counts = collections.Counter(o if o in ("clear", "correct", "silent") else "other"
                                 for o in outcomes.values())
    odd = sorted({o for o in outcomes.values()} - {"clear", "correct"})
    return counts, odd[:5]


def flip_file(path, original, cases, load, ref):
    """Each case written into ``path``, then loaded; ``{case: outcome}``."""
    outcomes = {}
    for pos, new in cases:
        path.write_bytes(original[:pos] + bytes([new]) + original[pos + 1:])
        outcomes[pos, new] = load_outcome(load, ref, path)
    path.write_bytes(original)
    return outcomes


def tiny_net(act="leakyrelu"):
    torch.manual_seed(0)
    return af.BaseNetwork(act, input_size=4, num_classes=2, hidden_sizes=[3])


def _course_tar_flips(tmp_path, changes):
    folder = tmp_path / "course"
    net = tiny_net()
    course_pair(folder, NAME, net)
    tar = folder / f"{NAME}.tar"
    original = tar.read_bytes()
    outcomes = flip_file(tar, original, flips(original, changes),
                         lambda: af.load_model(folder, NAME), net)
    counts, odd = tally(outcomes)
    report("single-byte changes of a course-format .tar", file_bytes=len(original),
           trials=len(outcomes), **counts, odd=odd)
    assert counts["silent"] == 0 and counts["other"] == 0, odd
    return original, outcomes


def test_every_byte_of_a_course_format_tar(tmp_path):
    """Issue 17 (3): the zip "directory" bit loaded uninitialised memory; other bytes
    of the zip directory escaped as NotImplementedError / BadZipFile."""
    import io
    import zipfile

    original, outcomes = _course_tar_flips(tmp_path, FLIPS)
    # the directory bit of each member's central-directory entry: a clear error,
    # where torch alone returns weights that differ from the saved ones
    archive = zipfile.ZipFile(io.BytesIO(original))
    offset, entries = archive.start_dir, 0
    while original[offset:offset + 4] == b"PK\x01\x02":
        position = offset + 38  # external attributes, low byte: MS-DOS attributes
        assert outcomes[position, original[position] ^ 0x10] == "clear"
        entries += 1
        n, m, k = (int.from_bytes(original[offset + i:offset + i + 2], "little")
                   for i in (28, 30, 32))
        offset += 46 + n + m + k
    assert entries == len(archive.infolist())
    position = _directory_bit_of_a_tensor(original, archive)
    damaged = bytearray(original)
    damaged[position] ^= 0x10
    state = torch.load(io.BytesIO(bytes(damaged)), weights_only=True)
    assert not all(torch.equal(v, tiny_net().state_dict()[k])
                   for k, v in state.items())  # torch alone: a silent wrong answer


def _directory_bit_of_a_tensor(data, archive):
    offset = archive.start_dir
    while True:
        n, m, k = (int.from_bytes(data[offset + i:offset + i + 2], "little")
                   for i in (28, 30, 32))
        if data[offset + 46:offset + 46 + n].endswith(b"data/0"):
            return offset + 38
        offset += 46 + n + m + k


@pytest.mark.slow
def test_every_byte_of_a_course_format_tar_all_changes(tmp_path):
    """Every bit of every byte, 0x00 and 0xFF (about 23,000 changes)."""
    _course_tar_flips(tmp_path, ALL_FLIPS)


@pytest.mark.parametrize("act", ["relu", "leakyrelu"])
def test_every_byte_of_a_course_format_config(tmp_path, act):
    """The course's pair has no checksum: a config change that still describes a
    network of the same shapes cannot be seen. For ReLU no single byte does that;
    for LeakyReLU only the digits of alpha can (so the course's published pairs are
    checked against their published SHA-256s, test_checkpoints)."""
    folder = tmp_path / "course"
    net = tiny_net(act)
    course_pair(folder, NAME, net)
    config = folder / f"{NAME}.config"
    original = config.read_bytes()
    outcomes = flip_file(config, original, flips(original, ALL_FLIPS),
                         lambda: af.load_model(folder, NAME), net)
    counts, odd = tally(outcomes)
    alpha = original.find(b"0.1")
    undetectable = {pos for (pos, _), o in outcomes.items() if o == "silent"}
    report(f"single-byte changes of a course-format .config ({act})",
           trials=len(outcomes), **counts, odd=odd,
           silent_positions=sorted(undetectable))
    assert counts["other"] == 0, odd
    if act == "relu":
        assert counts["silent"] == 0
    else:  # only alpha's digits: "0.1" -> "0.3", "0.5", ...
        assert undetectable <= {alpha, alpha + 2} and counts["silent"] > 0


def small_run():
    """A run that trains in a moment: ``(spec, data)``."""
    spec = af.RunSpec("relu", hidden_sizes=(3,), input_size=4, num_classes=2,
                      recipe=af.Recipe(max_epochs=2, batch_size=32))
    return spec, make_blob_data(dim=4, classes=2, sizes=(128, 64, 64), seed=3,
                                tag="tiny")


def _stored_run(folder):
    """A small run trained into ``folder``: ``(spec, data, net, history)``."""
    spec, data = small_run()
    net, history = af.train_run(spec, data, store=folder, progress=False,
                                fetch=False)
    return spec, data, net, history


@pytest.mark.parametrize("changes", [FLIPS[1:], pytest.param(
    MORE_FLIPS, marks=pytest.mark.slow)], ids=["one", "three"])
def test_every_byte_of_a_saved_version(tmp_path, changes):
    """A save_model'd checkpoint: every change of either file is damage."""
    folder = tmp_path / "ckpt"
    net = tiny_net()
    af.save_model(net, folder, NAME)
    version = folder / os.readlink(folder / NAME)
    totals = collections.Counter()
    for fname in (f"{NAME}.config", f"{NAME}.tar"):
        path = version / fname
        path.chmod(0o644)
        original = path.read_bytes()
        outcomes = flip_file(path, original, flips(original, changes),
                             lambda: af.load_model(folder, NAME), net)
        counts, odd = tally(outcomes)
        assert counts["silent"] == counts["other"] == 0, odd
        assert counts["correct"] == 0  # every byte is covered by the version's SHA-256
        totals.update(counts)
    report("single-byte changes of a save_model version (.config, .tar)",
           trials=sum(totals.values()), **totals)


@pytest.mark.parametrize("changes", [FLIPS[1:], pytest.param(
    MORE_FLIPS, marks=pytest.mark.slow)], ids=["one", "three"])
def test_every_byte_of_a_stored_run(tmp_path, changes):
    """A run of the store: every change of its config, weights or history is damage
    that names the file (never reused), and train_run trains it again."""
    folder = tmp_path / "store"
    spec, data, net, history = _stored_run(folder)
    store = af.RunStore(folder)
    version = folder / os.readlink(folder / spec.name)
    totals, by_file = collections.Counter(), {}
    for suffix in (".config", ".tar", ".history.json"):
        path = version / f"{spec.name}{suffix}"
        path.chmod(0o644)
        original = path.read_bytes()
        outcomes = flip_file(path, original, flips(original, changes),
                             lambda: store.get(spec.name, history.fingerprint), net)
        counts, odd = tally(outcomes)
        assert counts["silent"] == counts["other"] == counts["correct"] == 0, odd
        by_file[suffix] = {"bytes": len(original), "trials": len(outcomes)}
        totals.update(counts)
    # ... and train_run trains it again (a sample of positions: each retrains)
    rng, retrained = random.Random(17), 0
    reference = {k: v.clone() for k, v in net.state_dict().items()}
    for _ in range(12):
        suffix = rng.choice((".config", ".tar", ".history.json"))
        version = folder / os.readlink(folder / spec.name)
        path = version / f"{spec.name}{suffix}"
        path.chmod(0o644)
        data_bytes = bytearray(path.read_bytes())
        data_bytes[rng.randrange(len(data_bytes))] ^= 0xFF
        path.write_bytes(bytes(data_bytes))
        with pytest.warns(UserWarning, match=f"{spec.name}{suffix}"):
            again, h = af.train_run(spec, data, store=folder, progress=False,
                                    fetch=False)
        assert h.trained
        assert all(torch.equal(v, reference[k]) for k, v in again.state_dict().items())
        retrained += 1
    assert not af.train_run(spec, data, store=folder, progress=False)[1].trained
    report("single-byte changes of a stored run (.config, .tar, .history.json)",
           trials=sum(totals.values()), **totals, by_file=by_file,
           retrained_by_train_run=retrained)


# ---------------------------------------------------------------------------------
# Permissions


def perms_scenario(root):
    """As an unprivileged user: files and folders it cannot read, and a folder it
    cannot write. Returns a list of ``{case, outcome, lost}``."""
    root = Path(root)
    spec, data = small_run()
    results = []

    def state(folder):
        out = {}
        for dirpath, dirnames, filenames in os.walk(folder, onerror=lambda e: None):
            for entry in dirnames + filenames:
                path = Path(dirpath) / entry
                st = path.lstat()
                out[str(path)] = (st.st_ino, st.st_size, st.st_mtime_ns, stat.S_IMODE(
                    st.st_mode), os.readlink(path) if path.is_symlink() else None)
        return out

    def attempt(case, call, folder, expect="unreadable"):
        before = state(folder)
        try:
            call()
            outcome = "silent (no error)"
        except af.CheckpointError as err:
            message = str(err).lower()
            good = (err.kind == expect and "permission denied" in message
                    and not any(w in message.replace("not damaged", "") for w in (
                        "corrupt", "damaged", "truncated")))
            outcome = "clear" if good else f"unclear ({err.kind}): {str(err)[:200]}"
        except Exception as err:  # noqa: BLE001 (counted: must not happen)
            outcome = f"raw {type(err).__name__}: {str(err)[:200]}"
        after = state(folder)
        after.pop(str(folder / f".{spec.name}.lock"), None)
        before.pop(str(folder / f".{spec.name}.lock"), None)
        results.append({"case": case, "outcome": outcome, "lost": after != before})

    def deny(path, mode=0):
        path.chmod(mode)
        if os.access(path, os.R_OK if mode == 0 else os.W_OK):
            raise RuntimeError(f"{path} is still accessible after chmod {mode:o}: run "
                               "the scenario as a user without CAP_DAC_OVERRIDE")

    def train(folder, **kwargs):
        return lambda: af.train_run(spec, data, store=folder, progress=False,
                                    fetch=False, **kwargs)

    def load(folder):
        return lambda: af.load_model(folder, spec.name)

    # the course's pair, and a save_model'd version, under the run's name
    for what in ("tar", "config"):
        folder = root / f"course-{what}"
        course_pair(folder, spec.name, spec.initial_network())
        deny(folder / f"{spec.name}.{what}")
        attempt(f"course pair, .{what} unreadable: load_model", load(folder), folder)
        attempt(f"course pair, .{what} unreadable: train_run", train(folder), folder)
    folder = root / "saved"
    af.save_model(spec.initial_network(), folder, spec.name)
    deny(folder / spec.name / f"{spec.name}.tar")
    attempt("save_model version, .tar unreadable: load_model", load(folder), folder)
    attempt("save_model version, .tar unreadable: train_run", train(folder), folder)
    # a run of the store (trained once, copied)
    trained = root / "trained"
    af.train_run(spec, data, store=trained, progress=False, fetch=False)
    for what in (".tar", ".history.json", "version folder"):
        folder = root / f"run-{what.strip('.')}"
        shutil.copytree(trained, folder, symlinks=True)
        version = folder / os.readlink(folder / spec.name)
        deny(version if what == "version folder" else version / f"{spec.name}{what}")
        attempt(f"stored run, {what} unreadable: train_run", train(folder), folder)
        attempt(f"stored run, {what} unreadable: train_run(overwrite=True)",
                train(folder, overwrite=True), folder)
        attempt(f"stored run, {what} unreadable: RunStore.get",
                lambda folder=folder: af.RunStore(folder).get(spec.name), folder)
        before = state(folder)
        kept = af.RunStore(folder).prune(time.time() + 3600) == []
        results.append({"case": f"stored run, {what} unreadable: prune keeps it",
                        "outcome": "clear" if kept else "pruned",
                        "lost": state(folder) != before})
        attempt(f"stored run, {what} unreadable: load_model", load(folder), folder)
    # an older actfns's run (flat files and a history) whose .tar cannot be read
    folder = root / "legacy"
    course_pair(folder, spec.name, spec.initial_network())
    (folder / f"{spec.name}.history.json").write_text(json.dumps(
        af.History(spec.name).to_dict()))
    deny(folder / f"{spec.name}.tar")
    attempt("older actfns run, .tar unreadable: train_run", train(folder), folder)
    attempt("older actfns run, .tar unreadable: train_run(overwrite=True)",
            train(folder, overwrite=True), folder)
    # a checkpoint folder that cannot be looked into
    folder = root / "closed"
    shutil.copytree(trained, folder, symlinks=True)
    deny(folder)
    attempt("checkpoint folder unreadable: load_model", load(folder), root)
    attempt("checkpoint folder unreadable: RunStore.get",
            lambda: af.RunStore(folder).get(spec.name), root)
    attempt("checkpoint folder unreadable: train_run", train(folder), root)
    # a checkpoint folder that cannot be written
    folder = root / "readonly"
    folder.mkdir()
    deny(folder, 0o555)
    attempt("checkpoint folder read-only: train_run", train(folder), root,
            expect="unwritable")
    attempt("checkpoint folder read-only: save_model",
            lambda: af.save_model(spec.initial_network(), folder, spec.name), root,
            expect="unwritable")
    for dirpath, dirnames, filenames in os.walk(root):  # let the owner clean up
        for entry in dirnames + filenames:
            path = Path(dirpath) / entry
            if not path.is_symlink():
                path.chmod(0o755 if path.is_dir() else 0o644)
    return results


def test_permission_denied_is_unreadable_not_corrupt_and_never_replaced():
    """Issue 17 (6): a file the user cannot read was called corrupt and retrained."""
    scratch = Path(tempfile.mkdtemp(prefix="actfns-perms-"))
    try:
        command = [sys.executable, str(TESTS / "test_faults.py"), "perms",
                   str(scratch / "root")]
        env = child_env(HOME=str(scratch), MPLCONFIGDIR=str(scratch / "mpl"))
        if os.geteuid() == 0:  # root reads anything: be nobody
            setpriv = shutil.which("setpriv")
            assert setpriv, "setpriv (util-linux) is needed to drop root's privileges"
            os.chown(scratch, 65534, 65534)
            command = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups",
                       *command]
        proc = subprocess.run(command, capture_output=True, text=True, env=env,
                              cwd=scratch, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        results = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    counts = collections.Counter("clear" if r["outcome"] == "clear" else "other"
                                 for r in results)
    lost = [r["case"] for r in results if r["lost"]]
    odd = [r for r in results if r["outcome"] != "clear"]
    report("permission denied", trials=len(results), **counts, lost=len(lost),
           odd=odd, as_user="nobody" if os.geteuid() == 0 else "the test's user")
    assert not odd and not lost
    assert len(results) >= 20


# ---------------------------------------------------------------------------------
# A device this machine lacks


def _absent_cuda():
    return f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"


def test_a_device_this_machine_lacks_is_not_called_corrupt(tmp_path):
    """Issue 17 (6): map_location="cuda" without a GPU was "truncated or corrupt",
    and train_model then retrained and replaced a good file."""
    device = _absent_cuda()
    spec, data, net, history = _stored_run(tmp_path / "store")
    af.save_model(net, tmp_path / "saved", NAME)
    before = snapshot(tmp_path)
    store = af.RunStore(tmp_path / "store")
    calls = {
        "load_model(map_location=device)":
            lambda: af.load_model(tmp_path / "saved", NAME, map_location=device),
        "load_model(map_location=torch.device)":
            lambda: af.load_model(tmp_path / "saved", NAME,
                                  map_location=torch.device(device)),
        "load_model(map_location={'cpu': device})":
            lambda: af.load_model(tmp_path / "saved", NAME,
                                  map_location={"cpu": device}),
        "RunStore.get(map_location=device)":
            lambda: store.get(spec.name, map_location=device),
        "train_run(device=device)":
            lambda: af.train_run(spec, data, store=store, device=device,
                                 progress=False),
        "train_run(device=device, overwrite=True)":
            lambda: af.train_run(spec, data, store=store, device=device,
                                 overwrite=True, progress=False),
    }
    outcomes = {}
    for label, call in calls.items():
        try:
            call()
            outcomes[label] = "no error"
        except ValueError as err:
            message = str(err)
            clear = "cuda" in message and not any(
                w in message for w in ("corrupt", "damaged", "truncated"))
            outcomes[label] = "clear" if clear else f"unclear: {message[:200]}"
        except Exception as err:  # noqa: BLE001 (counted: must not happen)
            outcomes[label] = f"raw {type(err).__name__}: {str(err)[:200]}"
    lost = snapshot(tmp_path) != before
    report("a device this machine lacks", device=device, trials=len(outcomes),
           clear=sum(o == "clear" for o in outcomes.values()), lost=int(lost),
           odd={k: o for k, o in outcomes.items() if o != "clear"})
    assert all(o == "clear" for o in outcomes.values()), outcomes
    assert not lost
    assert same_weights(store.get(spec.name, history.fingerprint)[0], net)


# ---------------------------------------------------------------------------------
# File modes: nothing process-wide


def _modes(folder, mask):
    """How many of the files and folders under ``folder`` have the mode they
    should: read-only files and plain folders, less the umask ``mask``."""
    modes = collections.Counter()
    for path in Path(folder).rglob("*"):
        if path.is_symlink():
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        expected = (0o777 if path.is_dir() else 0o666 if path.name.endswith(".lock")
                    else 0o444) & ~mask
        modes["as expected" if mode == expected else f"{path.name}: {oct(mode)}"] += 1
    return modes


def test_a_thread_creating_files_during_saves_gets_the_umasks_modes(tmp_path):
    """Issue 17 (4): save_model set the umask to 0 for a moment, so files another
    thread created then were world-writable (14 of 123,228)."""
    mask = 0o027
    old = os.umask(mask)
    try:
        stop, wrong, created = threading.Event(), [], [0]

        def create_files():
            folder = tmp_path / "other"
            folder.mkdir()
            while not stop.is_set():
                path = folder / f"f{created[0]}"
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
                mode = stat.S_IMODE(path.stat().st_mode)
                if mode != 0o666 & ~mask:
                    wrong.append(oct(mode))
                path.unlink()
                created[0] += 1

        thread = threading.Thread(target=create_files)
        thread.start()
        try:
            folder = tmp_path / "ckpt"
            store = af.RunStore(folder)
            nets = [numbered_net(k, hidden=(32,), input_size=16) for k in range(4)]
            modes = collections.Counter()
            for i in range(40):
                af.save_model(nets[i % 4], folder, NAME)
                store.put("run", nets[i % 4], numbered_history(i % 4))
                af.load_model(folder, NAME)
                modes.update(_modes(folder, mask))  # each new version's
            _stored_run(tmp_path / "store")
        finally:
            stop.set()
            thread.join()
    finally:
        os.umask(old)
    modes.update(_modes(tmp_path / "store", mask))
    report("a thread creating files during saves", files_created=created[0],
           wrong_modes=len(wrong), saves=80, loads=40,
           our_files=dict(modes))
    assert created[0] > 1000 and not wrong
    assert list(modes) == ["as expected"], modes
    package = Path(af.__file__).parent
    assert not [p.name for p in package.rglob("*.py") if "umask(" in p.read_text()]


# ---------------------------------------------------------------------------------
# Foreign checkpoints under a run's name


def _put_foreign(folder, what, name, net):
    if what == "course pair":
        course_pair(folder, name, net)
    elif what == "save_model":
        af.save_model(net, folder, name)
    elif what == "folder":
        course_pair(folder / name, name, net)
    elif what == "link":
        course_pair(folder.parent / "mine", name, net)
        (folder / name).symlink_to(folder.parent / "mine")
    elif what == "file":
        (folder / name).write_text("my notes")


@pytest.mark.parametrize("what", ["course pair", "save_model", "folder", "link",
                                  "file"])
def test_a_foreign_checkpoint_under_a_runs_name_is_never_replaced(tmp_path, what):
    """Issue 17 (5): the course's FashionMNIST_relu pair was retrained and replaced
    by train_or_load's default run."""
    folder = tmp_path / "ckpt"
    folder.mkdir()
    spec = tiny_spec()
    data = make_blob_data(seed=1, tag="A")
    theirs = spec.initial_network()
    _put_foreign(folder, what, spec.name, theirs)
    _put_foreign(folder, what, "FashionMNIST_relu", af.BaseNetwork("relu"))
    before = snapshot(tmp_path)
    calls = {
        "train_run": lambda: af.train_run(spec, data, store=folder, progress=False),
        "train_run(overwrite=True)": lambda: af.train_run(
            spec, data, store=folder, overwrite=True, progress=False),
        "train_model": lambda: af.train_model(spec.initial_network(), spec.name,
                                              data, model_path=folder, max_epochs=2,
                                              batch_size=64, progress=False),
        "train_or_load('relu') (the course's run)": lambda: af.train_or_load(
            "relu", data, model_path=folder, progress=False),
    }
    outcomes = {}
    for label, call in calls.items():
        try:
            call()
            outcomes[label] = "no error"
        except af.CheckpointError as err:
            good = err.kind == "foreign" and "does not" in str(err) and (
                "replace" in str(err))
            outcomes[label] = "refused" if good else f"unclear: {str(err)[:200]}"
        except Exception as err:  # noqa: BLE001 (counted: must not happen)
            outcomes[label] = f"raw {type(err).__name__}: {str(err)[:200]}"
    after = snapshot(tmp_path)
    for files in (before, after):  # the lock files are actfns's, not the user's
        for key in [k for k in files if k.endswith(".lock")]:
            files.pop(key)
    report(f"foreign checkpoint under a run's name ({what})", trials=len(outcomes),
           refused=sum(o == "refused" for o in outcomes.values()),
           lost=int(after != before),
           odd={k: o for k, o in outcomes.items() if o != "refused"})
    assert all(o == "refused" for o in outcomes.values()), outcomes
    assert after == before
    if what != "file":
        assert same_weights(af.load_model(folder, spec.name), theirs)


# ---------------------------------------------------------------------------------
# Odd names


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../outside", "/abs/path",
                                  ".hidden", "run.tar", "x" * 300, "a\0b"])
def test_odd_run_names_are_clear_errors_before_any_training(tmp_path, name):
    folder = tmp_path / "ckpt"
    data = make_blob_data(seed=1, tag="A")
    net = tiny_spec().initial_network()
    for overwrite in (False, True):
        start = time.perf_counter()
        with pytest.raises(ValueError, match="checkpoint name"):
            af.train_model(net, name, data, model_path=folder, max_epochs=50,
                           batch_size=8, overwrite=overwrite, progress=False)
        assert time.perf_counter() - start < 30  # refused, not trained 50 epochs
    assert sorted(p.name for p in tmp_path.iterdir()) in ([], ["ckpt"])
    assert not folder.exists() or not any(folder.iterdir())


# ---------------------------------------------------------------------------------
# kill -9


@pytest.mark.parametrize("kind", ["save_model", "put"])
def test_kill_during_saves(worker, tmp_path, kind):
    """Issue 17 (1): 5 of 20 kills during repeated saves left a mix that loaded."""
    result = worker.call("kill_saves", folder=str(tmp_path / "ckpt"), kind=kind,
                         trials=20, seed=17)
    report(f"kill -9 during {kind}", **result)
    _no_silent_or_lost(result)
    outcomes = result["outcomes"]
    assert outcomes["correct"] == outcomes["killed"] == 20
    assert outcomes.get("leftovers after the next load", 0) == 0, result
    assert outcomes.get("leftovers after the next save", 0) == 0, result


@pytest.mark.parametrize("kind", ["save_model", pytest.param(
    "put", marks=pytest.mark.slow)])
def test_kill_at_every_line_of_a_save(worker, tmp_path, kind):
    """Random kills rarely land between two renames; these land on each line."""
    result = worker.call("kill_at_each_line", folder=str(tmp_path / "ckpt"),
                         kind=kind)
    lines = result.pop("killed at")
    report(f"kill -9 at every line of {kind}'s writing code", **result,
           lines=len(set(lines)), functions=sorted({x.split(":")[0] for x in lines}))
    _no_silent_or_lost(result)
    outcomes = result["outcomes"]
    assert outcomes["correct"] == result["trials"] > 30, result
    assert outcomes.get("leftovers after the next load", 0) == 0, result
    assert result["loaded"]["previous"] and result["loaded"]["new"], result


@pytest.mark.parametrize("trials", [12, pytest.param(40, marks=pytest.mark.slow)])
def test_kill_during_training(worker, tmp_path, trials):
    """Issue 17 (2): a run's history must never be paired with another run's
    weights; rerunning trains only when the new run was not published."""
    result = worker.call("kill_trains", folder=str(tmp_path / "ckpt"), trials=trials,
                         seed=trials)
    report("kill -9 during train_run", **result)
    assert result["child_trains_alike"], result
    _no_silent_or_lost(result)
    outcomes = result["outcomes"]
    assert outcomes["correct"] == trials
    assert outcomes["rerun trained only if needed"] == trials, result
    assert outcomes["killed"] >= trials // 2, result
    for bad in ("leftovers after the next load", "leftovers after the rerun",
                "warnings on the rerun"):
        assert outcomes.get(bad, 0) == 0, result


# ---------------------------------------------------------------------------------
# Concurrent readers and writers


@pytest.mark.parametrize("kind", ["save_model", "put"])
def test_concurrent_readers_and_writers(worker, tmp_path, kind):
    """Issue 17 (1): 766 of 1,368 loads during saves by another process were mixes."""
    result = worker.call("concurrent", folder=str(tmp_path / "ckpt"), kind=kind,
                         seconds=5, writers=1, readers=3, seed=17)
    report(f"concurrent readers and writers ({kind})", **result)
    outcomes = result["outcomes"]
    assert result["children failed"] == 0, result
    assert outcomes.get("silent", 0) == 0, result
    assert outcomes["correct"] == result["loads"] > 100, result  # no error either
    assert result["saves"] > 20 and result["leftovers at the end"] == 0, result
    assert result["changes seen by readers"] > 20, result


if __name__ == "__main__":
    if sys.argv[1] == "worker":
        worker_main()
    elif sys.argv[1] == "perms":
        Path(sys.argv[2]).mkdir(parents=True)
        print(json.dumps(perms_scenario(sys.argv[2])))
    else:
        raise SystemExit(f"unknown command {sys.argv[1]!r}")
