"""Run a report: snapshots once, notebooks with papermill, HTML and PDF, manifest, ``latest``.

A run writes ``<output>/<report>/<run-id>/``: the executed notebooks, their HTML and PDF,
``manifest.json`` (parameters, config hash, data fingerprint, package version, times,
per-notebook status) and ``run.log``. ``<output>/<report>/latest`` is switched atomically
to a run only when every notebook succeeded, so a failed run never replaces the last good
report; the failed run keeps its evidence (the executed notebook with the error, the
manifest naming the failed cell). Snapshots hold one row per customer, so they are cached
outside the run folder (``COLLECT_KIT_CACHE``, default ``~/.cache/collect_kit``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from .. import __version__
from ..errors import CollectKitError, ConfigError, DataValidationError
from ..experiments.config import load_experiment
from . import export
from .config import load_config
from .context import as_of_date, snapshot_dates

KERNEL = "python3"


@dataclass
class NotebookRun:
    name: str
    status: str = "pending"  # pending | ok | failed
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

    @property
    def ok(self) -> bool:
        return self.status == "ok"

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


def _fingerprint(portfolio, config_text: str) -> str:
    """A hash of what the data is: source config, table sizes, extraction date."""
    h = hashlib.sha256(config_text.encode())
    for name, t in sorted(portfolio.tables.items()):
        h.update(f"{name}:{int(t.count().execute())};".encode())
    h.update(str(portfolio.extraction_date.date()).encode())
    return h.hexdigest()[:16]


def _snapshot_cache(portfolio, fingerprint: str, as_of, log) -> Path:
    """Compute the snapshot once (per data fingerprint and date) into the cache."""
    from ..snapshot import snapshot

    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{fingerprint}-{as_of.date()}.parquet"
    if path.exists():
        log.info("snapshot %s: cached", as_of.date())
        return path
    t0 = time.perf_counter()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    snapshot(portfolio.tables, as_of).to_parquet(tmp)
    os.replace(tmp, path)
    log.info("snapshot %s: computed in %.1f s", as_of.date(), time.perf_counter() - t0)
    return path


def _cells_seconds(executed: Path) -> float:
    """The time spent in the cells of an executed notebook (papermill records each)."""
    cells = json.loads(executed.read_text(encoding="utf-8"))["cells"]
    return float(sum(c["metadata"].get("papermill", {}).get("duration") or 0.0 for c in cells))


def _switch_latest(report_dir: Path, run_id: str) -> None:
    """Point ``latest`` at ``run_id`` atomically (a new link renamed over the old one)."""
    tmp = report_dir / f".latest-{run_id}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(run_id)
    os.replace(tmp, report_dir / "latest")


def _logger(path: Path) -> logging.Logger:
    log = logging.getLogger(f"collect_kit.run.{path.parent.name}")
    log.setLevel(logging.INFO)
    log.propagate = False
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    return log


def run_report(
    config_path: str | os.PathLike,
    as_of: str | None = None,
    parameters: Mapping[str, object] | None = None,
    output_dir: str | os.PathLike = "reports",
    database: str | os.PathLike | None = None,
    progress: Callable[[str], None] | None = None,
) -> RunResult:
    """Run the report described by ``config_path`` (see the module docstring).

    ``as_of`` overrides the config's; ``parameters`` override the runner's own and go to
    every notebook that declares them (a name no notebook declares is a
    :class:`ConfigError`); ``database`` overrides the sources' DuckDB file. Raises
    :class:`ConfigError` for a bad config before anything runs; a failing notebook gives a
    result with ``status == "failed"`` (nothing raised).
    """
    import papermill as pm

    from .. import sources

    say = progress or (lambda _m: None)
    cfg, base, config_text = load_config(config_path)

    def resolve(p: str) -> str:
        return p if os.path.isabs(p) else os.path.normpath(base / p)

    sources_path = resolve(cfg.sources)
    segmentation_path = resolve(cfg.segmentation)
    experiment_paths = [resolve(e) for e in cfg.experiments]
    for path in experiment_paths:
        load_experiment(path)  # a bad experiment config stops the run before anything runs
    # absolute: notebooks run with the run folder as working directory
    if database is not None:
        db = os.path.abspath(database)
    else:
        db = resolve(cfg.database) if cfg.database else None
    declared = {n: set(pm.inspect_notebook(str(notebook_path(n)))) for n in cfg.notebooks}
    unknown = sorted(set(parameters or {}) - set().union(*declared.values()))
    if unknown:
        known = ", ".join(sorted(set().union(*declared.values())))
        raise ConfigError(
            f"parameter {', '.join(unknown)}: no notebook of report '{cfg.name}' takes it "
            f"(they take: {known})"
        )
    report_dir = Path(output_dir) / cfg.name
    report_dir.mkdir(parents=True, exist_ok=True)
    run_id = f"{dt.datetime.now():%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    folder = report_dir / run_id
    folder.mkdir()
    log = _logger(folder / "run.log")
    started = dt.datetime.now().astimezone()
    result = RunResult(cfg.name, run_id, folder, "running", [NotebookRun(n) for n in cfg.notebooks])
    manifest = {
        "report": cfg.name,
        "title": cfg.title,
        "run_id": run_id,
        "package_version": __version__,
        "config": str(Path(config_path)),
        "config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
        "started_at": started.isoformat(timespec="seconds"),
    }

    def write_manifest():
        manifest["status"] = result.status
        manifest["notebooks"] = [vars(n) for n in result.notebooks]
        manifest["ended_at"] = dt.datetime.now().astimezone().isoformat(timespec="seconds")
        if result.error:
            manifest["error"] = result.error
        (folder / "manifest.json").write_text(
            json.dumps(manifest, indent=2, default=str), encoding="utf-8"
        )

    try:
        say("Loading and validating the portfolio")
        log.info("run %s of %s started", run_id, cfg.name)
        t0 = time.perf_counter()
        try:
            portfolio = sources.load(sources_path, database=db)
        except DataValidationError as exc:
            # the console gets the examples; the run folder only the counts
            result.console_detail = str(exc.report)
            raise ConfigError(exc.report.text(examples=False)) from None
        when = as_of_date(portfolio, as_of or cfg.as_of)
        fingerprint = _fingerprint(portfolio, config_text + (db or ""))
        manifest["data_fingerprint"] = fingerprint
        manifest["seconds_validate"] = time.perf_counter() - t0
        dates = snapshot_dates(when)
        say(f"Computing snapshots as of {', '.join(str(d.date()) for d in dates)}")
        t0 = time.perf_counter()
        snapshots = {
            str(d.date()): str(_snapshot_cache(portfolio, fingerprint, d, log)) for d in dates
        }
        manifest["seconds_snapshots"] = time.perf_counter() - t0
        portfolio.connection.disconnect()
        params = {
            "as_of": str(when.date()),
            "sources": sources_path,
            "database": db,
            "segmentation": segmentation_path,
            "experiments": experiment_paths,
            "language": cfg.language,
            "report_title": cfg.title,
            "run_id": run_id,
            "snapshots": snapshots,
            "validated": True,
        }
        params.update(parameters or {})
        manifest["parameters"] = params
        for nb in result.notebooks:
            say(f"Running {nb.name}")
            out = folder / f"{nb.name}.ipynb"
            t0 = time.perf_counter()
            try:
                pm.execute_notebook(
                    str(notebook_path(nb.name)), str(out),
                    parameters={k: v for k, v in params.items() if k in declared[nb.name]},
                    kernel_name=KERNEL,
                    progress_bar=False, cwd=str(folder),
                )  # fmt: skip
            except pm.PapermillExecutionError as exc:
                nb.seconds_execute = time.perf_counter() - t0
                nb.status, nb.failed_cell = "failed", exc.cell_index
                nb.error = f"{exc.ename}: {exc.evalue}"[:500]
                log.error("%s failed in cell %s: %s", nb.name, exc.cell_index, exc.ename)
                result.status = "failed"
                result.error = f"notebook {nb.name} failed in cell {exc.cell_index}"
                break
            nb.seconds_execute = time.perf_counter() - t0
            nb.seconds_cells = _cells_seconds(out)
            say(f"Exporting {nb.name} to HTML and PDF")
            t0 = time.perf_counter()
            header = f"{cfg.title} — {when.date()}"
            document = export.html_document(
                export.notebook_body(out), header, header, cfg.language, cfg.page_size
            )
            export.write_html(document, folder / f"{nb.name}.html")
            export.write_pdf(document, folder / f"{nb.name}.pdf")
            nb.seconds_export = time.perf_counter() - t0
            nb.status = "ok"
            log.info(
                "%s: executed in %.1f s, exported in %.1f s",
                nb.name,
                nb.seconds_execute,
                nb.seconds_export,
            )
        if result.status != "failed":
            result.status = "ok"
            write_manifest()
            _switch_latest(report_dir, run_id)
            log.info("run %s succeeded; latest -> %s", run_id, run_id)
            return result
    except CollectKitError as exc:
        result.status, result.error = "failed", str(exc)
        log.error("run failed: %s", exc.__class__.__name__)
    except Exception as exc:  # a bug: keep the evidence, then let it surface
        result.status, result.error = "failed", f"{exc.__class__.__name__}: {exc}"
        write_manifest()
        log.exception("run crashed")
        raise
    finally:
        for handler in list(log.handlers):
            handler.close()
            log.removeHandler(handler)
    write_manifest()
    return result
