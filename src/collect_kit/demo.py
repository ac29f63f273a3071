"""The demo: build the sample database, validate it, snapshot the latest month, summarise.

Everything the ``collect-kit demo`` command does is :func:`run_demo`, callable from a
notebook too.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import pandas as pd

from . import engine, sources, synth
from .periods import latest_month_end
from .snapshot import DEFAULT_DPD, DpdBuckets

DEFAULT_CUSTOMERS = 20_000
DEFAULT_SEED = 7


def sample_config() -> Path:
    """Path of the packaged sources YAML of the sample portfolio."""
    return Path(str(resources.files("collect_kit") / "configs" / "sources" / "sample.yaml"))


@dataclass
class DemoSummary:
    """What the demo built and found. Money in the portfolio currency."""

    database: Path
    currency: str
    as_of: pd.Timestamp
    row_counts: dict[str, int]
    customers: int
    receivables_open: int
    balance: float
    overdue_balance: float
    buckets: pd.DataFrame  # dpd_bucket, customers, balance, share_of_balance
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step


def bucket_table(snap: pd.DataFrame, buckets: DpdBuckets = DEFAULT_DPD) -> pd.DataFrame:
    """Aging table from a snapshot: customers, balance and share of balance per DPD bucket."""
    g = snap.groupby("dpd_bucket", observed=False).agg(
        customers=("customer_id", "size"), balance=("balance", "sum")
    )
    g = g.reindex(list(buckets.labels), fill_value=0)
    total = g["balance"].sum()
    g["share_of_balance"] = g["balance"] / total if total else float("nan")
    return g.rename_axis("dpd_bucket").reset_index()


def run_demo(
    data_dir: str | os.PathLike = "data",
    customers: int = DEFAULT_CUSTOMERS,
    seed: int = DEFAULT_SEED,
    progress: Callable[[str], None] | None = None,
) -> DemoSummary:
    """Generate the sample portfolio into ``data_dir/sample.duckdb`` and summarise it.

    Steps: generate (seeded), write the DuckDB file atomically, load it through the
    packaged sources YAML (which validates every table), compute the snapshot of the
    latest complete month. ``progress`` receives a short label as each step starts.
    """
    say = progress or (lambda _msg: None)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    say(f"Generating {customers:,} customers")
    sample = synth.generate(customers, seed=seed)
    timings["generate"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    db = Path(data_dir) / "sample.duckdb"
    say(f"Writing {db}")
    engine.write_database(db, sample.tables)
    timings["write"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    say("Validating")
    portfolio = sources.load(sample_config(), database=db)
    timings["validate"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    say("Checking phones and e-mails")
    portfolio.check_contacts()  # cached: the report run finds the results
    timings["contacts"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    as_of = latest_month_end(portfolio.extraction_date)
    say(f"Computing the snapshot as of {as_of.date()}")
    snap = portfolio.snapshot(as_of).to_pandas()
    timings["snapshot"] = time.perf_counter() - t0
    counts = {name: t.num_rows for name, t in sample.tables.items()}
    portfolio.close()
    return DemoSummary(
        database=db,
        currency=portfolio.currency,
        as_of=as_of,
        row_counts=counts,
        customers=len(snap),
        receivables_open=int(snap["open_receivables"].sum()),
        balance=float(snap["balance"].sum()),
        overdue_balance=float(snap["overdue_balance"].sum()),
        buckets=bucket_table(snap, portfolio.dpd_buckets),
        timings=timings,
    )
