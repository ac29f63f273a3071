"""The ``collect-kit`` command: parse arguments, call one library function, print, exit.

Exit status: 0 success, 2 a user error (message, no traceback), 1 a bug (traceback).
Options mean one thing in every command: ``--sources PATH`` is a sources YAML,
``--database PATH`` a DuckDB file overriding the one the sources name, ``--as-of`` a month
end (``YYYY-MM-DD`` or ``YYYY-MM``; an experiment readout takes any date). Without
``--sources`` a command reads the sample built by ``collect-kit demo`` in this folder.
Validation examples (customer ids) are printed only to a terminal, never to a log that
cron or CI keeps (``--quiet`` hides them too).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import typer
import yaml
from rich.console import Console
from rich.table import Table as RichTable

from . import __version__, engine, files, segmentation, sources
from .demo import DEFAULT_CUSTOMERS, DEFAULT_SEED, run_demo, sample_config
from .errors import CollectKitError, ConfigError, DataValidationError
from .segmentation.export import export_assignments
from .synth_parquet import DEFAULT_CHUNK, write_sample

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="collect_kit: segmentation, recovery KPIs, risk and strategy tests for collection teams.",
)
# wide enough for the segment table when the output is a file or a pipe (cron, CI)
out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)


def _user_error(exc: Exception) -> None:
    err.print("error: " + str(exc), markup=False, highlight=False, style="bold red")
    raise typer.Exit(2)


def _interactive(quiet: bool = False) -> bool:
    """Whether example ids may be printed: a person at a terminal, not cron, CI or a log."""
    return not quiet and sys.stdout.isatty() and sys.stderr.isatty()


def _validation_failed(exc: DataValidationError, quiet: bool = False) -> None:
    """Print the validation report (examples only to a terminal) and exit 2."""
    out.print(exc.report.text(examples=_interactive(quiet)), markup=False, highlight=False)
    raise typer.Exit(2)


def user_errors(command: Callable) -> Callable:
    """Run ``command``; the kit's errors exit 2 with their message and no traceback."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except DataValidationError as exc:
            _validation_failed(exc, kwargs.get("quiet", False))
        except CollectKitError as exc:
            _user_error(exc)

    return run


def _version(value: bool) -> None:
    if value:
        out.print(__version__)
        raise typer.Exit(0)


def _removed_data(value: str | None) -> None:
    if value is not None:
        raise typer.BadParameter(
            "--data was removed: give a sources YAML with --sources PATH, or a DuckDB file "
            "with --database PATH"
        )


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", is_eager=True, callback=_version, help="Print the version and exit."
    ),
) -> None:
    """collect_kit: segmentation, recovery KPIs, risk and strategy tests for collection teams."""


SOURCES = typer.Option(
    None, "--sources", help="Sources YAML (default: the sample built by `collect-kit demo`)."
)
DATABASE = typer.Option(None, "--database", help="DuckDB file overriding the sources' database.")
REMOVED_DATA = typer.Option(None, "--data", hidden=True, callback=_removed_data)
QUIET = typer.Option(False, "--quiet", help="No example ids and no progress (for logs).")


