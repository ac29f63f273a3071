"""Run a report: pre-flight, snapshots once, notebooks with papermill, HTML and PDF, ``latest``.

A run checks everything it can before any notebook runs (the report config, the ``-p``
values against the notebooks' declared parameters, the segmentation and experiment
configs, ``as_of`` against the data, that the output folder and the snapshot cache can be
written); a problem there raises before a run folder exists. Then it writes
``<output>/<report>/<run-id>/``: the executed notebooks, their HTML and PDF,
``manifest.json`` and ``run.log``.

Runs are finished or visibly not:

- the run folder appears with its manifest already in it (``status: running``); every
  artefact (executed notebook, HTML, PDF, manifest) is written under a temporary name and
  renamed when complete (:func:`collect_kit.files.write_atomic`), so a file with its final
  name is whole;
- while running, a background thread rewrites ``heartbeat_at`` every
  :data:`HEARTBEAT_SECONDS`; the manifest also records the pids of the kernels the run
  started (``kernel_pids``). A ``running`` manifest whose heartbeat is older than
  :data:`STALE_SECONDS` (or whose runner process is gone, on the same machine) reads as
  ``stale`` (:func:`run_status`);
- on SIGTERM, SIGINT, an exception or interpreter exit the runner stops its kernels and
  marks the run ``failed``. After a SIGKILL, the next run in the same output folder
  (:func:`recover_stale_runs`) stops the recorded kernels of stale runs (only processes
  that are still Python ipykernel processes started at the recorded time) and marks those
  runs ``failed``.

``latest`` means the scheduled report: ``<output>/<report>/latest`` is switched atomically
to a run only when every notebook succeeded and the run had no overrides (a ``-p``, or an
``as_of`` other than the config's), unless ``publish`` is given. After a successful run the
report's folder is pruned (``keep_runs``, ``keep_failed_days``). Manifests hold paths
relative to the working folder (when inside it) or to the report config's folder, never
absolute machine paths. Snapshots hold one row per customer, so they are cached outside
the run folder (``COLLECT_KIT_CACHE``, default ``~/.cache/collect_kit``), keyed by a
content fingerprint of the data (:func:`collect_kit.snapshot.fingerprint`) and the date.
"""

from __future__ import annotations

import ast
import atexit
import contextlib
import datetime as dt
import hashlib
import json
import logging
import math
import os
import secrets
import shutil
import signal
import subprocess
import threading
import time
import typing
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from .. import __version__, files
from ..errors import CollectKitError, ConfigError
from ..periods import parse_date, parse_month_end
from .config import ReportConfig, load_config

KERNEL = "python3"
#: seconds between two rewrites of a running manifest's ``heartbeat_at``
HEARTBEAT_SECONDS = 5.0
#: a ``running`` manifest whose heartbeat is older than this reads as ``stale``
STALE_SECONDS = 60.0
#: seconds a notify command may take before it is stopped
NOTIFY_TIMEOUT_SECONDS = 300

#: notebook parameters the runner sets itself, and what to use instead of ``-p``
RUNNER_PARAMETERS = {
    "as_of": "use --as-of (or the config's as_of)",
    "sources": "set sources: in the report config",
    "database": "use --database (or database: in the report config)",
    "run_id": "the runner sets it",
    "validated": "the runner sets it",
    "snapshots": "the runner sets it",
}
LANGUAGES: tuple[str, ...] = typing.get_args(ReportConfig.model_fields["language"].annotation)


class StaleDataError(CollectKitError, ValueError):
    """The data's extraction date is older than the report config's ``max_data_age_days``."""


class RunInterrupted(KeyboardInterrupt):
    """The run was stopped by a signal (SIGTERM or SIGINT); its kernels are stopped."""

    def __init__(self, signum: int):
        self.signum = signum
        self.folder: Path | None = None  # the run folder, once known
        super().__init__(f"interrupted by {signal.Signals(signum).name}")


@dataclass
class NotebookRun:
    name: str
    status: str = "pending"  # pending | running | ok | failed
    seconds_execute: float = 0.0  # papermill in total: kernel start and stop + cells
    seconds_cells: float = 0.0  # the cells alone (papermill's per-cell durations)
    seconds_export: float = 0.0
    failed_cell: int | None = None
    error: str | None = None


@dataclass
class RunResult:
    """The outcome of one report run (also written to the run folder's manifest.json)."""

    report: str
    run_id: str
    folder: Path
    status: str
    notebooks: list[NotebookRun] = field(default_factory=list)
    error: str | None = None
    #: detail for the console only (validation examples); never written to the run folder
    console_detail: str | None = None
    #: what differs from the scheduled report (parameter -> value); empty: scheduled run
    overrides: dict[str, object] = field(default_factory=dict)
    #: ``latest`` was switched to this run
    published: bool = False
    #: warnings also printed on the console (stale data, stale runs recovered)
    warnings: list[str] = field(default_factory=list)
    #: run folders removed after this run succeeded (keep_runs, keep_failed_days)
    pruned: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    @property
    def latest(self) -> Path:
        """The report's ``latest`` link (it points here only when :attr:`published`)."""
        return self.folder.parent / "latest"

    def files(self, suffix: str) -> list[Path]:
        return sorted(self.folder.glob(f"*{suffix}"))


