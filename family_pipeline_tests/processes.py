"""Child processes of the tests (dagster dev, dagster-daemon): started in their own process group
so that SIGTERM reaches the whole group, and stopped cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import time

__all__ = ["default_interrupts", "stop_process_group"]


def default_interrupts() -> None:
    """In the child: SIGINT back to its default. A test run in the background of a
    non-interactive shell inherits SIGINT ignored, and Dagster maps SIGTERM onto SIGINT's handler,
    so the server would ignore SIGTERM too (../shared/STACK.md)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def stop_process_group(proc: subprocess.Popen, grace_seconds: float = 30) -> bool:
    """SIGTERM to the whole process group; SIGKILL if it lingers. True if SIGTERM was enough for
    the group's leader. The rest of the group is waited for too, and killed if it lingers: a code
    server the leader started can outlive it (seen once: the daemon's ``dagster api grpc`` still
    running after the daemon had stopped on SIGTERM)."""
    _signal_group(proc.pid, signal.SIGTERM)
    stopped = True
    try:
        proc.wait(grace_seconds)
    except subprocess.TimeoutExpired:
        stopped = False
    deadline = time.monotonic() + (grace_seconds if stopped else 0)
    while _members(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    if _members(proc.pid):
        _signal_group(proc.pid, signal.SIGKILL)
    if not stopped:
        proc.wait(10)
    return stopped


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:  # nobody left in the group
        pass


def _members(pgid: int) -> list[int]:
    """Live processes of a process group (zombies left out: they wait for a parent to reap them)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry))
    return found
