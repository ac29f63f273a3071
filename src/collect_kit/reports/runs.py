"""Run folders on disk: ``<output>/<report>/<run-id>/``, their manifests, ``latest``, pruning.

:class:`RunResult` is a run as :func:`~collect_kit.reports.runner.run_report` returns it. A
run folder appears with its ``manifest.json`` already in it (:func:`new_run_folder`) and
every manifest is rewritten whole (:func:`write_manifest`). A ``running`` manifest whose
heartbeat is older than :data:`STALE_SECONDS`, or whose runner process is gone (same
machine only), reads as ``stale`` (:func:`run_status`); :func:`recover_stale_runs` marks
such runs ``failed`` and stops the kernels they recorded (only processes that are still
those ipykernels). ``<output>/<report>/latest`` is a symbolic link switched atomically
(:func:`switch_latest`). Manifests hold paths relative to the working folder, or else to
the report config's folder (:func:`display_path`), never absolute machine paths.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .. import files
from ..errors import CollectKitError
from .processes import is_kernel, runner_gone, terminate

#: a ``running`` manifest whose heartbeat is older than this reads as ``stale`` (a running
#: run rewrites it every :data:`~collect_kit.reports.supervision.HEARTBEAT_SECONDS`)
STALE_SECONDS = 60.0


@dataclass
class NotebookRun:
    """One notebook of a run, as the manifest's ``notebooks`` lists it."""

    name: str
    status: str = "pending"  # pending | running | exporting | ok | failed
    seconds_execute: float = 0.0  # papermill in total: kernel start and stop + cells
    seconds_cells: float = 0.0  # the cells alone (papermill's per-cell durations)
    seconds_export: float = 0.0
    failed_cell: int | None = None
    error: str | None = None
    tables: list[str] = field(default_factory=list)  # the workbook and CSVs of its tables


@dataclass
class RunResult:
    """The outcome of one report run (its status, error, notebooks, overrides, warnings
    and ``published`` are also in the run folder's manifest.json)."""

    report: str
    run_id: str
    folder: Path
    status: str  # running | ok | failed
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
        """The run folder's files ending in ``suffix`` (``.html``, ``.pdf``), sorted."""
        return sorted(self.folder.glob(f"*{suffix}"))


def _now() -> dt.datetime:
    return dt.datetime.now().astimezone()


def timestamp() -> str:
    """The current time as a manifest writes it: ISO 8601 to the second, with the
    machine's UTC offset (``2026-11-02T06:00:05+01:00``)."""
    return _now().isoformat(timespec="seconds")


def _parse_stamp(value: object) -> dt.datetime | None:
    """A manifest's time stamp; None when it is not one. One without an offset is taken
    as local time."""
    try:
        when = dt.datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return when if when.tzinfo else when.astimezone()


def one_line(text: object, limit: int = 500) -> str:
    """``text`` on one line (whitespace runs made one space), cut at ``limit`` characters:
    an error as run.log, the manifest and the notify command quote it."""
    return " ".join(str(text).split())[:limit]


def display_path(path: str | os.PathLike, base: str | os.PathLike) -> str:
    """``path`` relative to the working folder when inside it, else relative to ``base``
    (the report config's folder): what manifests store instead of absolute paths."""
    target = os.path.abspath(path)
    cwd = os.getcwd()
    if target == cwd or target.startswith(cwd.rstrip(os.sep) + os.sep):
        return os.path.relpath(target, cwd)
    return os.path.relpath(target, os.path.abspath(base))


def manifest_value(value: object, base: Path) -> object:
    """A parameter value as the manifest stores it: absolute paths (alone or in a list)
    through :func:`display_path`, anything else as it is."""
    if isinstance(value, list):
        return [manifest_value(v, base) for v in value]
    if isinstance(value, str) and os.path.isabs(value):
        return display_path(value, base)
    return value


def read_manifest(folder: str | os.PathLike) -> dict | None:
    """The run folder's manifest, or None when it has none (or it is unreadable)."""
    try:
        return json.loads((Path(folder) / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_manifest(path: Path, manifest: Mapping) -> None:
    """Write ``manifest`` to ``path`` whole (:func:`collect_kit.files.write_atomic`);
    raises :class:`~collect_kit.errors.DataAccessError` when the disk refuses."""
    files.write_atomic(path, json.dumps(manifest, indent=2, default=str), "run manifest")


def run_status(manifest: Mapping, now: dt.datetime | None = None) -> str:
    """``ok``, ``failed``, ``running`` or ``stale`` (``unknown`` without a status): a
    ``running`` manifest whose heartbeat is older than :data:`STALE_SECONDS` (or missing),
    or whose runner process is gone, is ``stale``."""
    status = str(manifest.get("status", "unknown"))
    if status != "running":
        return status
    if runner_gone(manifest.get("runner")):
        return "stale"
    beat = _parse_stamp(manifest.get("heartbeat_at"))
    if beat is None or ((now or _now()) - beat).total_seconds() > STALE_SECONDS:
        return "stale"
    return "running"


def new_run_folder(report_dir: Path, manifest: dict) -> Path:
    """Create ``report_dir/<run_id>`` with ``manifest`` already inside (a hidden folder
    renamed); returns it. Raises :class:`~collect_kit.errors.DataAccessError` when it
    cannot be written, leaving nothing behind."""
    folder = report_dir / manifest["run_id"]
    hidden = report_dir / f".{manifest['run_id']}.partial"
    try:
        report_dir.mkdir(parents=True, exist_ok=True)
        hidden.mkdir()
        write_manifest(hidden / "manifest.json", manifest)
        os.replace(hidden, folder)
    except OSError as exc:
        shutil.rmtree(hidden, ignore_errors=True)
        raise files.access_error(exc, folder, "run folder") from None
    except BaseException:
        shutil.rmtree(hidden, ignore_errors=True)
        raise
    return folder


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
                recovered_at=timestamp(),
                stopped_kernel_pids=stopped,
            )
            where = f"{report_dir.name}/{folder.name}"
            try:
                write_manifest(folder / "manifest.json", manifest)
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
    """Remove old run folders of one report; returns the names removed, sorted.

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


def switch_latest(report_dir: Path, run_id: str) -> None:
    """Point ``report_dir/latest`` at ``run_id`` atomically (a new link renamed over the
    old one). Raises :class:`~collect_kit.errors.DataAccessError` when it cannot."""
    tmp = report_dir / f".latest-{run_id}"
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        tmp.symlink_to(run_id)
        os.replace(tmp, report_dir / "latest")
    except OSError as exc:
        raise files.access_error(exc, report_dir / "latest", "latest link") from None


def latest_target(report_dir: Path) -> str | None:
    """The run id ``report_dir/latest`` points to; None when there is no such link."""
    try:
        return os.readlink(report_dir / "latest")
    except OSError:
        return None
