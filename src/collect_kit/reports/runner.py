"""Run a report: pre-flight, snapshots once, notebooks with papermill, HTML and PDF, ``latest``.

:func:`run_report` is the whole run, in order:

1. stale runs left in the output folder are marked failed (:func:`.runs.recover_stale_runs`),
   then pre-flight (:mod:`.preflight`): the report config, the ``-p`` values, the
   segmentation and experiment configs, ``as_of`` against the data, the data's age, and
   that the output folder and the snapshot cache can be written; a problem raises before
   a run folder exists;
2. the run folder ``<output>/<report>/<run-id>/`` appears with its manifest already in it
   (``status: running``, :mod:`.runs`); while the run goes, the manifest beats and names
   the run's kernels, and a signal, an exception or interpreter exit stops them and marks
   the run ``failed`` (:mod:`.supervision`);
3. the data's validation verdict, then each snapshot the notebooks read, computed once
   (:mod:`.cache`);
4. each notebook executed and exported to HTML and PDF (:mod:`.execute`), every file
   written whole or not at all; a notebook's export runs while the next one executes,
   and its kernel starts with its imports while the one before executes (:mod:`.kernels`);
5. ``latest`` switched to the run only when every notebook succeeded and the run had no
   overrides (a ``-p``, or an ``as_of`` other than the config's), unless ``publish``; then
   the report's old runs are pruned (``keep_runs``, ``keep_failed_days``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import secrets
import shutil
import signal
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from .. import __version__, catalogue, files
from ..engine import SparkConfig
from ..errors import CollectKitError, ConfigError
from . import runs
from .cache import cache_dir, cached_snapshots, readouts_dir, stored_readouts
from .execute import cells_seconds, execute_notebook, export_notebook
from .format import Formatter
from .kernels import KernelStarter
from .preflight import (
    Plan,
    StaleDataError,
    as_of_dates,
    check_report_columns,
    data_age_warning,
    preflight,
    today,
)
from .processes import runner_identity
from .runs import NotebookRun, RunResult
from .supervision import RunInterrupted, RunState, supervised
from .text import document_title

#: the Jupyter kernel the notebooks run in
KERNEL = "python3"


def notebook_path(name: str) -> Path:
    """The packaged notebook ``notebooks/<name>.ipynb``."""
    return Path(str(resources.files("collect_kit") / "notebooks" / f"{name}.ipynb"))


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
    for message in runs.recover_stale_runs(output_dir):
        tell(message)
    plan = preflight(config_path, parameters, database, notebook_path)
    files.check_writable_folder(output_dir, "output folder")
    files.check_writable_folder(cache_dir(), "snapshot cache (COLLECT_KIT_CACHE)")
    say("Loading and validating the portfolio")
    t0 = time.perf_counter()
    portfolio = sources.load(
        plan.sources, database=plan.database, validate=False, engine_name=plan.engine,
        spark=SparkConfig(**plan.spark) if plan.spark else None,
    )  # fmt: skip
    try:
        when, scheduled = as_of_dates(portfolio, as_of, plan)
        check_report_columns(plan.cfg, portfolio.fields, plan.config_path)
        run_day = today()
        stale = data_age_warning(plan.cfg, portfolio.extraction_date, run_day)
        if stale and fail_if_stale:
            raise StaleDataError(f"{stale} (--fail-if-stale)")
    except BaseException:
        portfolio.close()
        raise
    if stale:
        tell(stale)
    overrides = dict(plan.overrides)
    if when != scheduled:
        overrides["as_of"] = str(when.date())
    context = _RunContext(plan, portfolio, when, overrides, publish, notes, run_day, output_dir)
    return _run(context, say, tell, t0)


@dataclass
class _RunContext:
    """What pre-flight established for a run."""

    plan: Plan
    portfolio: object
    when: pd.Timestamp
    overrides: dict[str, object]
    publish: bool
    warnings: list[str]
    run_day: pd.Timestamp
    output_dir: Path


def _first_manifest(ctx: _RunContext, run_id: str, started: str) -> dict:
    """The manifest as the run starts (``status: running``, ``started`` its time stamp)."""
    plan, extraction = ctx.plan, pd.Timestamp(ctx.portfolio.extraction_date).normalize()
    return {
        "report": plan.cfg.name,
        "title": plan.title,
        "run_id": run_id,
        "status": "running",
        "package_version": __version__,
        "config": runs.display_path(plan.config_path, plan.base),
        "config_sha256": hashlib.sha256(plan.config_text.encode()).hexdigest(),
        "started_at": started,
        "heartbeat_at": started,
        "kernel_pids": [],
        "runner": runner_identity(),
        "as_of": str(ctx.when.date()),
        "overrides": ctx.overrides,
        "published": False,
        "extraction_date": str(extraction.date()),
        "data_age_days": int((ctx.run_day - extraction).days),
        "warnings": ctx.warnings,
    }


def _readout_paths(plan: Plan) -> list[str]:
    """The experiment configs the run's notebooks read out: the report's experiments
    (portfolio report, readout) and those measuring the plan's effects (strategy plan)."""
    from ..planning.config import load_plan

    notebooks = set(plan.cfg.notebooks)
    paths = list(plan.experiments) if notebooks & {"portfolio_report", "experiment_readout"} else []
    if plan.plan and "strategy_plan" in notebooks:
        cfg, base = load_plan(plan.plan)
        paths += [
            e if os.path.isabs(e) else os.path.normpath(base / e)
            for e in (t.measured.experiment for t in cfg.treatments.values() if t.measured)
        ]
    return paths


