"""SIGKILL a subprocess half way: wait until the files it writes show progress, then kill it."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Callable


def kill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float = 120.0, why: str = "") -> None:
    """Poll ``ready()`` every 5 ms; once it holds, SIGKILL ``proc`` and reap it. Fails the test when
    the process ends first (it could not be killed half way; ``why`` says what it printed)."""
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and proc.poll() is None and not ready():
            time.sleep(0.005)
        assert proc.poll() is None, f"the process ended before it could be killed half way {why}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
