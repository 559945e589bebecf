"""Child processes of the tests (dagster dev, dagster-daemon): started in their own process group
so that SIGTERM reaches the whole group, and stopped cleanly."""

from __future__ import annotations

import os
import signal
import subprocess

__all__ = ["default_interrupts", "stop_process_group"]


def default_interrupts() -> None:
    """In the child: SIGINT back to its default. A test run in the background of a
    non-interactive shell inherits SIGINT ignored, and Dagster maps SIGTERM onto SIGINT's handler,
    so the server would ignore SIGTERM too (../shared/STACK.md)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_process_group(proc: subprocess.Popen, grace_seconds: float = 30) -> bool:
    """SIGTERM to the whole process group; SIGKILL if it lingers. True if SIGTERM was enough."""
    if proc.poll() is not None:
        return True
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(grace_seconds)
        return True
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
        return False