@app.command()
@user_errors
def demo(
    customers: int = typer.Option(
        DEFAULT_CUSTOMERS, "--customers", min=10, help="Customers to generate."
    ),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Random seed."),
    data_dir: Path = typer.Option(Path("data"), "--data-dir", help="Folder for sample.duckdb."),
) -> None:
    """Build the sample portfolio database, validate it and summarise the latest month."""
    with out.status("Starting", spinner="dots") as status:
        summary = run_demo(data_dir, customers, seed, progress=lambda m: status.update(m + " ..."))
    cur = summary.currency
    out.print(f"Sample database: {summary.database}")
    out.print("Rows: " + ", ".join(f"{k} {v:,}" for k, v in summary.row_counts.items()))
    out.print(f"Snapshot as of {summary.as_of.date()}: {summary.customers:,} customers, "
              f"{summary.receivables_open:,} open receivables")  # fmt: skip
    out.print(f"Balance: {summary.balance:,.0f} {cur}")
    out.print(f"Overdue balance: {summary.overdue_balance:,.0f} {cur}")
    table = RichTable(title="Days past due (customer level, by maximum DPD)")
    for col in ("DPD bucket", "Customers", f"Balance ({cur})", "Share of balance"):
        table.add_column(col, justify="left" if col == "DPD bucket" else "right")
    for row in summary.buckets.itertuples(index=False):
        table.add_row(
            row.dpd_bucket,
            f"{row.customers:,}",
            f"{row.balance:,.0f}",
            f"{row.share_of_balance:.1%}",
        )
    out.print(table)
    out.print("Timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in summary.timings.items()))


@app.command()
@user_errors
def sample(
    out_dir: Path = typer.Argument(..., help="Folder to write: Parquet files and sources.yaml."),
    customers: int = typer.Option(
        DEFAULT_CUSTOMERS, "--customers", min=10, help="Customers to generate."
    ),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Random seed."),
    chunk_size: int = typer.Option(
        DEFAULT_CHUNK, "--chunk-size", help="Customers per chunk (a multiple of 25,000)."
    ),
    workers: int = typer.Option(2, "--workers", min=0, help="Processes generating chunks."),
    force: bool = typer.Option(False, "--force", help="Replace an existing folder."),
) -> None:
    """Write the synthetic sample as Parquet, in chunks (any size; same rows as `demo`)."""
    with out.status(f"Generating {customers:,} customers", spinner="dots"):
        written = write_sample(out_dir, customers, seed, chunk_size=chunk_size,
                               workers=workers, overwrite=force)  # fmt: skip
    out.print("Rows: " + ", ".join(f"{k} {v:,}" for k, v in written.rows.items()))
    out.print(f"Sources YAML: {written.sources}")


@app.command()
@user_errors
def validate(
    old_config: str | None = typer.Argument(None, hidden=True),
    sources_path: Path | None = SOURCES,
    database: Path | None = DATABASE,
    data: str | None = REMOVED_DATA,
    quiet: bool = QUIET,
) -> None:
    """Validate a portfolio: print every problem; exit 2 when there is any, 0 when clean."""
    if old_config is not None:
        raise ConfigError(
            f"validate takes the sources YAML as --sources {old_config} (the positional form "
            "was replaced so every command names its data the same way)"
        )
    portfolio = _load_portfolio(sources_path, database)
    portfolio.check_contacts()  # with contact_quality: in the sources YAML; cached for runs
    out.print(portfolio.report.text(examples=_interactive(quiet)), markup=False, highlight=False)


def _default_database() -> Path | None:
    """``data/sample.duckdb`` in the working folder (built by `collect-kit demo`), if there."""
    db = Path("data") / "sample.duckdb"
    return db if db.exists() else None


def _load_portfolio(sources_path: Path | None, database: Path | None) -> sources.Portfolio:
    """The portfolio of ``--sources`` (with ``--database`` overriding its database), or the
    sample built by `collect-kit demo` in this folder."""
    if sources_path is not None:
        return sources.load(sources_path, database=database)
    db = database or _default_database()
    if db is None:
        raise ConfigError(
            "no --sources given and no data/sample.duckdb here: give --sources PATH, or run "
            "`collect-kit demo` first"
        )
    return sources.load(sample_config(), database=db)


def _money(x: float) -> str:
    return "" if x != x else f"{x:,.0f}"


@app.command()
@user_errors
def segment(
    config: Path = typer.Argument(..., help="Segmentation YAML (configs/segments/*.yaml)."),
    sources_path: Path | None = SOURCES,
    database: Path | None = DATABASE,
    as_of: str | None = typer.Option(
        None, "--as-of", help="Month end (YYYY-MM-DD or YYYY-MM; default: latest complete)."
    ),
    export: Path | None = typer.Option(
        None, "--export", help="Write customer_id, segment, strategy (.csv or .parquet)."
    ),
    data: str | None = REMOVED_DATA,
    quiet: bool = QUIET,
) -> None:
    """Segment the portfolio: per-segment table, diagnostics, optional export."""
    rules = segmentation.load(config)
    with out.status("Loading and validating the portfolio", spinner="dots") as status:
        portfolio = _load_portfolio(sources_path, database)
        when = portfolio.month_end(as_of, "--as-of")
        status.update(f"Computing the snapshot as of {when.date()}")
        # once, for both uses
        computed = segmentation.portfolio_snapshot(rules, portfolio, when).to_pyarrow()
        status.update("Segmenting")
        with engine.inputs({"snapshot": computed}) as loaded:
            result = segmentation.explain(rules, loaded["snapshot"])
            if export is not None:
                export_assignments(rules, loaded["snapshot"], export)
    cur = portfolio.currency
    table = RichTable(title=f"{rules.name}: segments as of {pd.Timestamp(when).date()}")
    for col in (
        "Segment",
        "Strategy",
        "Customers",
        "Share",
        f"Balance ({cur})",
        f"Overdue ({cur})",
        "Mean DPD",
    ):
        table.add_column(col, justify="left" if col in ("Segment", "Strategy") else "right")
    for r in result.segments.itertuples(index=False):
        dpd = "" if r.mean_days_past_due != r.mean_days_past_due else f"{r.mean_days_past_due:.0f}"
        table.add_row(r.segment, r.strategy or "", f"{r.customers:,}", f"{r.share:.1%}",
                      _money(r.balance), _money(r.overdue_balance), dpd)  # fmt: skip
    out.print(table)
    matrix = result.absorption_matrix()
    taken = int(matrix.to_numpy().sum() - sum(matrix.loc[s, s] for s in matrix.index))
    if taken:
        out.print(
            f"Absorption: {taken:,} customers satisfied a segment but were taken by an earlier one"
        )
        out.print(matrix.to_string(), markup=False, highlight=False)
    if len(result.lint):
        out.print("Diagnostics:")
        for r in result.lint.itertuples(index=False):
            out.print(
                f"  - {r.severity}: {r.segment}: {r.check}: {r.message}",
                markup=False,
                highlight=False,
            )
    if export is not None:
        out.print(f"Exported {result.segments.customers.sum():,} customers to {export}")


@app.command()
@user_errors
def sql(
    config: Path = typer.Argument(..., help="Segmentation YAML."),
    dialect: str = typer.Option(
        "duckdb", "--dialect", help="duckdb, spark, postgres or snowflake."
    ),
    table: str = typer.Option("snapshot", "--table", help="Table with one row per customer."),
) -> None:
    """Print the cascade as SQL for the production system."""
    text = segmentation.to_sql(segmentation.load(config), dialect, table)
    out.print(text, markup=False, highlight=False)


sources_app = typer.Typer(no_args_is_help=True, help="Map your own files onto the kit.")
app.add_typer(sources_app, name="sources")


@sources_app.command("init")
@user_errors
def sources_init(
    data_folder: Path = typer.Argument(
        ..., help="A folder of CSV/Parquet files, or a DuckDB file."
    ),
    output: Path | None = typer.Option(
        None, "--output", help="Where to write the YAML (default: DATA_FOLDER/sources.yaml)."
    ),
) -> None:
    """Propose a sources YAML from your files' headers and a sample of their rows."""
    from . import mapping

    target = output or (
        data_folder / "sources.yaml" if data_folder.is_dir() else data_folder.with_suffix(".yaml")
    )
    if target.exists():
        raise ConfigError(
            f"--output: '{target}' exists; it is never overwritten (choose another path)"
        )
    proposal = mapping.propose(data_folder)
    files.write_atomic(target, mapping.render(proposal), "sources YAML")
    for t in proposal.tables:
        out.print(f"{t.source} -> {t.table}", markup=False, highlight=False)
    for name in proposal.skipped:
        out.print(f"{name}: skipped (no canonical table matched)", markup=False, highlight=False)
    out.print(
        f"Wrote {target}: check every GUESS and TODO, then run", markup=False, highlight=False
    )
    out.print(f"  collect-kit validate --sources {target}", markup=False, highlight=False)


report_app = typer.Typer(no_args_is_help=True, help="Scheduled report runs.")
app.add_typer(report_app, name="report")


def _parse_parameters(items: list[str]) -> dict:
    """``-p key=value`` items as a dict, each value read as YAML (``0.5`` a number, ``es``
    text, ``[a, b]`` a list). Raises ConfigError naming the item: no ``=``, a key given
    twice, a value that is not valid YAML. Types and ranges are checked against the
    notebooks' declarations by :func:`collect_kit.reports.parameters.check_parameters`."""
    params: dict = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"-p '{item}': must be key=value")
        if key in params:
            raise ConfigError(f"-p {key}: given twice, the second time as '{value}'")
        try:
            params[key] = yaml.safe_load(value)
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or exc.__class__.__name__
            raise ConfigError(
                f"-p {key}: '{value}' is not a valid YAML value ({problem}); "
                f"quote it to pass it as text: -p {key}='\"{value}\"'"
            ) from None
    return params


