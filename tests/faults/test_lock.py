"""One run directory, one writer (issue 25): a second live distill/compare/export is refused in one line; the lock of a
killed writer is recovered with a line.  The holder is a real second process."""

import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import TINY, run_cli  # noqa: F401

HOLD = "import sys, time; from edgekd.run_lock import RunLock\nwith RunLock(sys.argv[1], 'distill'):\n    print('held', flush=True); time.sleep(120)\n"


@pytest.fixture
def holder(tmp_path):
    """A live process holding the lock of tmp_path/run."""
    run = tmp_path / "run"
    p = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "held"
    yield run, p
    p.kill()
    p.wait()


def test_a_second_writer_is_refused_while_the_first_lives(holder, tmp_path):
    run, p = holder
    res = run_cli(["distill", "--task", "depth", "--teacher", "none", *TINY, "--out", run], expect=2)
    err = res.stderr.strip()
    assert len(err.splitlines()) == 1 and f"is being written by edgekd distill (pid {p.pid}" in err and f"kill {p.pid}" in err, err
    assert sorted(x.name for x in run.iterdir()) == [".edgekd.lock"]  # nothing of the refused run written
    res = run_cli(["compare", "--teachers", "none", "--seeds", "1", *TINY, "--out", run], expect=2)
    assert "is being written by edgekd distill" in res.stderr
    res = run_cli(["export", run], expect=2)
    assert "is being written by edgekd distill" in res.stderr


def test_the_lock_of_a_killed_writer_is_recovered_with_a_line(holder):
    run, p = holder
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert (run / ".edgekd.lock").exists()  # SIGKILL leaves it behind
    res = run_cli(["export", run], expect=2)  # the next writer takes the folder over (and refuses it: there is no run in it)
    assert f"note: recovered the lock of {run} left by edgekd distill (pid {p.pid}" in res.stderr
    assert "holds no best.pt or last.pt" in res.stderr
    assert not (run / ".edgekd.lock").exists()  # released when done


def test_a_reused_pid_does_not_keep_a_lock(tmp_path):
    from edgekd.run_lock import LOCK_NAME, RunLock, _alive, read_lock

    run = tmp_path / "run"
    run.mkdir()
    # our own pid, but a process start time that is not ours: the writer died and its pid was given to us
    (run / LOCK_NAME).write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename, "verb": "export", "start": "1"}))
    assert not _alive(read_lock(run))
    lines = []
    with RunLock(run, "distill", log=lines.append):
        assert read_lock(run)["verb"] == "distill"
    assert len(lines) == 1 and "recovered the lock" in lines[0]


def test_a_refused_run_leaves_no_folder(tmp_path):
    from edgekd.errors import EdgekdError
    from edgekd.run_lock import RunLock

    with pytest.raises(EdgekdError):
        with RunLock(tmp_path / "new", "distill"):
            raise EdgekdError("a later check failed")
    assert not (tmp_path / "new").exists()
