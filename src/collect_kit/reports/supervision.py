"""A run in progress: its manifest kept current, the kernels it started, and what happens
when it is stopped.

While a run goes (:func:`supervised`), a background thread rewrites the manifest's
``heartbeat_at`` every :data:`HEARTBEAT_SECONDS` and the manifest lists the pids of the
kernels the run started (``kernel_pids``). On SIGTERM, SIGINT, an exception or
interpreter exit the run's kernels are stopped and the run is marked ``failed``; a signal
then raises :class:`RunInterrupted`. (After a SIGKILL nothing here runs: the manifest
stops beating and a later run finds it stale, see
:func:`~collect_kit.reports.runs.recover_stale_runs`.)
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from . import runs
from .processes import alive, is_kernel, process_start, terminate

#: seconds between two rewrites of a running manifest's ``heartbeat_at``
HEARTBEAT_SECONDS = 5.0


class RunInterrupted(KeyboardInterrupt):
    """The run was stopped by a signal (SIGTERM or SIGINT); its kernels are stopped."""

    def __init__(self, signum: int):
        self.signum = signum
        self.folder: Path | None = None  # the run folder, once known
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


class RunState:
    """The manifest of a run in progress, its heartbeat and the kernels it started.

    The manifest is rewritten (:func:`~collect_kit.reports.runs.write_manifest`) with the
    result's status, error and notebooks at each :meth:`save`, by the run and by the
    heartbeat thread; :meth:`close` writes it a last time.
    """

    def __init__(self, path: Path, manifest: dict, result: runs.RunResult):
        self.path, self.manifest, self.result = path, manifest, result
        self.lock = threading.RLock()
        self.kernels: dict[int, int | None] = {}  # pid -> process start
        self.stop_beating = threading.Event()
        self.thread: threading.Thread | None = None
        self.closing = False
        self.closed = False
        self.signalled: int | None = None
        #: what stops the run's queries in progress, called at a signal (None: nothing)
        self.interrupt_queries: Callable[[], None] | None = None
        self.log: logging.Logger | None = None

    def save(self, final: bool = False) -> None:
        """Rewrite the manifest (atomically) with the heartbeat, kernels and notebooks.
        Once closing, only the final write (``final``) happens."""
        with self.lock:
            if self.closed or (self.closing and not final):
                return
            m = self.manifest
            m["status"] = self.result.status
            m["heartbeat_at"] = runs.timestamp()
            m["kernel_pids"] = list(self.kernels)
            m["kernel_process_starts"] = {str(p): s for p, s in self.kernels.items()}
            m["notebooks"] = [vars(n) for n in self.result.notebooks]
            if self.result.error:
                m["error"] = self.result.error
            runs.write_manifest(self.path, m)

    def set(self, **fields: object) -> None:
        """Add fields to the manifest (under the lock: the heartbeat thread reads it)."""
        with self.lock:
            self.manifest.update(fields)

    def kernel_started(self, pid: int) -> None:
        """Record a kernel the run started (and save the manifest naming it)."""
        with self.lock:
            self.kernels[pid] = process_start(pid)
        if self.log:
            self.log.info("kernel started (pid %s)", pid)
        self.save()

    def stop_kernels(self) -> list[int]:
        """Stop the run's kernels that are still running; returns their pids."""
        stopped = []
        for pid, started in list(self.kernels.items()):
            own = is_kernel(pid, started) if Path("/proc").is_dir() else alive(pid)
            if own and terminate(pid):
                stopped.append(pid)
        return stopped

    def _beat(self) -> None:
        while not self.stop_beating.wait(HEARTBEAT_SECONDS):
            try:
                self.save()
            except Exception as exc:  # a full disk: the run notices at its next write
                if self.log:
                    self.log.warning("heartbeat not written: %s", runs.one_line(exc))

    def start(self) -> None:
        """Start the heartbeat thread."""
        self.thread = threading.Thread(target=self._beat, name="collect-kit-heartbeat")
        self.thread.daemon = True
        self.thread.start()

    def close(self, status: str, error: str | None = None) -> None:
        """Stop the heartbeat and the kernels, then write the final manifest."""
        self.closing = True
        self.stop_beating.set()
        if self.thread is not None and self.thread is not threading.current_thread():
            self.thread.join(timeout=HEARTBEAT_SECONDS * 2)
        stopped = self.stop_kernels()
        if stopped and self.log:
            self.log.warning("stopped kernel(s) %s", ", ".join(map(str, stopped)))
        self.result.status = status
        if error:
            self.result.error = error
        with self.lock:
            self.manifest["ended_at"] = runs.timestamp()
            self.save(final=True)
            self.closed = True

    def on_signal(self, signum: int, frame) -> None:
        """SIGTERM/SIGINT: stop the kernels and the queries (:attr:`interrupt_queries`) now,
        then unwind the run (marked failed); again at a second signal. A signal while the
        run is closing is only recorded: the close finishes."""
        if self.closing:
            self.signalled = self.signalled or signum
            return
        self.signalled = signum
        self.stop_kernels()
        if self.interrupt_queries is not None:
            with contextlib.suppress(Exception):  # a closed connection: nothing runs on it
                self.interrupt_queries()
        raise RunInterrupted(signum)

    def raise_if_signalled(self) -> None:
        """Between two steps of the run (main thread): stop here if a signal came and its
        exception was swallowed on the way (a library catching the engine's error)."""
        if self.signalled is not None and not self.closing:
            raise RunInterrupted(self.signalled)

    def at_exit(self) -> None:
        """Interpreter exit before the run closed: mark it failed."""
        if not self.closed and not self.closing:
            self.close("failed", "the runner exited before the run finished")


@contextlib.contextmanager
def supervised(state: RunState) -> Iterator[None]:
    """Heartbeat, signal handlers (main thread only) and ``atexit`` while a run is going;
    the previous handlers are restored on leaving."""
    state.start()
    previous = {}
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, state.on_signal)
    atexit.register(state.at_exit)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        atexit.unregister(state.at_exit)
        state.stop_beating.set()