def notebook_path(name: str) -> Path:
    """The packaged notebook ``notebooks/<name>.ipynb``."""
    return Path(str(resources.files("collect_kit") / "notebooks" / f"{name}.ipynb"))


def cache_dir() -> Path:
    return (
        Path(os.environ.get("COLLECT_KIT_CACHE", Path.home() / ".cache" / "collect_kit"))
        / "snapshots"
    )


def _now() -> dt.datetime:
    return dt.datetime.now().astimezone()


def _stamp(when: dt.datetime) -> str:
    return when.isoformat(timespec="seconds")


def today() -> pd.Timestamp:
    """The run's date: ``COLLECT_KIT_TODAY`` (YYYY-MM-DD, for tests) or today."""
    value = os.environ.get("COLLECT_KIT_TODAY")
    if value:
        return parse_date(value, "COLLECT_KIT_TODAY")
    return pd.Timestamp(dt.date.today())


# --------------------------------------------------------------------------- paths


def display_path(path: str | os.PathLike, base: str | os.PathLike) -> str:
    """``path`` relative to the working folder when inside it, else relative to ``base``
    (the report config's folder): what manifests store instead of absolute paths."""
    target = os.path.abspath(path)
    cwd = os.getcwd()
    if target == cwd or target.startswith(cwd.rstrip(os.sep) + os.sep):
        return os.path.relpath(target, cwd)
    return os.path.relpath(target, os.path.abspath(base))


# --------------------------------------------------------------------------- parameters


def declared_parameters(notebooks: list[str]) -> dict[str, dict[str, dict]]:
    """Per notebook: its declared parameters (papermill's ``inspect_notebook``)."""
    import papermill as pm

    return {n: pm.inspect_notebook(str(notebook_path(n))) for n in notebooks}


_TYPES = {"float": float, "int": int, "str": str, "bool": bool, "list": list, "dict": dict}
_TYPE_WORDS = {float: "a number", int: "a whole number", str: "text", bool: "true or false",
               list: "a list", dict: "a mapping"}  # fmt: skip


def _expected_type(info: Mapping) -> type | None:
    """The type a notebook parameter takes: its annotation, else its default's type."""
    annotated = _TYPES.get(str(info.get("inferred_type_name", "None")))
    if annotated is not None:
        return annotated
    try:
        default = ast.literal_eval(str(info.get("default")))
    except (ValueError, SyntaxError):
        return None
    return None if default is None else type(default)


def _shown(value: object) -> str:
    """A value as a message quotes it: text in quotes, anything else as Python writes it."""
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _kind(value: object) -> str:
    return "text" if isinstance(value, str) else type(value).__name__


def _number(name: str, value: object, low: float, high: float, what: str) -> float:
    """``value`` as a finite number in ``[low, high]``, else a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f"parameter {name}: must be a number between {low:g} and {high:g} ({what}), "
            f"got {_shown(value)} ({_kind(value)})"
        )
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(
            f"parameter {name}: must be a number between {low:g} and {high:g} ({what}), "
            f"got {value!r}"
        )
    return float(value)


def _segmentation_parameter(name: str, value: object) -> str:
    """A segmentation YAML path (relative to the working folder), loaded to check it."""
    from .. import segmentation

    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"parameter {name}: must be the path of a segmentation YAML, got {_shown(value)}"
        )
    path = os.path.abspath(value)
    segmentation.load(path)  # its errors name the file and the field
    return path


def _experiments_parameter(name: str, value: object) -> list[str]:
    """Experiment YAML paths or packaged example names, each loaded to check it."""
    from ..experiments.config import load_experiment
    from .context import experiment_configs

    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ConfigError(
            f"parameter {name}: must be a list of experiment YAML paths or packaged example "
            f"names, got {_shown(value)}"
        )
    paths = [str(p.resolve()) for p in experiment_configs(items)]
    for path in paths:
        load_experiment(path)
    return paths


def _title_parameter(name: str, value: object) -> str:
    """One line of 1 to 200 characters (a number is taken as its text)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > 200
        or any(ord(c) < 32 for c in value)
    ):
        raise ConfigError(
            f"parameter {name}: must be one line of 1 to 200 characters, got {_shown(value)}"
        )
    return value


def _language_parameter(name: str, value: object) -> str:
    """One of the report languages of the report config."""
    if value not in LANGUAGES:
        raise ConfigError(
            f"parameter {name}: must be one of {', '.join(LANGUAGES)}, got {_shown(value)}"
        )
    return str(value)


#: parameters with a rule beyond their type
_RULES: dict[str, Callable[[str, object], object]] = {
    "language": _language_parameter,
    "lgd": lambda n, v: _number(n, v, 0.0, 1.0, "loss given default, a fraction"),
    "report_title": _title_parameter,
    "segmentation": _segmentation_parameter,
    "experiments": _experiments_parameter,
}


