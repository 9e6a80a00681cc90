"""actfns.env: the ACTFNS_* variables, seeds, devices and safe writes."""

import os
import subprocess
import sys

import pytest
import torch

import actfns as af
import actfns.env as env


@pytest.mark.parametrize("value", ["1", "true", "True", "YES", "on", " yes "])
def test_progress_on_spellings(monkeypatch, value):
    monkeypatch.setenv("ACTFNS_PROGRESS", value)
    assert env.progress_enabled() is True


@pytest.mark.parametrize("value", ["0", "false", "FALSE", "no", "off", "Off"])
def test_progress_off_spellings(monkeypatch, value):
    monkeypatch.setenv("ACTFNS_PROGRESS", value)
    assert env.progress_enabled() is False


def test_progress_default_argument_and_bad_value(monkeypatch):
    monkeypatch.delenv("ACTFNS_PROGRESS")
    assert env.progress_enabled() is True
    monkeypatch.setenv("ACTFNS_PROGRESS", "0")
    assert env.progress_enabled(True) is True  # the argument wins
    monkeypatch.setenv("ACTFNS_PROGRESS", "maybe")
    with pytest.raises(ValueError, match="ACTFNS_PROGRESS='maybe' is not a yes/no"):
        env.progress_enabled()


def test_checkpoint_folder_that_is_a_file(tmp_path, monkeypatch):
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    monkeypatch.setenv("ACTFNS_CHECKPOINTS", str(a_file))
    with pytest.raises(NotADirectoryError, match="ACTFNS_CHECKPOINTS"):
        af.checkpoint_dir()
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        af.RunStore(a_file)


def test_pretrained_url(monkeypatch):
    monkeypatch.delenv("ACTFNS_PRETRAINED_URL", raising=False)
    assert env.pretrained_url() is None
    monkeypatch.setenv("ACTFNS_PRETRAINED_URL", "  ")
    assert env.pretrained_url() is None
    monkeypatch.setenv("ACTFNS_PRETRAINED_URL", "https://example.org/networks")
    assert env.pretrained_url() == "https://example.org/networks/"


def test_cuda_requested_without_cuda_names_the_variable(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv("ACTFNS_DEVICE", "cuda")
    with pytest.raises(ValueError, match="ACTFNS_DEVICE='cuda', but torch finds no"):
        af.get_device()
    with pytest.raises(ValueError, match="device='cuda:1', but torch finds no"):
        af.get_device("cuda:1")


def test_device_of():
    net = af.BaseNetwork("relu", input_size=4, num_classes=2, hidden_sizes=(3,))
    assert af.device_of(net) == torch.device("cpu")
    assert af.device_of(torch.nn.Identity()) == torch.device("cpu")
    assert af.device_of(net.to("meta")) == torch.device("meta")


def test_atomic_write_gives_the_umask_mode_without_changing_the_umask(tmp_path):
    old = os.umask(0o027)
    try:
        env.atomic_write(tmp_path / "f", lambda f: f.write(b"x"))
        assert os.umask(0o027) == 0o027  # untouched
    finally:
        os.umask(old)
    assert (tmp_path / "f").stat().st_mode & 0o777 == 0o640


def test_atomic_write_failure_leaves_the_old_file_and_no_temp(tmp_path):
    target = tmp_path / "f"
    target.write_bytes(b"old")

    def fail(f):
        f.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        env.atomic_write(target, fail)
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]


def test_temp_files_of_dead_writers_are_removed_on_the_next_write(tmp_path):
    """A writer killed mid-write leaves .NAME.<host>.<pid>.<random>.tmp; the next
    write of NAME removes it; a live writer's file stays."""
    target = tmp_path / "data.bin"
    code = ("import os, sys; sys.path.insert(0, sys.argv[2]); import actfns.env as e; "
            "e.atomic_write(sys.argv[1], lambda f: (f.write(b'x' * 1000), "
            "f.flush(), os.kill(os.getpid(), 9)))")
    proc = subprocess.run([sys.executable, "-c", code, str(target), os.getcwd()],
                          capture_output=True)
    assert proc.returncode == -9
    left = list(tmp_path.glob(".data.bin.*.tmp"))
    assert len(left) == 1 and not target.exists()
    live = env.temp_name(target)  # this process's: alive
    live.write_bytes(b"being written")
    env.atomic_write(target, lambda f: f.write(b"new"))
    assert target.read_bytes() == b"new"
    assert not left[0].exists() and live.exists()


def test_read_json_errors_name_the_file(tmp_path):
    with pytest.raises(ValueError, match="history file not found"):
        env.read_json(tmp_path / "missing.json", "history")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(af.CheckpointError, match="bad.json is not valid JSON"):
        env.read_json(tmp_path / "bad.json", "history", af.CheckpointError)