def _notebook_parameters(
    ctx: _RunContext, run_id: str, snapshots: dict[str, str], readouts: dict[str, str]
) -> dict:
    """Every parameter the runner injects (notebooks receive those they declare)."""
    plan = ctx.plan
    params = {
        "as_of": str(ctx.when.date()),
        "sources": plan.sources,
        "database": plan.database,
        "engine": plan.engine,
        "spark": plan.spark,
        "segmentation": plan.segmentation,
        "experiments": plan.experiments,
        "plan": plan.plan,
        "discovery": plan.discovery,
        "breakdowns": plan.cfg.breakdowns,
        "risk_target": plan.cfg.risk_target,
        "risk_features": plan.cfg.risk_features,
        "risk_penalty": plan.cfg.risk_penalty,
        "targets": plan.cfg.targets,
        "language": plan.language,
        "report_title": plan.title,
        "run_id": run_id,
        "snapshots": snapshots,
        "stored_readouts": readouts,
        "validated": True,
    }
    params.update(plan.extra)
    return params


def _shown_parameters(plan: Plan, params: dict) -> dict:
    """The parameters as the manifest stores them: paths relative, snapshots by file name
    (in the snapshot cache, ``COLLECT_KIT_CACHE``)."""
    hidden = ("snapshots", "stored_readouts")
    shown = {k: runs.manifest_value(v, plan.base) for k, v in params.items() if k not in hidden}
    shown["snapshots"] = {d: Path(p).name for d, p in params["snapshots"].items()}
    shown["stored_readouts"] = len(params["stored_readouts"])
    return shown


def _run(ctx: _RunContext, say, tell, t0: float) -> RunResult:
    """The run proper: its folder, snapshots, notebooks, exports, ``latest``, pruning."""
    cfg = ctx.plan.cfg
    report_dir = ctx.output_dir / cfg.name
    run_id = f"{dt.datetime.now():%Y%m%dT%H%M%S}-{secrets.token_hex(3)}"
    started = runs.timestamp()
    manifest = _first_manifest(ctx, run_id, started)
    try:
        folder = runs.new_run_folder(report_dir, manifest)
    except BaseException:
        ctx.portfolio.close()
        raise
    result = RunResult(
        cfg.name, run_id, folder, "running", [NotebookRun(n) for n in cfg.notebooks],
        overrides=ctx.overrides, warnings=ctx.warnings,
    )  # fmt: skip
    # absolute: papermill runs each notebook with the run folder as working directory
    state = RunState(folder.absolute() / "manifest.json", manifest, result)
    state.interrupt_queries = ctx.portfolio.interrupt
    log = state.log = _logger(folder.absolute() / "run.log")
    try:
        with supervised(state):  # handlers stay until the final manifest is written
            try:
                try:
                    _run_body(ctx, state, result, report_dir, say, tell, t0)
                except BaseException as exc:
                    # a signal that arrives in a query may come back as the engine's own
                    # error (DuckDB: "Query interrupted"): the run was interrupted all the same
                    if state.signalled is None or isinstance(exc, RunInterrupted):
                        raise
                    raise RunInterrupted(state.signalled) from exc
            except RunInterrupted as exc:
                name = signal.Signals(exc.signum).name
                log.error("run %s interrupted by %s", run_id, name)
                state.close("failed", f"interrupted by {name}")
                exc.folder = folder
                raise
            except CollectKitError as exc:
                log.error("run failed: %s: %s", exc.__class__.__name__, runs.one_line(exc))
                state.close("failed", str(exc))
            except BaseException as exc:  # a bug: keep the evidence, then let it surface
                log.exception("run crashed")
                state.close("failed", f"{exc.__class__.__name__}: {runs.one_line(exc)}")
                raise
    finally:
        with contextlib.suppress(Exception):
            ctx.portfolio.close()
        shutil.rmtree(readouts_dir(run_id), ignore_errors=True)
        for handler in list(log.handlers):
            handler.close()
            log.removeHandler(handler)
    return result