def check_parameter(name: str, value: object, info: Mapping) -> object:
    """``value`` checked against the notebook parameter ``name`` (declared as ``info``).

    Returns the value to inject (paths made absolute, numbers as floats). Raises
    :class:`ConfigError` naming the parameter, what was given and what is expected.
    """
    rule = _RULES.get(name)
    if rule is not None:
        return rule(name, value)
    expected = _expected_type(info)
    if expected is None or value is None:
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is float and isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"parameter {name}: must be a finite number, got {value!r}")
        return value
    if expected is str and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    raise ConfigError(
        f"parameter {name}: must be {_TYPE_WORDS.get(expected, expected.__name__)} "
        f"(default {info.get('default')}), got {_shown(value)} ({_kind(value)})"
    )


def check_parameters(
    parameters: Mapping[str, object], declared: Mapping[str, Mapping[str, dict]], report: str
) -> dict[str, object]:
    """Every ``-p`` value checked before anything runs (see :func:`check_parameter`).

    A name no notebook declares, or one the runner sets itself, is a :class:`ConfigError`.
    """
    known = {n: info for params in declared.values() for n, info in params.items()}
    settable = sorted(set(known) - set(RUNNER_PARAMETERS))
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ConfigError(
            f"parameter {', '.join(unknown)}: no notebook of report '{report}' takes it "
            f"(they take: {', '.join(settable)})"
        )
    for name in parameters:
        if name in RUNNER_PARAMETERS:
            raise ConfigError(f"parameter {name}: cannot be set with -p; {RUNNER_PARAMETERS[name]}")
    return {name: check_parameter(name, v, known[name]) for name, v in parameters.items()}


# --------------------------------------------------------------------------- processes


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of ``/proc/<pid>/stat`` after the command name (state first)."""
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


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


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


def _alive(pid: int) -> bool:
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
            if not _alive(pid):
                return True
            time.sleep(0.05)
    return not _alive(pid)


def _recording_kernel_manager(on_start: Callable[[int], None]) -> type:
    """nbclient's default kernel manager, calling ``on_start(pid)`` for each kernel it
    launches (passed to papermill as ``kernel_manager_class``)."""
    from jupyter_client import AsyncKernelManager

    class RecordingKernelManager(AsyncKernelManager):
        async def _async_launch_kernel(self, kernel_cmd, **kw):
            await super()._async_launch_kernel(kernel_cmd, **kw)
            pid = getattr(self.provisioner, "pid", None)
            if pid:
                on_start(int(pid))

    return RecordingKernelManager


# --------------------------------------------------------------------------- manifests


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """The run folder's manifest, or None when it has none (or it is unreadable)."""
    try:
        return json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _parse_stamp(value: object) -> dt.datetime | None:
    try:
        stamp = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.astimezone()


def _runner_gone(runner: object) -> bool:
    """The run's runner process is known to be gone (same machine and boot only)."""
    if not isinstance(runner, dict) or runner.get("boot_id") != _boot_id() or not _boot_id():
        return False
    return process_start(int(runner.get("pid", 0))) != runner.get("process_start")


def run_status(manifest: Mapping, now: dt.datetime | None = None) -> str:
    """``ok``, ``failed``, ``running`` or ``stale``: a ``running`` manifest whose heartbeat
    is older than :data:`STALE_SECONDS`, or whose runner process is gone, is ``stale``."""
    status = str(manifest.get("status", "unknown"))
    if status != "running":
        return status
    if _runner_gone(manifest.get("runner")):
        return "stale"
    beat = _parse_stamp(manifest.get("heartbeat_at"))
    if beat is None or ((now or _now()) - beat).total_seconds() > STALE_SECONDS:
        return "stale"
    return "running"


def _write_json(path: Path, data: Mapping) -> None:
    files.write_atomic(path, json.dumps(data, indent=2, default=str), "run manifest")


def _run_folders(report_dir: Path) -> Iterator[Path]:
    """The run folders of one report (not ``latest``, not folders being created)."""
    if not report_dir.is_dir():
        return
    for folder in sorted(report_dir.iterdir()):
        if folder.is_dir() and not folder.is_symlink() and not folder.name.startswith("."):
            yield folder


def recover_stale_runs(output_dir: str | os.PathLike) -> list[str]:
    """Mark every stale run under ``output_dir`` (any report) ``failed``, stopping the
    kernels it recorded that are still its ipykernel processes. Returns one message per
    run recovered (and per manifest that could not be rewritten)."""
    messages = []
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return messages
    for report_dir in sorted(p for p in output_dir.iterdir() if p.is_dir()):
        for folder in _run_folders(report_dir):
            manifest = read_manifest(folder)
            if manifest is None or run_status(manifest) != "stale":
                continue
            starts = manifest.get("kernel_process_starts") or {}
            stopped = [
                pid
                for pid in manifest.get("kernel_pids") or []
                if is_kernel(pid, starts.get(str(pid))) and terminate(pid)
            ]
            beat = manifest.get("heartbeat_at")
            manifest.update(
                status="failed",
                error=f"the run stopped without finishing (last heartbeat {beat}); "
                "found stale and marked failed by a later run",
                recovered_at=_stamp(_now()),
                stopped_kernel_pids=stopped,
            )
            where = f"{report_dir.name}/{folder.name}"
            try:
                _write_json(folder / "manifest.json", manifest)
            except CollectKitError as exc:
                messages.append(f"stale run {where} could not be marked failed: {exc}")
                continue
            kernels = f"; stopped its kernel(s) {', '.join(map(str, stopped))}" if stopped else ""
            messages.append(
                f"stale run {where} (running, last heartbeat {beat}): marked failed{kernels}"
            )
    return messages


