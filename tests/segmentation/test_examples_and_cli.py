"""The shipped example segmentations, and the segment / sql commands."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from collect_kit.cli import app
from collect_kit.segmentation import DEFAULT, assign, explain, load

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "collect_kit" / "configs" / "segments"


@pytest.mark.parametrize("name", ["consumer", "b2b"])
def test_every_example_segment_holds_at_least_one_percent(name, demo_snapshot):
    seg = load(CONFIGS / f"{name}.yaml")
    e = explain(seg, demo_snapshot)
    sizes = e.segments.set_index("segment").customers
    n = len(demo_snapshot)
    for segment, customers in sizes.items():
        assert customers >= max(5, 0.01 * n), (name, segment, customers)
    assert not (e.lint.severity == "error").any()
    assert all(s.strategy for s in seg.segments), "every segment, Default too, names a strategy"


def test_consumer_example_covers_the_documented_segments():
    names = load(CONFIGS / "consumer.yaml").names
    assert names == [
        "New customers",
        "Broken promises",
        "Hard to contact",
        "High risk",
        "High balance",
        "Low risk",
        DEFAULT,
    ]
    names = load(CONFIGS / "b2b.yaml").names
    assert names == [
        "Open dispute",
        "Corporate",
        "Large balance",
        "Slow payers",
        "Small companies",
        DEFAULT,
    ]


def test_segment_command_prints_table_and_exports(tmp_path, sources_yaml, sample_db):
    out_file = tmp_path / "dialer.csv"
    result = CliRunner().invoke(
        app,
        [
            "segment",
            str(CONFIGS / "consumer.yaml"),
            "--sources",
            str(sources_yaml),
            "--export",
            str(out_file),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "consumer: segments as of 2026-10-31" in result.output
    exported = pd.read_csv(out_file)
    assert list(exported.columns) == ["customer_id", "segment", "strategy"]
    assert len(exported) == 2_000 and exported.customer_id.is_unique
    # the export agrees with assign on the same snapshot
    from collect_kit import sources
    from collect_kit.snapshot import snapshot

    portfolio = sources.load(sources_yaml)
    snap = snapshot(portfolio.tables, "2026-10-31").to_pandas()
    expected = assign(load(CONFIGS / "consumer.yaml"), snap).set_index("customer_id").segment
    assert (exported.set_index("customer_id").segment == expected.loc[exported.customer_id]).all()
    for name in ("New customers", "Default"):
        assert name in result.output
    assert not list(tmp_path.glob(".*partial"))


def test_segment_command_parquet_export_and_as_of(tmp_path, sources_yaml):
    out_file = tmp_path / "dialer.parquet"
    result = CliRunner().invoke(
        app,
        [
            "segment",
            str(CONFIGS / "b2b.yaml"),
            "--sources",
            str(sources_yaml),
            "--as-of",
            "2026-06-30",
            "--export",
            str(out_file),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "as of 2026-06-30" in result.output
    assert len(pd.read_parquet(out_file)) < 2_000  # customers who arrived later are not there


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "name: x\nsegments:\n  - name: A\n    when: {column: balanse, op: '>', value: 1}\n",
            "unknown column 'balanse' (did you mean 'balance'?)",
        ),
        (
            "name: x\nsegments:\n  - name: A\n    when: {column: balance, op: '=>', value: 1}\n",
            "segment 'A', line 3",
        ),
        ("name: x\nsegments: [unclosed\n", "not valid YAML"),
    ],
)
def test_bad_rules_exit_2_with_file_segment_and_field(tmp_path, sources_yaml, text, message):
    rules = tmp_path / "bad.yaml"
    rules.write_text(text)
    result = CliRunner().invoke(app, ["segment", str(rules), "--sources", str(sources_yaml)])
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and message in result.output


def test_bad_export_extension(tmp_path, sources_yaml):
    result = CliRunner().invoke(
        app,
        [
            "segment",
            str(CONFIGS / "b2b.yaml"),
            "--sources",
            str(sources_yaml),
            "--export",
            str(tmp_path / "x.xlsx"),
        ],
    )
    assert result.exit_code == 2 and "must end in .csv or .parquet" in result.output


def test_sql_command_spark_dialect():
    result = CliRunner().invoke(app, ["sql", str(CONFIGS / "b2b.yaml"), "--dialect", "spark"])
    assert result.exit_code == 0, result.output
    assert "`snapshot`" in result.output and "'Open dispute'" in result.output
    bad = CliRunner().invoke(app, ["sql", str(CONFIGS / "b2b.yaml"), "--dialect", "oracle"])
    assert bad.exit_code == 2 and "dialect" in bad.output
