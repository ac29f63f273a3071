"""A team's own columns: declared under ``extra:``, validated, rolled up into the snapshot,
usable in rules, profiles, KPI groupings; personal ones never leave the engine."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from collect_kit import kpis, sources
from collect_kit import segmentation as sg
from collect_kit.errors import ConfigError, DataValidationError
from collect_kit.segmentation.rules import SegmentationError
from collect_kit.snapshot import snapshot, snapshot_schema

AS_OF = "2025-03-31"


def _write(folder, frames: dict[str, pd.DataFrame], extra: dict, currency="EUR", **top) -> str:
    tables = {}
    for name, frame in frames.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
        tables[name] = {"path": f"{name}.csv"}
        if name in extra:
            tables[name]["extra"] = extra[name]
    cfg = {"portfolio": "Own fields", "currency": currency, "extraction_date": "2025-04-30",
           "tables": tables, **top}  # fmt: skip
    path = folder / "sources.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


@pytest.fixture
def book(tmp_path):
    """Three customers; balances are easy to see: only r6 and r7 are paid (in full)."""
    customers = pd.DataFrame(
        {
            "customer_id": ["A", "B", "C"],
            "customer_since": ["2024-01-01"] * 3,
            "linea": ["retail", "sme", "retail"],
            "limite": ["1000.5", "250", ""],
            "legal": ["yes", "no", "no"],
            "telefono2": ["ZZSECRET-111", "ZZSECRET-222", ""],
        }
    )
    receivables = pd.DataFrame(
        {
            "receivable_id": ["r1", "r2", "r3", "r4", "r5", "r6", "r7"],
            "customer_id": ["A", "A", "A", "B", "B", "B", "C"],
            "issued_at": [
                "2024-12-01",
                "2024-12-05",
                "2025-01-01",
                "2024-12-01",
                "2025-01-01",
                "2025-01-02",
                "2025-01-03",
            ],  # fmt: skip
            "due_at": [
                "2025-01-10",
                "2025-01-05",
                "2025-02-01",
                "2025-01-01",
                "2025-02-01",
                "2025-02-02",
                "2025-02-03",
            ],  # fmt: skip
            "amount": [100.0, 60.0, 50.0, 100.0, 100.0, 500.0, 80.0],
            "branch": ["N", "S", "S", "N", "S", "S", "E"],
            "fee": [1.0, 2.0, 3.0, 4.0, None, 6.0, 7.0],
            "doc": ["X", "Y", "Y", "X", "Y", "Z", "Y"],
        }
    )
    payments = pd.DataFrame(
        {
            "payment_id": ["p1", "p2"],
            "customer_id": ["B", "C"],
            "receivable_id": ["r6", "r7"],
            "paid_at": ["2025-02-10", "2025-03-01"],
            "amount": [500.0, 80.0],
        }
    )
    frames = {"customers": customers, "receivables": receivables, "payments": payments}
    extra = {
        "customers": {
            "linea": {"type": "string", "as": "product_line", "categories": ["retail", "sme"]},
            "limite": {"type": "float", "as": "credit_limit"},
            "legal": {"type": "bool", "as": "legal_flag"},
            "telefono2": {"type": "string", "personal": True},
        },
        "receivables": {
            "branch": {"type": "string", "rollup": "balance_weighted_mode"},
            "fee": {"type": "float", "rollup": "sum", "as": "fees"},
            "doc": {"type": "string", "rollup": "mode"},
        },
    }
    return tmp_path, frames, extra


def test_fields_are_validated_typed_and_rolled_up(book):
    folder, frames, extra = book
    portfolio = sources.load(_write(folder, frames, extra))
    snap = (
        snapshot(portfolio.tables, AS_OF, fields=portfolio.fields)
        .to_pandas()
        .set_index("customer_id")
    )
    # customer fields as they are, typed
    assert snap.product_line.to_dict() == {"A": "retail", "B": "sme", "C": "retail"}
    assert snap.credit_limit["A"] == 1000.5 and pd.isna(snap.credit_limit["C"])
    assert snap.legal_flag.to_dict() == {"A": True, "B": False, "C": False}
    # balance-weighted mode: A owes N 100, S 60 + 50 -> S; B owes N 100, S 100 (r6 paid):
    # a tie, broken by the oldest due date (r4, N); C owes nothing -> null
    assert snap.branch["A"] == "S" and snap.branch["B"] == "N" and pd.isna(snap.branch["C"])
    # sum over receivables issued by as_of (a null fee adds nothing); mode (ties: smallest)
    assert snap.fees.to_dict() == {"A": 6.0, "B": 10.0, "C": 7.0}
    assert snap.doc.to_dict() == {"A": "Y", "B": "X", "C": "Y"}
    # personal fields never reach the snapshot
    assert "telefono2" not in snap.columns
    assert not snap.astype(str).apply(lambda c: c.str.contains("ZZSECRET")).any().any()


def test_rollups_follow_the_snapshot_date(book):
    folder, frames, extra = book
    portfolio = sources.load(_write(folder, frames, extra))
    early = snapshot(portfolio.tables, "2024-12-31", fields=portfolio.fields).to_pandas()
    early = early.set_index("customer_id")
    # on 2024-12-31 only r1, r2 (A) and r4 (B) exist: C has no receivable yet
    assert early.fees.to_dict() == {"A": 3.0, "B": 4.0, "C": 0.0}
    assert early.branch["A"] == "N"  # 100 in N against 60 in S


def test_a_bad_value_of_a_field_is_a_validation_problem(book):
    folder, frames, extra = book
    frames["customers"].loc[1, "limite"] = "mucho"
    frames["customers"].loc[2, "linea"] = "corp"
    with pytest.raises(DataValidationError) as err:
        sources.load(_write(folder, frames, extra))
    found = {(p.column, p.check) for p in err.value.report.problems}
    assert found == {("credit_limit", "not_a_number"), ("product_line", "unknown_code")}


def test_a_declared_field_missing_from_the_source_is_a_problem(book):
    folder, frames, extra = book
    frames["receivables"] = frames["receivables"].drop(columns="doc")
    with pytest.raises(DataValidationError) as err:
        sources.load(_write(folder, frames, extra))
    [problem] = err.value.report.problems
    assert (problem.column, problem.check) == ("doc", "missing_column")


@pytest.mark.parametrize(
    "table, declared, message",
    [
        ("receivables", {"region": {"type": "string", "rollup": "mode"}},
         "collides with the snapshot column 'region'"),
        ("customers", {"amount": {"type": "float"}}, "collides with the canonical column"),
        ("receivables", {"branch": {"type": "string"}}, "needs a rollup"),
        ("payments", {"branch": {"type": "string", "rollup": "balance_weighted_mode"}},
         "receivables and extract only"),
        ("receivables", {"branch": {"type": "string", "rollup": "sum"}}, "sum needs a number"),
        ("customers", {"seg": {"type": "string", "rollup": "max"}}, "remove rollup"),
        ("customers", {"2nd": {"type": "string"}}, "not a usable column name"),
        ("scores", {"band": {"type": "string"}}, "extra columns are read from"),
        ("customers", {"x": {"type": "money"}}, "type"),
    ],
)  # fmt: skip
def test_declarations_are_checked(tmp_path, table, declared, message):
    cfg = {"portfolio": "x", "currency": "EUR", "tables": {table: {"extra": declared}}}
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(ConfigError, match=message) as err:
        sources.read_config(path)
    assert str(path) in str(err.value)


def test_as_renames_a_colliding_field(tmp_path):
    cfg = {"portfolio": "x", "currency": "EUR", "tables": {"receivables": {"extra": {
        "region": {"type": "string", "rollup": "mode", "as": "invoice_region"}}}}}  # fmt: skip
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(cfg))
    [field] = sources.read_config(path).fields
    assert (field.name, field.source, field.table) == ("invoice_region", "region", "receivables")


# ------------------------------------------------------------------ rules and groupings


@pytest.fixture(scope="module")
def own_sample(tmp_path_factory, frames):
    """The 2 000-customer sample as CSVs with two fields of the team's own: a customer
    product line and a receivable branch (rolled up by mode), drawn with a seeded RNG."""
    folder = tmp_path_factory.mktemp("own")
    rng = np.random.default_rng(5)
    f = {k: v.copy() for k, v in frames.items()}
    f["customers"]["product_line"] = rng.choice(
        ["cards", "loans", "utilities"], len(f["customers"])
    )
    f["receivables"]["branch"] = rng.choice(["north", "south", "east"], len(f["receivables"]))
    extra = {
        "customers": {"product_line": {"type": "string"}},
        "receivables": {"branch": {"type": "string", "rollup": "mode"}},
    }
    path = _write(folder, f, extra, currency="CLP", extraction_date="2026-10-31")
    portfolio = sources.load(path)  # loaded once for the module's tests
    yield portfolio, f
    portfolio.close()


def _mode_reference(receivables: pd.DataFrame, as_of) -> pd.Series:
    """Per customer, the most frequent branch of the receivables issued by as_of (ties:
    the alphabetically first), in plain pandas."""
    r = receivables[receivables.issued_at <= pd.Timestamp(as_of)]
    counts = r.groupby(["customer_id", "branch"]).size().rename("n").reset_index()
    counts = counts.sort_values(["customer_id", "n", "branch"], ascending=[True, False, True])
    return counts.drop_duplicates("customer_id").set_index("customer_id").branch


def test_rules_on_own_fields_match_a_pandas_reference(own_sample, tmp_path):
    portfolio, f = own_sample
    as_of = "2026-09-30"
    snap = snapshot(portfolio.tables, as_of, fields=portfolio.fields).to_pandas()
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "name: own\nsegments:\n"
        "  - name: Cards north\n    strategy: s1\n"
        "    when: {all: [{column: product_line, op: '==', value: cards},"
        " {column: branch, op: '==', value: north}]}\n"
        "  - name: Loans\n    strategy: s2\n"
        "    when: {column: product_line, op: in, value: [loans]}\n"
        "  - name: South\n    strategy: s3\n    when: {column: branch, op: '==', value: south}\n"
        "default: {strategy: s4}\n"
    )
    got = sg.assign(sg.load(rules), snap).set_index("customer_id").segment
    # the reference: the same cascade in pandas on the raw rows
    ref = snap[["customer_id"]].set_index("customer_id")
    ref["product_line"] = f["customers"].set_index("customer_id").product_line
    ref["branch"] = _mode_reference(f["receivables"], as_of)
    ref["segment"] = np.select(
        [
            (ref.product_line == "cards") & (ref.branch == "north"),
            ref.product_line == "loans",
            ref.branch == "south",
        ],
        ["Cards north", "Loans", "South"],
        "Default",
    )
    pd.testing.assert_series_equal(got.sort_index(), ref.segment.sort_index(), check_names=False)
    assert got.nunique() == 4


def test_the_linter_knows_the_type_of_own_fields(own_sample, tmp_path):
    portfolio, _ = own_sample
    rules = tmp_path / "bad.yaml"
    rules.write_text(
        "name: bad\nsegments:\n  - name: Big\n    strategy: s\n"
        "    when: {column: product_line, op: '>', value: 5}\ndefault: {strategy: d}\n"
    )
    seg = sg.load(rules)
    issues = sg.lint(seg, snapshot_schema(portfolio.fields))
    assert "type_mismatch" in set(issues.check)
    snap = snapshot(portfolio.tables, "2026-09-30", fields=portfolio.fields)
    with pytest.raises(SegmentationError, match="product_line"):
        sg.assign(seg, snap)


def test_kpis_group_by_own_fields(own_sample):
    portfolio, f = own_sample
    groups = snapshot(portfolio.tables, "2026-08-31", fields=portfolio.fields).to_pandas()
    got = kpis.payer_rate(portfolio.tables, "2026-09", by=["product_line"], groups=groups)
    total = kpis.payer_rate(portfolio.tables, "2026-09")
    assert set(got.product_line) == {"cards", "loans", "utilities"}
    assert got.numerator.sum() == total.numerator.iloc[0]
    assert got.denominator.sum() == total.denominator.iloc[0]
    # the grouping is the customers' own product line
    lines = f["customers"].set_index("customer_id").product_line
    book = groups[groups.overdue_balance > 0].assign(line=lambda d: d.customer_id.map(lines))
    assert got.set_index("product_line").denominator.to_dict() == (
        book.groupby("line").size().astype(float).to_dict()
    )


def test_profile_of_own_fields_matches_pandas(book):
    folder, frames, extra = book
    portfolio = sources.load(_write(folder, frames, extra))
    snap = snapshot(portfolio.tables, AS_OF, fields=portfolio.fields).to_pandas()
    rules = folder / "r.yaml"
    rules.write_text(
        "name: r\nsegments:\n  - name: Retail\n    strategy: a\n"
        "    when: {column: product_line, op: '==', value: retail}\ndefault: {strategy: b}\n"
    )
    got = sg.profile(sg.load(rules), snap, columns=["credit_limit", "legal_flag", "doc"])
    got = got.set_index("segment")
    retail = snap[snap.product_line == "retail"]
    assert got.loc["Retail", "mean_credit_limit"] == retail.credit_limit.mean()  # A only
    assert got.loc["Retail", "legal_flag_share"] == retail.legal_flag.mean()
    assert got.loc["Retail", "top_doc"] == "Y" and got.loc["Default", "top_doc"] == "X"
    with pytest.raises(SegmentationError, match="telefono2"):
        sg.profile(sg.load(rules), snap, columns=["telefono2"])