@report_app.command("run")
def report_run(
    config: Path = typer.Argument(..., help="Report config (configs/reports/*.yaml)."),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Month end to report (default: the config's)."
    ),
    parameter: list[str] = typer.Option(
        [], "-p", "--parameter", help="key=value injected into every notebook."
    ),
    output_dir: Path = typer.Option(Path("reports"), "--output-dir", help="Where run folders go."),
    database: Path | None = typer.Option(
        None, "--database", help="DuckDB file overriding the sources'."
    ),
    publish: bool = typer.Option(
        False, "--publish", help="Point latest at this run even with -p or --as-of overrides."
    ),
    notify_command: str | None = typer.Option(
        None,
        "--notify-command",
        help="Shell command run after every run, ok or not: $1 the run folder, $2 the status.",
    ),
    fail_if_stale: bool = typer.Option(
        False,
        "--fail-if-stale",
        help="Exit 2 before running when the data is older than max_data_age_days.",
    ),
    quiet: bool = QUIET,
) -> None:
    """Run a report: notebooks -> HTML and PDF in reports/<report>/<run-id>/.

    Exit 0 when every notebook succeeded, 1 when a notebook failed (its run folder keeps
    the evidence), 2 for a bad config, parameter or data (checked before anything runs),
    128 + the signal's number when stopped by SIGTERM or SIGINT. ``latest`` points to the
    run when it succeeded without overrides (or with ``--publish``).
    """
    import contextlib

    from .reports.notify import run_notify_command
    from .reports.runner import run_report
    from .reports.supervision import RunInterrupted

    def say(stream: Console, text: str) -> None:
        stream.print(text, markup=False, highlight=False)

    def notify(folder: Path | None, status: str, error: str | None = None) -> None:
        if notify_command:
            problem = run_notify_command(notify_command, folder, status, error)
            if problem:
                say(err, f"warning: {problem}")

    spinner = (
        contextlib.nullcontext() if quiet else out.status("Starting the report run", spinner="dots")
    )
    try:
        params = _parse_parameters(parameter)
        with spinner as status:
            result = run_report(
                config,
                as_of,
                params,
                output_dir,
                database or _default_database(),
                progress=None if status is None else (lambda m: status.update(m + " ...")),
                publish=publish,
                fail_if_stale=fail_if_stale,
                warn=lambda m: say(err, f"warning: {m}"),
            )
    except RunInterrupted as exc:
        folder = getattr(exc, "folder", None)
        say(err, f"Report run {exc}: marked failed, its kernels stopped ({folder})")
        notify(folder, "failed", str(exc))
        raise typer.Exit(128 + exc.signum) from None
    except CollectKitError as exc:
        notify(None, "failed", str(exc))
        _user_error(exc)
    if result.ok:
        say(out, f"Report {result.report} run {result.run_id}: ok")
        for path in [*result.files(".html"), *result.files(".pdf")]:
            say(out, f"  {path}")
        changes = ", ".join(f"{k}={v}" for k, v in result.overrides.items())
        if result.published:
            say(out, f"latest -> {result.run_id} ({result.latest})")
        elif result.overrides:
            say(out, f"latest unchanged: ad-hoc run (overrides: {changes}); "
                     "--publish to publish it")  # fmt: skip
        else:
            say(out, "latest unchanged: see the warning above")
        if result.pruned:
            say(out, f"Pruned {len(result.pruned)} old run(s): {', '.join(result.pruned)}")
        notify(result.folder, "ok")
        return
    say(err, f"Report {result.report} run {result.run_id} FAILED: {result.error}")
    if result.console_detail and _interactive(quiet):
        say(err, result.console_detail)
    say(err, f"Evidence kept in {result.folder}")
    notify(result.folder, "failed", result.error)
    raise typer.Exit(1 if any(n.status == "failed" for n in result.notebooks) else 2)


