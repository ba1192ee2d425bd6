"""Taking turns at an embedded store: a process keeps the store between operations while
it lingers, and hands it over as soon as another process waits (pipeline/gate.py)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

from pipeline.gate import StoreGate

ROOT = Path(__file__).resolve().parents[2]

OTHER_PROCESS = """
import sys, time
sys.path.insert(0, sys.argv[2])
from pipeline.gate import StoreGate
gate = StoreGate(sys.argv[1], lambda: None, timeout_s=30)
started = time.monotonic()
with gate.hold():
    print(f"{time.monotonic() - started:.3f}")
gate.close()
"""


class Releases:
    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> None:
        self.count += 1


def lock_is_free(path: Path) -> bool:
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def test_without_linger_the_store_is_closed_after_each_operation(tmp_path: Path) -> None:
    released = Releases()
    gate = StoreGate(tmp_path / "store.lock", released)
    for n in (1, 2):
        with gate.hold():
            assert not lock_is_free(tmp_path / "store.lock")
        assert released.count == n and lock_is_free(tmp_path / "store.lock")


def test_a_lingering_store_is_kept_between_operations_then_closed_when_idle(
    tmp_path: Path,
) -> None:
    released = Releases()
    lock = tmp_path / "store.lock"
    # Long enough that a loaded machine (CI, other tests' leftovers) never passes it
    # between two back-to-back operations (0.5 s did, once).
    gate = StoreGate(lock, released, linger_s=10)
    for _ in range(3):
        with gate.hold():
            pass
        assert released.count == 0  # still open: the next operation does not reload it
        assert lock.read_text() == str(os.getpid()) and not lock_is_free(lock)
    deadline = time.monotonic() + 40
    while released.count == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert released.count == 1 and lock_is_free(lock)
    with gate.hold():  # taken again on the next operation
        assert not lock_is_free(lock)
    gate.close()
    assert released.count == 2 and lock_is_free(lock)


def test_a_waiting_process_gets_a_lingering_store_at_once(tmp_path: Path) -> None:
    released = Releases()
    lock = tmp_path / "store.lock"
    gate = StoreGate(lock, released, linger_s=60)
    with gate.hold():
        pass
    started = time.monotonic()
    other = subprocess.run([sys.executable, "-c", OTHER_PROCESS, str(lock), str(ROOT)],
                           capture_output=True, text=True, timeout=60)
    assert other.returncode == 0, other.stderr
    assert float(other.stdout) < 5 and time.monotonic() - started < 20  # not the 60 s
    assert released.count == 1
    with gate.hold():  # ours again once the other process is done
        assert lock.read_text() == str(os.getpid())
    gate.close()
