"""The ``collect-kit`` command: parse arguments, call one library function, print, exit.

Exit status: 0 success, 2 a user error (message, no traceback), 1 a bug (traceback).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import typer
import yaml
from rich.console import Console
from rich.table import Table as RichTable

from . import __version__, segmentation, sources
from .demo import DEFAULT_CUSTOMERS, DEFAULT_SEED, run_demo, sample_config
from .engine import as_table, release
from .errors import CollectKitError, ConfigError, DataValidationError
from .periods import latest_month_end
from .segmentation.export import export_assignments
from .snapshot import snapshot

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


@app.callback()
def _main(
    version: bool = typer.Option(False, "--version", help="Print the version and exit."),
) -> None:
    if version:
        out.print(__version__)
        raise typer.Exit(0)


@app.command()
def demo(
    customers: int = typer.Option(
        DEFAULT_CUSTOMERS, "--customers", min=10, help="Customers to generate."
    ),
    seed: int = typer.Option(DEFAULT_SEED, "--seed", help="Random seed."),
    data_dir: Path = typer.Option(Path("data"), "--data-dir", help="Folder for sample.duckdb."),
) -> None:
    """Build the sample portfolio database, validate it and summarise the latest month."""
    try:
        with out.status("Starting", spinner="dots") as status:
            summary = run_demo(
                data_dir, customers, seed, progress=lambda m: status.update(m + " ...")
            )
    except CollectKitError as exc:
        _user_error(exc)
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
def validate(
    config: Path = typer.Argument(..., help="Sources YAML (configs/sources/*.yaml)."),
    data: Path | None = typer.Option(
        None, "--data", help="DuckDB file overriding the YAML's database."
    ),
) -> None:
    """Validate a portfolio: print every problem; exit 2 when there is any, 0 when clean."""
    try:
        portfolio = sources.load(config, database=data)
    except DataValidationError as exc:
        out.print(str(exc.report), markup=False, highlight=False)
        raise typer.Exit(2) from None
    except CollectKitError as exc:
        _user_error(exc)
    out.print(str(portfolio.report), markup=False, highlight=False)


def _default_database() -> Path | None:
    """``data/sample.duckdb`` in the working folder (built by `collect-kit demo`), if there."""
    db = Path("data") / "sample.duckdb"
    return db if db.exists() else None


def _load_portfolio(data: Path | None) -> sources.Portfolio:
    """The portfolio of a sources YAML, or the sample built by `collect-kit demo` here."""
    if data is not None:
        return sources.load(data)
    db = _default_database()
    if db is None:
        raise ConfigError(
            "no --data given and no data/sample.duckdb here: run `collect-kit demo` first"
        )
    return sources.load(sample_config(), database=db)


def _money(x: float) -> str:
    return "" if x != x else f"{x:,.0f}"


@app.command()
def segment(
    config: Path = typer.Argument(..., help="Segmentation YAML (configs/segments/*.yaml)."),
    data: Path | None = typer.Option(
        None, "--data", help="Sources YAML (default: the demo sample)."
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Snapshot date (default: latest month end)."
    ),
    export: Path | None = typer.Option(
        None, "--export", help="Write customer_id, segment, strategy (.csv or .parquet)."
    ),
) -> None:
    """Segment the portfolio: per-segment table, diagnostics, optional export."""
    try:
        rules = segmentation.load(config)
        with out.status("Loading and validating the portfolio", spinner="dots") as status:
            portfolio = _load_portfolio(data)
            when = latest_month_end(portfolio.extraction_date) if as_of is None else as_of
            status.update(f"Computing the snapshot as of {when}")
            snap = as_table(snapshot(portfolio.tables, when).to_pyarrow())
            status.update("Segmenting")
            try:
                result = segmentation.explain(rules, snap)
                if export is not None:
                    export_assignments(rules, snap, export)
            finally:
                release([snap])
    except DataValidationError as exc:
        out.print(str(exc.report), markup=False, highlight=False)
        raise typer.Exit(2) from None
    except CollectKitError as exc:
        _user_error(exc)
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
def sql(
    config: Path = typer.Argument(..., help="Segmentation YAML."),
    dialect: str = typer.Option(
        "duckdb", "--dialect", help="duckdb, spark, postgres or snowflake."
    ),
    table: str = typer.Option("snapshot", "--table", help="Table with one row per customer."),
) -> None:
    """Print the cascade as SQL for the production system."""
    try:
        text = segmentation.to_sql(segmentation.load(config), dialect, table)
    except CollectKitError as exc:
        _user_error(exc)
    out.print(text, markup=False, highlight=False)


report_app = typer.Typer(no_args_is_help=True, help="Scheduled report runs.")
app.add_typer(report_app, name="report")


def _parse_parameters(items: list[str]) -> dict:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"-p '{item}': expected key=value")
        params[key.strip()] = yaml.safe_load(value)
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
) -> None:
    """Run a report: notebooks -> HTML and PDF in reports/<report>/<run-id>/.

    Exit 0 when every notebook succeeded (``latest`` then points to this run), 1 when a
    notebook failed (its run folder keeps the evidence), 2 for a bad config or data.
    """
    from .reports.runner import run_report

    try:
        params = _parse_parameters(parameter)
        database = database or _default_database()
        with out.status("Starting the report run", spinner="dots") as status:
            result = run_report(
                config,
                as_of,
                params,
                output_dir,
                database,
                progress=lambda m: status.update(m + " ..."),
            )
    except CollectKitError as exc:
        _user_error(exc)
    if result.ok:
        out.print(f"Report {result.report} run {result.run_id}: ok")
        for path in [*result.files(".html"), *result.files(".pdf")]:
            out.print(f"  {path}")
        out.print(f"Latest: {result.folder.parent / 'latest'}")
        return
    err.print(
        f"Report {result.report} run {result.run_id} FAILED: {result.error}",
        markup=False,
        highlight=False,
    )
    if result.console_detail:
        err.print(result.console_detail, markup=False, highlight=False)
    err.print(f"Evidence kept in {result.folder}", markup=False, highlight=False)
    raise typer.Exit(1 if any(n.status == "failed" for n in result.notebooks) else 2)


experiment_app = typer.Typer(
    no_args_is_help=True, help="Strategy experiments: design, assign, readout."
)
app.add_typer(experiment_app, name="experiment")


def _print_frame(frame: pd.DataFrame, title: str) -> None:
    out.print(title)
    out.print(frame.to_string(index=False), markup=False, highlight=False)


@experiment_app.command("design")
def experiment_design(
    config: Path = typer.Argument(..., help="Experiment config (configs/experiments/*.yaml)."),
    database: Path | None = typer.Option(
        None, "--database", help="DuckDB file overriding the sources'."
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Month end of the population (default: latest)."
    ),
) -> None:
    """Sample size and detectable effect per segment."""
    from .experiments.run import design_experiment

    try:
        table = design_experiment(config, database or _default_database(), as_of)
    except CollectKitError as exc:
        _user_error(exc)
    for sentence in table.sentence:
        out.print(sentence, markup=False, highlight=False)


@experiment_app.command("assign")
def experiment_assign(
    config: Path = typer.Argument(..., help="Experiment config."),
    export: Path = typer.Option(
        ..., "--export", help="Output file (.csv or .parquet) for the dialer."
    ),
    database: Path | None = typer.Option(
        None, "--database", help="DuckDB file overriding the sources'."
    ),
    as_of: str | None = typer.Option(
        None, "--as-of", help="Month end of the population (default: latest)."
    ),
) -> None:
    """Assign customers owing money to arms (salted hash) and export the assignment."""
    from .experiments.run import assign_experiment

    try:
        counts = assign_experiment(config, export, database or _default_database(), as_of)
    except CollectKitError as exc:
        _user_error(exc)
    _print_frame(counts, f"Assigned {int(counts.customers.sum()):,} customers -> {export}")


@experiment_app.command("readout")
def experiment_readout(
    config: Path = typer.Argument(..., help="Experiment config."),
    database: Path | None = typer.Option(
        None, "--database", help="DuckDB file overriding the sources'."
    ),
) -> None:
    """Per-segment effects with intervals, SRM, multiplicity, survival and recommendations."""
    from .experiments.run import readout_experiment

    try:
        r = readout_experiment(config, database or _default_database())
    except CollectKitError as exc:
        _user_error(exc)
    cols = [
        "segment",
        "metric",
        "n_champion",
        "n_challenger",
        "estimate",
        "ci_low",
        "ci_high",
        "p_value",
        "p_holm",
        "p_bh",
        "srm",
    ]
    _print_frame(r.results[cols].round(4), f"Readout of {r.config.experiment_id}")
    _print_frame(r.logrank.round(4), "Time to first payment (log-rank)")
    _print_frame(r.heterogeneity.round(4), "Heterogeneity across segments (Cochran's Q)")
    _print_frame(r.recommendations.round(0), "Recommendations")
    if r.results.srm.any():
        out.print(
            "WARNING: sample-ratio mismatch in "
            + ", ".join(sorted(r.results[r.results.srm].segment.unique()))
        )


def main() -> None:  # pragma: no cover - console entry for `python -m collect_kit`
    sys.exit(app())
