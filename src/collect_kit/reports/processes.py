"""The processes of a run: the kernels it starts and the runner itself, told apart from
whatever later reuses their pids, and stopped.

A process is identified by its pid and its start time (``/proc/<pid>/stat``, clock ticks
since boot), and the runner also by the machine's boot id, so a manifest written by a run
can say later, from another process, whether that run's runner or kernels still run.
Without ``/proc`` (not Linux) a process only reads as alive or gone.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first); None when
    the process (or ``/proc``) is not there."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[-1].split()


def process_start(pid: int) -> int | None:
    """When process ``pid`` started (clock ticks since boot); None if gone or a zombie.

    With the pid it identifies a process even after the pid is reused.
    """
    stat = _proc_stat(pid)
    if stat is None or stat[0] in ("Z", "X"):
        return None
    return int(stat[19])


def boot_id() -> str | None:
    """This machine's boot id (a new one at every boot); None without ``/proc``."""
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def runner_identity() -> dict:
    """This process, identified well enough to tell later whether it is still running:
    ``pid``, ``process_start`` and ``boot_id`` (the manifest's ``runner``)."""
    return {"pid": os.getpid(), "process_start": process_start(os.getpid()), "boot_id": boot_id()}


def runner_gone(runner: object) -> bool:
    """The process a :func:`runner_identity` describes is known to be gone. False when it
    cannot be known: another machine or boot, no ``/proc``, or not an identity."""
    if not isinstance(runner, dict) or runner.get("boot_id") != boot_id() or not boot_id():
        return False
    return process_start(int(runner.get("pid", 0))) != runner.get("process_start")


def is_kernel(pid: int, started: int | None = None) -> bool:
    """Process ``pid`` is alive, is a Python ipykernel process (its ``/proc`` command
    line) and, when ``started`` is given, started at that time (not a reused pid)."""
    start = process_start(pid)
    if start is None or (started is not None and start != started):
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    program = Path(os.fsdecode(cmdline[0])).name
    return program.startswith("python") and any(b"ipykernel" in part for part in cmdline[1:])


def alive(pid: int) -> bool:
    """Process ``pid`` exists and is not a zombie (without ``/proc``: it exists)."""
    if Path("/proc").is_dir():
        return process_start(pid) is not None
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def terminate(pid: int, grace: float = 2.0) -> bool:
    """Stop process ``pid`` (and its process group when it leads one of its own):
    SIGTERM, then SIGKILL after ``grace`` seconds. True when it is gone."""
    try:
        own_group = os.getpgid(pid) == pid and pid != os.getpgid(0)
    except OSError:
        return True

    def send(sig: int) -> None:
        with contextlib.suppress(OSError):
            os.killpg(pid, sig) if own_group else os.kill(pid, sig)

    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        send(sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            _reap(pid)
            if not alive(pid):
                return True
            time.sleep(0.05)
    return not alive(pid)


def recording_kernel_manager(on_start: Callable[[int], None]) -> type:
    """nbclient's default kernel manager, calling ``on_start(pid)`` for each kernel it
    launches (passed to papermill as ``kernel_manager_class``).

    The kernels' own stderr is discarded: ipykernel's start-up warning and, when a run
    stops a kernel mid-message (a full disk), ZMQ tracebacks from its teardown, neither of
    them about the report. A notebook's errors come back through the notebook itself, and
    a kernel that dies is reported by nbclient."""
    import subprocess

    from jupyter_client import AsyncKernelManager

    class RecordingKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            kw["stderr"] = subprocess.DEVNULL
            await super()._async_launch_kernel(kernel_cmd, **kw)
            pid = getattr(self.provisioner, "pid", None)
            if pid:
                on_start(int(pid))

    return RecordingKernelManager
