"""Shared fixtures: a tiny hand-made portfolio and seeded samples."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

from collect_kit import engine, schema, synth
from collect_kit.demo import sample_config

D = pd.Timestamp


@contextmanager
def snapshot_cache(folder: Path) -> Iterator[None]:
    """``COLLECT_KIT_CACHE`` set to ``folder`` inside the block (for fixtures wider than a
    test, where ``monkeypatch`` is not available), restored after it."""
    old = os.environ.get("COLLECT_KIT_CACHE")
    os.environ["COLLECT_KIT_CACHE"] = str(folder)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("COLLECT_KIT_CACHE")
        else:
            os.environ["COLLECT_KIT_CACHE"] = old


def _frame(rows: list[tuple], columns: list[str], dates: tuple[str, ...] = ()) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns)
    for c in dates:
        df[c] = pd.to_datetime(df[c]).astype("datetime64[s]")
    return df


@pytest.fixture
def tiny() -> dict[str, pd.DataFrame]:
    """Four customers whose snapshot as of 2025-03-31 is worked by hand in test_snapshot.py.

    A: several receivables, a payment on account (FIFO), a linked partial payment, a kept
    and a broken promise, two scores (one after as_of). B: new company, partial payment,
    a payment after as_of, a superseded promise, no score, nulls. C: a write-off, a credit
    (payment with nothing open), a receivable issued after as_of, a promise not yet due.
    D: arrives after as_of (not in the snapshot).
    """
    customers = _frame(
        [
            ("A", "Ana Alpha", "person", None, None, "Metropolitana", "2020-01-01", "+56 9 1111 2222", "ana@example.cl", "sms", False),
            ("B", "Beta SpA", "company", "small", None, "Biobío", "2025-02-15", None, "bad-email", "email", True),
            ("C", "Carlos Gamma", "person", None, None, "Maule", "2024-06-01", "123", None, None, False),
            ("D", "Diana Delta", "person", None, None, "Maule", "2025-05-01", "+56 9 3333 4444", "d@example.cl", "call", False),
        ],
        ["customer_id", "name", "customer_type", "company_size", "industry", "region", "customer_since",
         "phone", "email", "preferred_channel", "open_dispute"],
        ("customer_since",),
    )  # fmt: skip
    receivables = _frame(
        [
            ("A1", "A", "loan", "2024-12-01", "2024-12-31", 100.0, "CLP"),
            ("A2", "A", "loan", "2025-01-01", "2025-01-31", 200.0, "CLP"),
            ("A3", "A", "loan", "2025-03-01", "2025-04-15", 300.0, "CLP"),
            ("B1", "B", "invoice", "2025-02-15", "2025-03-01", 1000.0, "CLP"),
            ("C1", "C", "loan", "2024-07-01", "2024-07-31", 500.0, "CLP"),
            ("C2", "C", "loan", "2025-04-10", "2025-05-10", 50.0, "CLP"),
        ],
        ["receivable_id", "customer_id", "product", "issued_at", "due_at", "amount", "currency"],
        ("issued_at", "due_at"),
    )
    payments = _frame(
        [
            ("p1", "A", None, "2025-02-10", 150.0),
            ("p2", "A", "A2", "2025-03-05", 100.0),
            ("p3", "B", "B1", "2025-03-20", 400.0),
            ("p4", "B", "B1", "2025-04-05", 600.0),
            ("p5", "C", "C1", "2024-08-15", 100.0),
            ("p6", "C", None, "2025-03-15", 30.0),
        ],
        ["payment_id", "customer_id", "receivable_id", "paid_at", "amount"],
        ("paid_at",),
    )
    adjustments = _frame(
        [("a1", "C1", "C", "2025-02-28", "write_off", 400.0)],
        ["adjustment_id", "receivable_id", "customer_id", "at", "kind", "amount"],
        ("at",),
    )
    contacts = _frame(
        [
            ("k1", "A", "2025-02-01", "call", "right_party", None, None, 650.0),
            ("k2", "A", "2025-02-05", "call", "promise", 150.0, "2025-02-12", 650.0),
            ("k3", "A", "2025-03-01", "sms", "delivered", None, None, 40.0),
            ("k8", "A", "2025-03-25", "call", "promise", 200.0, "2025-03-28", 650.0),
            ("k9", "B", "2025-03-05", "call", "promise", 900.0, "2025-03-15", 650.0),
            ("k4", "B", "2025-03-10", "call", "promise", 500.0, "2025-03-25", 650.0),
            ("k5", "B", "2025-03-12", "email", "no_answer", None, None, 5.0),
            ("k6", "C", "2025-03-20", "call", "promise", 100.0, "2025-04-10", 650.0),
            ("k7", "C", "2025-04-02", "call", "no_answer", None, None, 650.0),
        ],
        [
            "contact_id",
            "customer_id",
            "at",
            "channel",
            "outcome",
            "promise_amount",
            "promise_due",
            "cost",
        ],
        ("at", "promise_due"),
    )
    scores = _frame(
        [
            ("A", "2025-02-28", 600.0, "bureau"),
            ("A", "2025-03-31", 620.0, "bureau"),
            ("A", "2025-04-30", 700.0, "bureau"),
            ("C", "2025-01-31", 450.0, "bureau"),
        ],
        ["customer_id", "scored_at", "score", "source"],
        ("scored_at",),
    )
    return {
        "customers": customers,
        "receivables": receivables,
        "payments": payments,
        "adjustments": adjustments,
        "contacts": contacts,
        "scores": scores,
    }


@pytest.fixture(scope="session")
def small_sample() -> synth.Sample:
    """A 2 000-customer seeded sample."""
    return synth.generate(2_000, seed=11)


def sample_frames_of(sample: synth.Sample) -> dict[str, pd.DataFrame]:
    """The sample's tables as pandas, dates as Timestamps (what plain-pandas references use)."""
    out = {k: sample.frame(k) for k in sample.tables}
    for name, frame in out.items():
        for column in schema.TABLES[name].columns:
            if column.dtype == "date" and column.name in frame:
                frame[column.name] = pd.to_datetime(frame[column.name])
    return out


@pytest.fixture(scope="session")
def frames(small_sample) -> dict[str, pd.DataFrame]:
    """The 2 000-customer sample as pandas frames with Timestamp dates (do not modify)."""
    return sample_frames_of(small_sample)


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory, small_sample) -> Path:
    """The 2 000-customer sample written to a DuckDB file."""
    path = tmp_path_factory.mktemp("db") / "sample.duckdb"
    engine.write_database(path, small_sample.tables)
    return path


@pytest.fixture(scope="session")
def sample_yaml() -> Path:
    return sample_config()


@pytest.fixture(scope="session")
def sources_yaml(tmp_path_factory, sample_db) -> Path:
    """A sources YAML pointing at the 2 000-customer sample database."""
    path = tmp_path_factory.mktemp("cfg") / "sources.yaml"
    path.write_text(
        f"portfolio: Test\ncurrency: CLP\nextraction_date: 2026-10-31\ndatabase: {sample_db}\n"
    )
    return path


@pytest.fixture(scope="session")
def demo_snapshot() -> pd.DataFrame:
    """The snapshot of the default demo sample (20 000 customers, seed 7) at its latest month."""
    from collect_kit.demo import DEFAULT_CUSTOMERS, DEFAULT_SEED
    from collect_kit.snapshot import snapshot

    sample = synth.generate(DEFAULT_CUSTOMERS, seed=DEFAULT_SEED)
    return snapshot(sample.tables, "2026-10-31").to_pandas()
