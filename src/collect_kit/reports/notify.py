"""Telling someone how a run ended: the ``--notify-command`` run after every run."""

from __future__ import annotations

import os
import subprocess

from .. import files
from .runs import one_line

#: seconds a notify command may take before it is stopped
NOTIFY_TIMEOUT_SECONDS = 300


def run_notify_command(
    command: str, folder: str | os.PathLike | None, status: str, error: str | None = None
) -> str | None:
    """Run ``command`` with ``/bin/sh -c``: ``$1`` is the run folder ("" when the run was
    refused before it had one), ``$2`` the status (``ok`` or ``failed``); also in the
    environment as ``COLLECT_KIT_RUN_FOLDER``, ``COLLECT_KIT_RUN_STATUS`` and
    ``COLLECT_KIT_RUN_ERROR`` (the one-line reason of a failure, without example ids).

    Returns None when it succeeded, else what went wrong (for stderr; a failing notify
    command never changes the run's exit status). It is stopped after
    :data:`NOTIFY_TIMEOUT_SECONDS`.
    """
    where = "" if folder is None else str(folder)
    env = dict(os.environ, COLLECT_KIT_RUN_FOLDER=where, COLLECT_KIT_RUN_STATUS=status,
               COLLECT_KIT_RUN_ERROR=one_line(error or "", 2000))  # fmt: skip
    try:
        done = subprocess.run(
            ["/bin/sh", "-c", command, "collect-kit-notify", where, status],
            env=env, capture_output=True, text=True, timeout=NOTIFY_TIMEOUT_SECONDS,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return f"--notify-command '{command}': stopped after {NOTIFY_TIMEOUT_SECONDS} s"
    except OSError as exc:
        return f"--notify-command '{command}': could not be started: {files.reason(exc)}"
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        return f"--notify-command '{command}': exited with status {done.returncode}" + (
            f": {tail}" if tail else ""
        )
    return None