experiment_app = typer.Typer(
    no_args_is_help=True, help="Strategy experiments: design, assign, readout."
)
app.add_typer(experiment_app, name="experiment")


def _print_frame(frame: pd.DataFrame, title: str) -> None:
    out.print(title)
    out.print(frame.to_string(index=False), markup=False, highlight=False)


def _experiment_data(sources_path: Path | None, database: Path | None) -> dict:
    """The data options of an experiment command: the config's sources unless
    ``--sources``; the database of ``--database``, else the demo sample here if any."""
    return {"sources": sources_path, "database": database or _default_database()}


EXPERIMENT_AS_OF = typer.Option(
    None, "--as-of", help="Month end of the population (YYYY-MM-DD or YYYY-MM; default: latest)."
)


@experiment_app.command("design")
@user_errors
def experiment_design(
    config: Path = typer.Argument(..., help="Experiment config (configs/experiments/*.yaml)."),
    sources_path: Path | None = SOURCES,
    database: Path | None = DATABASE,
    as_of: str | None = EXPERIMENT_AS_OF,
) -> None:
    """Sample size and detectable effect per segment."""
    from .experiments.run import design_experiment
    from .reports.format import Formatter
    from .reports.text import design_sentence, duration_sentence

    table = design_experiment(config, as_of=as_of, **_experiment_data(sources_path, database))
    fmt = Formatter("en")
    for row in table.itertuples():
        words = f"{design_sentence(row, fmt)} {duration_sentence(row, fmt)}"
        out.print(words, markup=False, highlight=False)