def _run_body(ctx: _RunContext, state: RunState, result: RunResult, report_dir: Path,
              say, tell, t0: float) -> None:  # fmt: skip
    """Validation verdict, snapshots, notebooks and exports; closes the run's state."""
    from ..snapshot import fingerprint

    plan, cfg, manifest, log = ctx.plan, ctx.plan.cfg, state.manifest, state.log
    log.info("run %s of %s started (as of %s)", result.run_id, cfg.name, ctx.when.date())
    untranslated = catalogue.missing(plan.language)
    if untranslated:
        log.warning("catalogue '%s' lacks %d key(s), shown in English: %s", plan.language,
                    len(untranslated), ", ".join(untranslated))  # fmt: skip
    for message in ctx.warnings:
        log.warning(message)
    portfolio = ctx.portfolio
    if not portfolio.report.ok:
        # the console gets the examples; the run folder only the counts
        result.console_detail = str(portfolio.report)
        raise ConfigError(portfolio.report.text(examples=False))
    from .. import segmentation

    rules = segmentation.load(plan.segmentation)
    # the cache key covers what the snapshot holds: data, fields, buckets, the rules' model
    checked = portfolio.contact_flags() is not None  # phones checked by `validate`
    key = fingerprint(
        portfolio.tables, portfolio.fields,
        [portfolio.dpd_buckets, rules.risk_model, f"contacts checked: {checked}"],
        digests=portfolio.digests,  # summed with the validation's checks
    )  # fmt: skip
    state.set(data_fingerprint=key, seconds_validate=time.perf_counter() - t0)
    # the first notebook's kernel starts (with its imports) while the snapshots compute
    with KernelStarter(KERNEL, state.kernel_started) as kernels:
        first = kernels.start(result.folder.absolute(), notebook_path(result.notebooks[0].name))
        params = _snapshots_and_readouts(ctx, state, result, portfolio, key, rules, say)
        executed = _run_notebooks(ctx, state, result, params, say, kernels, first)
    if not executed:
        state.close("failed")
        return
    result.published = not ctx.overrides or ctx.publish
    state.set(published=result.published)
    state.close("ok")
    if result.published:
        try:
            runs.switch_latest(report_dir, result.run_id)
        except CollectKitError as exc:  # the run is whole; say that latest did not move
            result.published = manifest["published"] = False
            tell(f"latest not switched to this run: {exc}")
            runs.write_manifest(state.path, manifest)
    if result.published:
        log.info("run %s succeeded; latest -> %s", result.run_id, result.run_id)
    else:
        log.info("run %s succeeded; latest unchanged", result.run_id)
    keep = {result.run_id} | ({runs.latest_target(report_dir)} - {None})
    result.pruned = runs.prune_runs(report_dir, cfg.keep_runs, cfg.keep_failed_days, keep)
    if result.pruned:
        log.info("pruned %s", ", ".join(result.pruned))


def _snapshots_and_readouts(ctx: _RunContext, state: RunState, result: RunResult, portfolio,
                            key: str, rules, say) -> dict:  # fmt: skip
    """The run's snapshots (cached) and experiment readouts; the notebooks' parameters."""
    from .context import snapshot_dates

    log = state.log
    dates = snapshot_dates(ctx.when)
    say(f"Computing snapshots as of {', '.join(str(d.date()) for d in dates)}")
    t0 = time.perf_counter()
    paths = cached_snapshots(portfolio, key, dates, log, rules)
    snapshots = {str(d.date()): str(path) for d, path in paths.items()}
    state.set(seconds_snapshots=time.perf_counter() - t0)
    state.raise_if_signalled()
    paths = _readout_paths(ctx.plan)
    if paths:
        say("Reading out the experiments")
        t0 = time.perf_counter()
        readouts = stored_readouts(
            portfolio, ctx.when, paths, result.run_id, log, state.raise_if_signalled
        )
        state.set(seconds_readouts=time.perf_counter() - t0)
        state.raise_if_signalled()
    else:
        readouts = {}
    portfolio.close()
    params = _notebook_parameters(ctx, result.run_id, snapshots, readouts)
    state.set(parameters=_shown_parameters(ctx.plan, params))
    state.save()
    return params