def prune_runs(
    report_dir: str | os.PathLike,
    keep_runs: int | None,
    keep_failed_days: int,
    keep: set[str],
    now: dt.datetime | None = None,
) -> list[str]:
    """Remove old run folders of one report; returns the names removed.

    Keeps the ``keep_runs`` newest successful runs (None: all), failed runs younger than
    ``keep_failed_days`` days, every run still running (or stale), and the runs named in
    ``keep`` (the current run and the one ``latest`` points to, even when older). Folders
    without a manifest are left alone.
    """
    report_dir, now = Path(report_dir), now or _now()
    ok, removed = [], []
    for folder in _run_folders(report_dir):
        manifest = read_manifest(folder)
        if manifest is None:
            continue
        started = _parse_stamp(manifest.get("started_at")) or now
        status = run_status(manifest, now)
        if status == "ok":
            ok.append((started, folder))
        elif status == "failed" and (now - started) > dt.timedelta(days=keep_failed_days):
            removed.append(folder)
    if keep_runs is not None:
        ok.sort(key=lambda item: item[0], reverse=True)
        removed += [folder for _, folder in ok[keep_runs:]]
    names = []
    for folder in removed:
        if folder.name in keep:
            continue
        shutil.rmtree(folder, ignore_errors=True)
        if not folder.exists():
            names.append(folder.name)
    return sorted(names)


# --------------------------------------------------------------------------- run state


class _RunState:
    """The manifest of a run in progress, its heartbeat and the kernels it started."""

    def __init__(self, path: Path, manifest: dict, result: RunResult):
        self.path, self.manifest, self.result = path, manifest, result
        self.lock = threading.RLock()
        self.kernels: dict[int, int | None] = {}
        self.stop_beating = threading.Event()
        self.thread: threading.Thread | None = None
        self.closing = False
        self.closed = False
        self.signalled: int | None = None
        self.log: logging.Logger | None = None

    def save(self, final: bool = False) -> None:
        """Rewrite the manifest (atomically) with the heartbeat, kernels and notebooks."""
        with self.lock:
            if self.closed or (self.closing and not final):
                return
            m = self.manifest
            m["status"] = self.result.status
            m["heartbeat_at"] = _stamp(_now())
            m["kernel_pids"] = list(self.kernels)
            m["kernel_process_starts"] = {str(p): s for p, s in self.kernels.items()}
            m["notebooks"] = [vars(n) for n in self.result.notebooks]
            if self.result.error:
                m["error"] = self.result.error
            _write_json(self.path, m)

    def set(self, **fields: object) -> None:
        """Add fields to the manifest (under the lock: the heartbeat thread reads it)."""
        with self.lock:
            self.manifest.update(fields)

    def kernel_started(self, pid: int) -> None:
        with self.lock:
            self.kernels[pid] = process_start(pid)
        if self.log:
            self.log.info("kernel started (pid %s)", pid)
        self.save()

    def stop_kernels(self) -> list[int]:
        """Stop the run's kernels that are still running; returns their pids."""
        stopped = []
        for pid, started in list(self.kernels.items()):
            own = is_kernel(pid, started) if Path("/proc").is_dir() else _alive(pid)
            if own and terminate(pid):
                stopped.append(pid)
        return stopped

    def _beat(self) -> None:
        while not self.stop_beating.wait(HEARTBEAT_SECONDS):
            try:
                self.save()
            except Exception as exc:  # a full disk: the run notices at its next write
                if self.log:
                    self.log.warning("heartbeat not written: %s", _one_line(exc))

    def start(self) -> None:
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
            self.manifest["ended_at"] = _stamp(_now())
            self.save(final=True)
            self.closed = True

    def on_signal(self, signum: int, frame) -> None:
        """SIGTERM/SIGINT: stop the kernels now, then unwind the run (marked failed)."""
        if self.signalled is not None or self.closing:
            self.signalled = self.signalled or signum
            return
        self.signalled = signum
        self.stop_kernels()
        raise RunInterrupted(signum)

    def at_exit(self) -> None:
        if not self.closed and not self.closing:
            self.close("failed", "the runner exited before the run finished")


@contextlib.contextmanager
def _supervised(state: _RunState) -> Iterator[None]:
    """Heartbeat, signal handlers (main thread only) and ``atexit`` while a run is going."""
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


