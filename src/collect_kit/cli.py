"""The ``collect-kit`` command: parse arguments, call one library function, print, exit.

Exit status: 0 success, 2 a user error (message, no traceback), 1 a bug (traceback).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table as RichTable

from . import __version__, sources
from .demo import DEFAULT_CUSTOMERS, DEFAULT_SEED, run_demo
from .errors import CollectKitError, DataValidationError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="collect_kit: segmentation, recovery KPIs, risk and strategy tests for collection teams.",
)
out = Console(soft_wrap=True)
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


def main() -> None:  # pragma: no cover - console entry for `python -m collect_kit`
    sys.exit(app())