@experiment_app.command("assign")
@user_errors
def experiment_assign(
    config: Path = typer.Argument(..., help="Experiment config."),
    export: Path = typer.Option(
        ..., "--export", help="Output file (.csv or .parquet) for the dialer."
    ),
    sources_path: Path | None = SOURCES,
    database: Path | None = DATABASE,
    as_of: str | None = EXPERIMENT_AS_OF,
) -> None:
    """Assign customers owing money to arms (salted hash) and export the assignment."""
    from .experiments.run import assign_experiment

    counts = assign_experiment(
        config, export, as_of=as_of, **_experiment_data(sources_path, database)
    )
    _print_frame(counts, f"Assigned {int(counts.customers.sum()):,} customers -> {export}")
    if counts.attrs.get("already_assigned"):
        out.print(f"{counts.attrs['already_assigned']:,} customers already in the experiment keep "
                  "their arm and are not exported again.", markup=False, highlight=False)  # fmt: skip


@experiment_app.command("readout")
@user_errors
def experiment_readout(
    config: Path = typer.Argument(..., help="Experiment config."),
    sources_path: Path | None = SOURCES,
    database: Path | None = DATABASE,
    as_of: str | None = typer.Option(
        None,
        "--as-of",
        help="Read the outcome windows closed by this date (YYYY-MM-DD, any day; default: "
        "the extraction date).",
    ),
) -> None:
    """Per-segment effects with intervals, SRM, multiplicity, survival and recommendations."""
    from .experiments import run as ex

    r = ex.readout_experiment(config, as_of=as_of, **_experiment_data(sources_path, database))
    for line in ex.readout_lines(r):
        out.print(line, markup=False, highlight=False)
    _print_frame(ex.readout_table(r), f"Readout of {r.config.experiment_id} as of {r.as_of.date()}")
    _print_frame(ex.readout_table(r, overall=True), "All segments (post-stratified)")
    out.print(ex.LEGEND, markup=False, highlight=False)
    if len(r.looks):
        _print_frame(
            ex.looks_table(r), "Weekly looks (primary metric; always-valid interval and p)"
        )
        for line in ex.looks_lines(r):
            out.print(line, markup=False, highlight=False)
    _print_frame(r.logrank.round(4), "Time to first payment (log-rank)")
    _print_frame(r.heterogeneity.round(4), "Heterogeneity across segments (Cochran's Q)")
    _print_frame(ex.decision_table(r), "Decisions")
    out.print(ex.DECISION_LEGEND, markup=False, highlight=False)