# --------------------------------------------------------------------------- pieces


def _snapshot_cache(portfolio, fingerprint: str, as_of, log) -> Path:
    """Compute the snapshot once (per data fingerprint and date) into the cache."""
    from ..snapshot import snapshot

    files.make_folder(cache_dir(), "snapshot cache (COLLECT_KIT_CACHE)")
    path = cache_dir() / f"{fingerprint}-{as_of.date()}.parquet"
    if path.exists():
        log.info("snapshot %s: cached", as_of.date())
        return path
    t0 = time.perf_counter()
    files.write_atomic(
        path, lambda tmp: snapshot(portfolio.tables, as_of).to_parquet(tmp), "cached snapshot"
    )
    log.info("snapshot %s: computed in %.1f s", as_of.date(), time.perf_counter() - t0)
    return path


def _cells_seconds(executed: Path) -> float:
    """The time spent in the cells of an executed notebook (papermill records each)."""
    cells = json.loads(executed.read_text(encoding="utf-8"))["cells"]
    return float(sum(c["metadata"].get("papermill", {}).get("duration") or 0.0 for c in cells))


def _switch_latest(report_dir: Path, run_id: str) -> None:
    """Point ``latest`` at ``run_id`` atomically (a new link renamed over the old one)."""
    tmp = report_dir / f".latest-{run_id}"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(run_id)
        os.replace(tmp, report_dir / "latest")
    except OSError as exc:
        raise files.access_error(exc, report_dir / "latest", "latest link") from None


def _latest_target(report_dir: Path) -> str | None:
    try:
        return os.readlink(report_dir / "latest")
    except OSError:
        return None


def _logger(path: Path) -> logging.Logger:
    log = logging.getLogger(f"collect_kit.run.{path.parent.name}")
    log.setLevel(logging.INFO)
    log.propagate = False
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    return log


def _one_line(text: object, limit: int = 500) -> str:
    return " ".join(str(text).split())[:limit]


@dataclass
class _Failure:
    cell: int | None
    exec_count: int | None
    message: str


def _execute(name: str, out: Path, parameters: dict, folder: Path, state: _RunState):
    """Run one notebook with papermill into a temporary file renamed to ``out`` when done
    (also when a cell failed: the executed notebook is the evidence). Returns the
    failure, or None."""
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    failures: list[_Failure] = []

    def execute(tmp: Path) -> None:
        try:
            with warnings.catch_warnings():  # the temporary name does not end in .ipynb
                warnings.filterwarnings("ignore", "The specified file", UserWarning)
                pm.execute_notebook(
                    str(notebook_path(name)), str(tmp), parameters=parameters,
                    kernel_name=KERNEL, progress_bar=False, cwd=str(folder),
                    kernel_manager_class=_recording_kernel_manager(state.kernel_started),
                )  # fmt: skip
        except pm.PapermillExecutionError as exc:
            failures.append(
                _Failure(exc.cell_index, exc.exec_count, f"{exc.ename}: {_one_line(exc.evalue)}")
            )
        except (DeadKernelError, CellTimeoutError) as exc:
            if not Path(tmp).exists():
                raise
            failures.append(_Failure(None, None, f"{exc.__class__.__name__}: {_one_line(exc)}"))

    files.write_atomic(out, execute, "executed notebook")
    return failures[0] if failures else None


def _export(nb: NotebookRun, executed: Path, folder: Path, cfg, title: str, language: str, when):
    """HTML and PDF of an executed notebook, each written whole or not at all."""
    from . import export

    header = f"{title} — {when.date()}"
    document = export.html_document(
        export.notebook_body(executed), header, header, language, cfg.page_size
    )
    files.write_atomic(folder / f"{nb.name}.html", document, "report HTML")
    files.write_atomic(
        folder / f"{nb.name}.pdf", lambda tmp: export.write_pdf(document, tmp), "report PDF"
    )


# --------------------------------------------------------------------------- pre-flight


@dataclass
class _Plan:
    """What a run will do, checked before anything runs."""

    cfg: ReportConfig
    config_path: Path
    base: Path
    config_text: str
    sources: str
    database: str | None
    segmentation: str
    experiments: list[str]
    language: str
    title: str
    declared: dict[str, dict[str, dict]]
    extra: dict[str, object]  # the other -p values, checked
    overrides: dict[str, object]  # every -p value, as the manifest shows it

    def shown(self, value: object) -> object:
        return _shown_value(value, self.base)