def _run_notebooks(ctx: _RunContext, state: RunState, result: RunResult, params: dict,
                   say, kernels: KernelStarter, ahead: Future) -> bool:  # fmt: skip
    """Execute the notebooks in order, each one's export (HTML, PDF, spreadsheets) running
    while the next executes: the export is the runner's own work, the execution a
    kernel's. The next notebook's kernel starts, with its imports, while one executes
    (``kernels``; ``ahead``: the first notebook's start). False (and the result's error
    set) when one failed; exports already started finish first."""
    folder = result.folder.absolute()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export") as exporter:
        exporting: tuple[NotebookRun, Future] | None = None
        for i, nb in enumerate(result.notebooks):
            state.raise_if_signalled()
            km = kernels.take(ahead)
            later = result.notebooks[i + 1 :]
            ahead = kernels.start(folder, notebook_path(later[0].name)) if later else None
            try:
                executed = _execute(nb, ctx, state, result, params, say, km)
            finally:
                kernels.stop(km)
            state.raise_if_signalled()
            if exporting is not None:
                _exported(*exporting, state)
                exporting = None
            if not executed:
                return False
            say(f"Exporting {nb.name} to HTML, PDF and spreadsheets")
            nb.status = "exporting"
            state.save()
            exporting = (nb, exporter.submit(_export, nb, ctx, result.folder.absolute()))
        if exporting is not None:
            _exported(*exporting, state)
    return True


def _execute(nb: NotebookRun, ctx: _RunContext, state: RunState, result: RunResult,
             params: dict, say, km=None) -> bool:  # fmt: skip
    """Execute one notebook (``km``: its kernel, started ahead; None: papermill starts
    one); False (and the result's error set) when it failed."""
    log, folder = state.log, result.folder.absolute()
    say(f"Running {nb.name}")
    nb.status = "running"
    state.save()
    out = folder / f"{nb.name}.ipynb"
    title = document_title(ctx.plan.title, nb.name, ctx.plan.language)
    wanted = {k: v for k, v in params.items() if k in ctx.plan.declared[nb.name]}
    if "report_title" in wanted and "report_title" not in ctx.plan.extra:  # -p wins
        wanted["report_title"] = title
    t0 = time.perf_counter()
    failure = execute_notebook(
        notebook_path(nb.name), out, wanted, folder, KERNEL, state.kernel_started, km
    )
    nb.seconds_execute = time.perf_counter() - t0
    if failure is not None:
        nb.status, nb.failed_cell, nb.error = "failed", failure.cell, failure.message[:500]
        where = f"cell {failure.cell}" if failure.cell is not None else "an unknown cell"
        if failure.exec_count is not None:
            where += f" (In [{failure.exec_count}])"
        result.error = f"notebook {nb.name} failed in {where}: {failure.message}"[:700]
        log.error("%s", result.error)
        return False
    nb.seconds_cells = cells_seconds(out)
    return True


def _export(nb: NotebookRun, ctx: _RunContext, folder: Path) -> tuple[list[str], float]:
    """Export one executed notebook (in the exporting thread): its table files and the
    seconds it took."""
    t0 = time.perf_counter()
    title = document_title(ctx.plan.title, nb.name, ctx.plan.language)
    header = f"{title} — {Formatter(ctx.plan.language).date(ctx.when)}"
    tables = export_notebook(
        folder / f"{nb.name}.ipynb", folder, nb.name, header, ctx.plan.language,
        ctx.plan.cfg.page_size,
    )  # fmt: skip
    return tables, time.perf_counter() - t0


def _exported(nb: NotebookRun, exporting: Future, state: RunState) -> None:
    """Wait for one notebook's export; its error, if any, is raised here (the notebook
    stays ``exporting``: the run's error says what stopped it)."""
    nb.tables, nb.seconds_export = exporting.result()
    nb.status = "ok"
    state.log.info("%s: executed in %.1f s, exported in %.1f s", nb.name, nb.seconds_execute,
                   nb.seconds_export)  # fmt: skip
    state.save()


def _logger(path: Path) -> logging.Logger:
    log = logging.getLogger(f"collect_kit.run.{path.parent.name}")
    log.setLevel(logging.INFO)
    log.propagate = False
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    return log