@app.command("plan")
@user_errors
def plan(
    config: Path = typer.Argument(..., help="Plan config (configs/plans/*.yaml)."),
    sources_path: Path | None = SOURCES,
    database: Path | None = DATABASE,
    as_of: str | None = EXPERIMENT_AS_OF,
    export: Path | None = typer.Option(
        None, "--export", help="Folder for the customer lists, one CSV per treatment."
    ),
    draws: int | None = typer.Option(
        None, "--draws", min=0, help="Robustness draws (default: the config's; 0: none)."
    ),
    language: str = typer.Option("en", "--language", help="Words of the sentences: en, es, pt."),
) -> None:
    """Which segment gets which treatment next month, under the month's capacities."""
    from .planning.run import make_plan
    from .reports import plan as pages
    from .reports.format import Formatter

    fmt = Formatter(language)  # refuses an unknown language before any work
    result = make_plan(config, as_of=as_of, export=export, draws=draws,
                       **_experiment_data(sources_path, database))  # fmt: skip
    fmt = pages.formatter(result, Formatter(language, result.currency))
    say = lambda line: out.print(line, markup=False, highlight=False)  # noqa: E731
    say(pages.headline(result, fmt))
    for line in pages.decision_sentences(result, fmt):
        say("- " + line)
    a = result.chosen.allocation
    cols = [
        "segment",
        "treatment",
        "customers",
        "cost",
        "money",
        "money_low",
        "money_high",
        "discount_granted",
    ]
    _print_frame(a.loc[a.customers > 0, cols].round(0),
                 f"Plan for the customers owing at {result.as_of.date()} ({result.currency} a month)")  # fmt: skip
    _print_frame(result.chosen.limits[["name", "unit", "limit", "used", "shadow_price"]].round(2),
                 "Capacities (shadow price: currency per unit)")  # fmt: skip
    for line in pages.shadow_sentences(result, fmt) + pages.robustness_sentences(result, fmt):
        say(line)
    if result.exported is not None:
        _print_frame(result.exported, f"Customer lists written to {export}")


@app.command("discover")
@user_errors
def discover(
    config: Path = typer.Argument(..., help="Discovery config (configs/discovery/*.yaml)."),
    out_path: Path = typer.Option(..., "--out", help="Where to write the proposed cascade (YAML)."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out if it exists."),
    sources_path: Path | None = SOURCES,
    database: Path | None = DATABASE,
) -> None:
    """Learn segments from the data: a cascade to edit, with out-of-time evidence."""
    from .discovery.run import discover as learn

    if out_path.exists() and not force:
        raise ConfigError(
            f"--out: '{out_path}' exists (an edited proposal?); choose another name or add --force"
        )
    if not out_path.parent.is_dir():
        raise ConfigError(f"--out: folder '{out_path.parent}' does not exist")
    found = learn(config, **_experiment_data(sources_path, database))
    files.write_atomic(out_path, found.text, "--out")
    say = lambda line: out.print(line, markup=False, highlight=False)  # noqa: E731
    say(f"Proposed {len(found.rules.segments)} segments -> {out_path} (learned at "
        f"{found.train_as_of.date()} on {found.sampled} customers; thresholds rounding moved "
        f"{found.proposal.moved:.2%})")  # fmt: skip
    if found.uplift is not None:
        held = found.uplift.held_out[["n_champion", "n_challenger", "uplift", "ci_low", "ci_high",
                                      "predicted"]].round(4)  # fmt: skip
        _print_frame(held.reset_index(), "Uplift per segment, measured on the held-out half")
        say(f"Qini coefficient on the held-out half: {found.uplift.qini_coefficient:+.4f}")
        return
    for name, ev in found.evidence.items():
        seg = ev["segments"][["customers_later", "rate_train", "rate_later", "share_train",
                              "share_later"]].round(3)  # fmt: skip
        _print_frame(seg.reset_index(), f"{name}: out of time at {found.evaluate_as_of.date()}")
        say(f"{name}: payer-rate spread {ev['spread']:.1%}, Gini {ev['gini']:.3f}, "
            f"PSI {ev['psi']:.3f} ({ev['reading']})")  # fmt: skip
    _print_frame(found.migration.reset_index(), "Customers: current segments (rows) -> proposed")


def main() -> None:  # pragma: no cover - console entry for `python -m collect_kit`
    sys.exit(app())