def _shown_value(value: object, base: Path) -> object:
    """A parameter value as the manifest stores it (paths not absolute)."""
    if isinstance(value, list):
        return [_shown_value(v, base) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        return display_path(value, base)
    return value


def _preflight(config_path, parameters, database) -> _Plan:
    """Check the config, the parameters, the segmentation and experiment configs."""
    from .. import segmentation
    from ..experiments.config import load_experiment

    cfg, base, config_text = load_config(config_path)

    def resolve(p: str) -> str:
        return p if os.path.isabs(p) else os.path.normpath(os.path.abspath(base / p))

    declared = declared_parameters(cfg.notebooks)
    given = dict(parameters or {})
    checked = check_parameters(given, declared, cfg.name)
    overrides = {k: _shown_value(v, base) for k, v in checked.items()}
    seg = checked.pop("segmentation", None) or resolve(cfg.segmentation)
    experiments = checked.pop("experiments", None)
    if experiments is None:
        experiments = [resolve(e) for e in cfg.experiments]
        for path in experiments:
            load_experiment(path)
    if "segmentation" not in given:
        segmentation.load(seg)
    # absolute: notebooks run with the run folder as working directory
    if database is not None:
        db, where = os.path.abspath(database), f"--database: '{database}'"
    else:
        db = resolve(cfg.database) if cfg.database else None
        where = f"{config_path}: database: '{cfg.database}'"
    if db is not None and not os.path.isfile(db):
        raise ConfigError(f"{where} is not a file (expected a DuckDB database file)")
    return _Plan(
        cfg, Path(config_path), base, config_text, resolve(cfg.sources), db, seg, experiments,
        checked.pop("language", cfg.language), checked.pop("report_title", cfg.title),
        declared, checked, overrides,
    )  # fmt: skip


def _as_of_dates(portfolio, as_of, plan: _Plan) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(the run's as_of, the config's as_of), both checked against the data."""
    config_name = f"{plan.config_path}: as_of"
    if portfolio.report.ok:
        scheduled = portfolio.month_end(plan.cfg.as_of, config_name)
        when = portfolio.month_end(as_of, "--as-of") if as_of is not None else scheduled
    else:  # the tables may be incomplete: the format and the extraction date only
        bound = {"extraction_date": portfolio.extraction_date}
        scheduled = parse_month_end(plan.cfg.as_of, config_name, **bound)
        when = parse_month_end(as_of, "--as-of", **bound) if as_of is not None else scheduled
    return when, scheduled


def _data_age_warning(cfg: ReportConfig, extraction, run_day: pd.Timestamp) -> str | None:
    """A warning when the data is older than the config's ``max_data_age_days``."""
    if cfg.max_data_age_days is None:
        return None
    age = (run_day.normalize() - pd.Timestamp(extraction).normalize()).days
    if age <= cfg.max_data_age_days:
        return None
    return (
        f"stale data: the extraction date {pd.Timestamp(extraction).date()} is {age} days "
        f"before the run's date {run_day.date()}; the report config allows "
        f"max_data_age_days: {cfg.max_data_age_days}"
    )


# --------------------------------------------------------------------------- the run


def run_report(
    config_path: str | os.PathLike,
    as_of: str | None = None,
    parameters: Mapping[str, object] | None = None,
    output_dir: str | os.PathLike = "reports",
    database: str | os.PathLike | None = None,
    progress: Callable[[str], None] | None = None,
    *,
    publish: bool = False,
    fail_if_stale: bool = False,
    warn: Callable[[str], None] | None = None,
) -> RunResult:
    """Run the report described by ``config_path`` (see the module docstring).

    ``as_of`` overrides the config's; ``parameters`` go to every notebook that declares
    them; ``database`` overrides the sources' DuckDB file. With overrides (any parameter,
    or an ``as_of`` other than the config's) ``latest`` moves only when ``publish``.
    ``warn`` receives warnings as they happen (stale runs recovered, stale data).

    Raises before creating a run folder: :class:`ConfigError` /
    :class:`~collect_kit.errors.InvalidParameterError` for a bad config, parameter or ``as_of``,
    :class:`~collect_kit.errors.DataAccessError` for data or folders that cannot be read
    or written, :class:`StaleDataError` when ``fail_if_stale`` and the data is older than
    ``max_data_age_days``. Invalid data or a failing notebook give a result with
    ``status == "failed"`` (nothing raised); a signal raises :class:`RunInterrupted`
    after the run is marked failed.
    """
    from .. import sources

    say = progress or (lambda _m: None)
    notes: list[str] = []

    def tell(message: str) -> None:
        notes.append(message)
        (warn or (lambda _m: None))(message)

    output_dir = Path(output_dir)
    for message in recover_stale_runs(output_dir):
        tell(message)
    plan = _preflight(config_path, parameters, database)
    files.check_writable_folder(output_dir, "output folder")
    files.check_writable_folder(cache_dir(), "snapshot cache (COLLECT_KIT_CACHE)")
    say("Loading and validating the portfolio")
    t0 = time.perf_counter()
    portfolio = sources.load(plan.sources, database=plan.database, validate=False)
    try:
        when, scheduled = _as_of_dates(portfolio, as_of, plan)
        run_day = today()
        stale = _data_age_warning(plan.cfg, portfolio.extraction_date, run_day)
        if stale and fail_if_stale:
            raise StaleDataError(f"{stale} (--fail-if-stale)")
    except BaseException:
        portfolio.connection.disconnect()
        raise
    if stale:
        tell(stale)
    overrides = dict(plan.overrides)
    if when != scheduled:
        overrides["as_of"] = str(when.date())
    context = _RunContext(plan, portfolio, when, overrides, publish, notes, run_day, output_dir)
    return _run(context, say, tell, t0)


def _new_run_folder(report_dir: Path, manifest: dict) -> Path:
    """Create the run folder with its manifest already inside (a hidden folder renamed)."""
    folder = report_dir / manifest["run_id"]
    hidden = report_dir / f".{manifest['run_id']}.partial"
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        hidden.mkdir()
        _write_json(hidden / "manifest.json", manifest)
        os.replace(hidden, folder)
    except OSError as exc:
        shutil.rmtree(hidden, ignore_errors=True)
        raise files.access_error(exc, folder, "run folder") from None
    except BaseException:
        shutil.rmtree(hidden, ignore_errors=True)
        raise
    return folder


@dataclass
class _RunContext:
    """What pre-flight established for a run."""

    plan: _Plan
    portfolio: object
    when: pd.Timestamp
    overrides: dict[str, object]
    publish: bool
    warnings: list[str]
    run_day: pd.Timestamp
    output_dir: Path


def _runner_identity() -> dict:
    """This process, identified well enough to tell later whether it is still running."""
    return {"pid": os.getpid(), "process_start": process_start(os.getpid()), "boot_id": _boot_id()}


def _first_manifest(ctx: _RunContext, run_id: str, started: dt.datetime) -> dict:
    """The manifest as the run starts (``status: running``)."""
    plan, extraction = ctx.plan, pd.Timestamp(ctx.portfolio.extraction_date).normalize()
    return {
        "report": plan.cfg.name,
        "title": plan.title,
        "run_id": run_id,
        "status": "running",
        "package_version": __version__,
        "config": display_path(plan.config_path, plan.base),
        "config_sha256": hashlib.sha256(plan.config_text.encode()).hexdigest(),
        "started_at": _stamp(started),
        "heartbeat_at": _stamp(started),
        "kernel_pids": [],
        "runner": _runner_identity(),
        "as_of": str(ctx.when.date()),
        "overrides": ctx.overrides,
        "published": False,
        "extraction_date": str(extraction.date()),
        "data_age_days": int((ctx.run_day - extraction).days),
        "warnings": ctx.warnings,
    }


def _notebook_parameters(ctx: _RunContext, run_id: str, snapshots: dict[str, str]) -> dict:
    """Every parameter the runner injects (notebooks receive those they declare)."""
    plan = ctx.plan
    params = {
        "as_of": str(ctx.when.date()),
        "sources": plan.sources,
        "database": plan.database,
        "segmentation": plan.segmentation,
        "experiments": plan.experiments,
        "language": plan.language,
        "report_title": plan.title,
        "run_id": run_id,
        "snapshots": snapshots,
        "validated": True,
    }
    params.update(plan.extra)
    return params


def _shown_parameters(plan: _Plan, params: dict) -> dict:
    """The parameters as the manifest stores them: paths relative, snapshots by file name
    (in the snapshot cache, ``COLLECT_KIT_CACHE``)."""
    shown = {k: plan.shown(v) for k, v in params.items() if k != "snapshots"}
    shown["snapshots"] = {d: Path(p).name for d, p in params["snapshots"].items()}
    return shown


def _run(ctx: _RunContext, say, tell, t0: float) -> RunResult:
    """The run proper: its folder, snapshots, notebooks, exports, ``latest``, pruning."""
    cfg = ctx.plan.cfg
    report_dir = ctx.output_dir / cfg.name
    run_id = f"{dt.datetime.now():%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    started = _now()
    manifest = _first_manifest(ctx, run_id, started)
    try:
        folder = _new_run_folder(report_dir, manifest)
    except BaseException:
        ctx.portfolio.connection.disconnect()
        raise
    result = RunResult(
        cfg.name, run_id, folder, "running", [NotebookRun(n) for n in cfg.notebooks],
        overrides=ctx.overrides, warnings=ctx.warnings,
    )  # fmt: skip
    # absolute: papermill runs each notebook with the run folder as working directory
    state = _RunState(folder.absolute() / "manifest.json", manifest, result)
    log = state.log = _logger(folder.absolute() / "run.log")
    try:
        with _supervised(state):  # handlers stay until the final manifest is written
            try:
                _run_body(ctx, state, result, report_dir, say, tell, t0)
            except RunInterrupted as exc:
                name = signal.Signals(exc.signum).name
                log.error("run %s interrupted by %s", run_id, name)
                state.close("failed", f"interrupted by {name}")
                exc.folder = folder
                raise
            except CollectKitError as exc:
                log.error("run failed: %s: %s", exc.__class__.__name__, _one_line(exc))
                state.close("failed", str(exc))
            except BaseException as exc:  # a bug: keep the evidence, then let it surface
                log.exception("run crashed")
                state.close("failed", f"{exc.__class__.__name__}: {_one_line(exc)}")
                raise
    finally:
        with contextlib.suppress(Exception):
            ctx.portfolio.connection.disconnect()
        for handler in list(log.handlers):
            handler.close()
            log.removeHandler(handler)
    return result


def _run_body(ctx: _RunContext, state: _RunState, result: RunResult, report_dir: Path,
              say, tell, t0: float) -> None:  # fmt: skip
    """Validation verdict, snapshots, notebooks and exports; closes the run's state."""
    from ..snapshot import fingerprint
    from .context import snapshot_dates

    plan, cfg, manifest, log = ctx.plan, ctx.plan.cfg, state.manifest, state.log
    log.info("run %s of %s started (as of %s)", result.run_id, cfg.name, ctx.when.date())
    for message in ctx.warnings:
        log.warning(message)
    portfolio = ctx.portfolio
    if not portfolio.report.ok:
        # the console gets the examples; the run folder only the counts
        result.console_detail = str(portfolio.report)
        raise ConfigError(portfolio.report.text(examples=False))
    key = fingerprint(portfolio.tables)
    state.set(data_fingerprint=key, seconds_validate=time.perf_counter() - t0)
    dates = snapshot_dates(ctx.when)
    say(f"Computing snapshots as of {', '.join(str(d.date()) for d in dates)}")
    t0 = time.perf_counter()
    snapshots = {str(d.date()): str(_snapshot_cache(portfolio, key, d, log)) for d in dates}
    state.set(seconds_snapshots=time.perf_counter() - t0)
    portfolio.connection.disconnect()
    params = _notebook_parameters(ctx, result.run_id, snapshots)
    state.set(parameters=_shown_parameters(plan, params))
    state.save()
    for nb in result.notebooks:
        if not _run_notebook(nb, ctx, state, result, params, say):
            state.close("failed")
            return
    result.published = not ctx.overrides or ctx.publish
    state.set(published=result.published)
    state.close("ok")
    if result.published:
        try:
            _switch_latest(report_dir, result.run_id)
        except CollectKitError as exc:  # the run is whole; say that latest did not move
            result.published = manifest["published"] = False
            tell(f"latest not switched to this run: {exc}")
            _write_json(state.path, manifest)
    if result.published:
        log.info("run %s succeeded; latest -> %s", result.run_id, result.run_id)
    else:
        log.info("run %s succeeded; latest unchanged", result.run_id)
    keep = {result.run_id} | ({_latest_target(report_dir)} - {None})
    result.pruned = prune_runs(report_dir, cfg.keep_runs, cfg.keep_failed_days, keep)
    if result.pruned:
        log.info("pruned %s", ", ".join(result.pruned))


def _run_notebook(nb: NotebookRun, ctx: _RunContext, state: _RunState, result: RunResult,
                  params: dict, say) -> bool:  # fmt: skip
    """Execute and export one notebook; False (and the result's error set) when it failed."""
    log, folder = state.log, result.folder.absolute()
    say(f"Running {nb.name}")
    nb.status = "running"
    state.save()
    out = folder / f"{nb.name}.ipynb"
    wanted = {k: v for k, v in params.items() if k in ctx.plan.declared[nb.name]}
    t0 = time.perf_counter()
    failure = _execute(nb.name, out, wanted, folder, state)
    nb.seconds_execute = time.perf_counter() - t0
    if failure is not None:
        nb.status, nb.failed_cell, nb.error = "failed", failure.cell, failure.message[:500]
        where = f"cell {failure.cell}" if failure.cell is not None else "an unknown cell"
        if failure.exec_count is not None:
            where += f" (In [{failure.exec_count}])"
        result.error = f"notebook {nb.name} failed in {where}: {failure.message}"[:700]
        log.error("%s", result.error)
        return False
    nb.seconds_cells = _cells_seconds(out)
    say(f"Exporting {nb.name} to HTML and PDF")
    t0 = time.perf_counter()
    _export(nb, out, folder, ctx.plan.cfg, ctx.plan.title, ctx.plan.language, ctx.when)
    nb.seconds_export = time.perf_counter() - t0
    nb.status = "ok"
    log.info("%s: executed in %.1f s, exported in %.1f s", nb.name, nb.seconds_execute,
             nb.seconds_export)  # fmt: skip
    state.save()
    return True


# --------------------------------------------------------------------------- notify


def run_notify_command(
    command: str, folder: str | os.PathLike | None, status: str, error: str | None = None
) -> str | None:
    """Run ``command`` with ``/bin/sh -c``: ``$1`` is the run folder ("" when the run was
    refused before it had one), ``$2`` the status (``ok`` or ``failed``); also in the
    environment as ``COLLECT_KIT_RUN_FOLDER``, ``COLLECT_KIT_RUN_STATUS`` and
    ``COLLECT_KIT_RUN_ERROR`` (the one-line reason of a failure, without example ids).

    Returns None when it succeeded, else what went wrong (for stderr; a failing notify
    command never changes the run's exit status).
    """
    where = "" if folder is None else str(folder)
    env = dict(os.environ, COLLECT_KIT_RUN_FOLDER=where, COLLECT_KIT_RUN_STATUS=status,
               COLLECT_KIT_RUN_ERROR=_one_line(error or "", 2000))  # fmt: skip
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
