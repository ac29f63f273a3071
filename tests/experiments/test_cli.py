"""The experiment commands end to end on the sample database."""

from __future__ import annotations

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
        "payer_rate",
        "log-rank",
        "Cochran",
        "Recommendations",
    ):
        assert text in r.output


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
    )
    r = CliRunner().invoke(
        app, ["experiment", "readout", str(unknown), "--database", str(sample_db)]
    )
    assert r.exit_code == 2 and "no assignments" in r.output
