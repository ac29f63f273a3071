"""The experiment commands end to end on the sample database."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from collect_kit.cli import app
from collect_kit.experiments.assign import hash_bucket

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "collect_kit" / "configs" / "experiments"


def test_readout_command(sample_db):
    r = CliRunner().invoke(
        app,
        [
            "experiment",
            "readout",
            str(CONFIGS / "sms_call_pilot.yaml"),
            "--database",
            str(sample_db),
        ],
    )
    assert r.exit_code == 0, r.output
    for text in (
        "Readout of sms_call_pilot",
        "Sample-ratio check, whole experiment: p = ",
        "Sample-ratio check per segment",
        " challenger ",  # which challenger a row is about
        "collected_per_customer *",  # the primary metric, marked
        "raw (info)",
        "t = ",
        "All segments (post-stratified)",
        "log-rank",
        "Cochran",
        "Decisions",
        "* the primary metric: the only one that decides",  # the marks explained
    ):
        assert text in r.output, text
    assert not re.search(r"\bnan\b", r.output, re.IGNORECASE)
    # p-values to 3 significant digits, not rounded to 4 decimals
    ps = re.findall(r"p = ([0-9.]+)", r.output)
    assert ps and all(len(p.split(".")[-1].lstrip("0")) <= 3 for p in ps)


def test_design_and_assign_commands(sample_db, tmp_path):
    r = CliRunner().invoke(
        app,
        [
            "experiment",
            "design",
            str(CONFIGS / "discount_offer.yaml"),
            "--database",
            str(sample_db),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "split 50/50" in r.output and "points" in r.output
    assert "The decision metric, recovery rate" in r.output  # which metric decides, and its size
    r = CliRunner().invoke(app, ["experiment", "design", str(CONFIGS / "sms_call_pilot.yaml"),
                                 "--database", str(sample_db)])  # fmt: skip
    assert r.exit_code == 0 and "The decision metric, collected per customer, needs" in r.output
    assert re.search(r"about [\d,]+ (weeks|years)", r.output)
    out = tmp_path / "arms.parquet"
    r = CliRunner().invoke(
        app,
        [
            "experiment",
            "assign",
            str(CONFIGS / "discount_offer.yaml"),
            "--database",
            str(sample_db),
            "--export",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    arms = pd.read_parquet(out)
    assert list(arms.columns) == ["customer_id", "segment", "arm"] and arms.customer_id.is_unique
    # only the test's segments (not the segmentation's default), nobody already assigned
    assert set(arms.segment) <= {"61-90", "91-180", "181+"}
    import duckdb

    with duckdb.connect(str(sample_db), read_only=True) as con:
        before = con.sql(
            "select customer_id from assignments where experiment_id = 'discount_offer'"
        ).df()
    assert not arms.customer_id.isin(before.customer_id).any()
    assert re.search(r"[\d,]+ customers already in the experiment keep their arm", r.output)
    expected = [
        "champion" if hash_bucket(c, "discount_offer") < 0.5 else "challenger"
        for c in arms.customer_id
    ]
    assert arms.arm.tolist() == expected


def test_bad_experiment_config_exits_2(tmp_path, sample_db):
    bad = tmp_path / "bad.yaml"
    bad.write_text("experiment_id: x\nsources: s.yaml\narms: {champion: 1}\n")
    r = CliRunner().invoke(app, ["experiment", "readout", str(bad), "--database", str(sample_db)])
    assert r.exit_code == 2 and "champion and at least one challenger" in r.output
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(
        f"experiment_id: nope\nsources: {CONFIGS.parent / 'sources' / 'sample.yaml'}\narms: {{a: 1, b: 1}}\n"
        "mde_amount: 100\n"
    )
    r = CliRunner().invoke(
        app, ["experiment", "readout", str(unknown), "--database", str(sample_db)]
    )
    assert r.exit_code == 2 and "no assignments" in r.output
    # the primary metric's MDE is the config's: without it the decision has nothing to go on
    no_mde = tmp_path / "no_mde.yaml"
    no_mde.write_text(unknown.read_text().replace("mde_amount: 100\n", ""))
    r = CliRunner().invoke(
        app, ["experiment", "readout", str(no_mde), "--database", str(sample_db)]
    )
    assert r.exit_code == 2 and "primary_metric" in r.output and "mde_amount" in r.output
    assert "Traceback" not in r.output
