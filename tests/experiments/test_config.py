"""Experiment configs: a mistake is refused with the file, the key and what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from collect_kit.cli import app
from collect_kit.errors import ConfigError
from collect_kit.experiments import readout_experiment
from collect_kit.experiments.config import load_experiment

CONFIGS = Path(__file__).resolve().parents[2] / "src" / "collect_kit" / "configs"
HEAD = (
    "experiment_id: sms_call_pilot\n"
    f"sources: {CONFIGS / 'sources' / 'sample.yaml'}\n"
    "mde_amount: 100\n"
)


def _write(tmp_path, body: str, name="exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(HEAD + body)
    return path


@pytest.mark.parametrize(
    "body, words",
    [
        ("arms: {champion: 0.8, challenger: x}\n",
         r"exp\.yaml: arms: a weight is a number >= 0, got \{'challenger': 'x'\}"),
        ("arms: {A: {champion: 1, challenger: 1}, champion: 1}\n", r"arms: mixes weights and segments"),
        ("arms: {A: {champion: 1}}\n", r"arms: segment 'A': an experiment needs a champion"),
        ("arms: {champion: 1, challenger: 1}\ncost_per_customer: {challnger: 690}\n",
         r"cost_per_customer: \['challnger'\] are not arms of the design"),
        ("arms: {champion: 1, challenger: 1}\nmetrics: {'': {type: mean, table: payments}}\n",
         r"metrics: '': a metric name is lower case"),
        ("arms: {champion: 1, challenger: 1}\nmetrics: {Paid: {type: mean, table: payments}}\n",
         r"metrics: 'Paid': a metric name is lower case"),
        ("arms: {champion: 1, challenger: 1}\n"
         "metrics: {paid3: {type: proportion, table: payments, mde: 3}}\n",
         r"metrics\.paid3: mde: a proportion's MDE is a fraction in \(0, 1\)"),
        ("arms: {champion: 1, challenger: 1}\n"
         "metrics: {paid: {type: proportion, table: payments, at_least: -5}}\n",
         r"metrics\.paid: at_least: a threshold is a positive number"),
        ("arms: {champion: 1, challenger: 1}\n"
         "metrics: {rpc: {type: proportion, table: contacts, aggregate: count, at_least: balance}}\n",
         r"metrics\.rpc: at_least: 'balance' compares the sum of payments"),
        ("arms: {champion: 1, challenger: 1}\n"
         "metrics: {rpc: {type: proportion, table: contacts, aggregate: any, at_least: 2}}\n",
         r"metrics\.rpc: at_least: 'any' is already yes/no"),
        ("arms: {champion: 1, challenger: 1}\n"
         "metrics: {paid: {type: proportion, table: payments, at_least: lots}}\n",
         r"metrics\.paid\.at_least: Input should be a valid number.*; or Input should be 'balance'"),
    ],
)  # fmt: skip
def test_a_bad_config_names_the_file_and_key(tmp_path, body, words):
    with pytest.raises(ConfigError, match=words) as err:
        load_experiment(_write(tmp_path, body))
    assert "dict[" not in str(err.value) and "literal[" not in str(err.value)


def test_the_data_must_match_the_design(tmp_path, sample_db):
    """Segments without weights, arms the config does not design and filter values the
    data never has are refused naming the config file (exit 2 in the CLI)."""
    cases = [
        ("arms: {High risk: {champion: 0.8, challenger: 0.2}}\n",
         "segments: experiment 'sms_call_pilot' assigned customers to segment(s) "
         "['Low risk', 'Medium risk'], which are not among ['High risk']"),
        (f"segmentation: {CONFIGS / 'segments' / 'consumer.yaml'}\n"
         "arms: {champion: 0.8, challenger: 0.2}\n",
         "consumer.yaml): experiment 'sms_call_pilot' assigned customers to segment(s) "
         "['Medium risk'], which are not among"),
        ("arms: {champion: 0.8, other: 0.2}\n",
         "to arm(s) ['challenger'], which the config does not design (['champion', 'other'])"),
        ("arms: {champion: 0.8, challenger: 0.2}\n"
         "metrics: {ag: {type: proportion, table: contacts, aggregate: any, where: {agent: [AG03, Bob]}}}\n",
         "metrics.ag.where.agent: ['Bob'] never appear in contacts.agent"),
    ]  # fmt: skip
    for i, (body, words) in enumerate(cases):
        path = _write(tmp_path, body, f"exp{i}.yaml")
        with pytest.raises(ConfigError) as err:
            readout_experiment(path, database=sample_db, as_of="2026-10-31")
        assert str(err.value).startswith(f"{path}: ") and words in str(err.value)
        r = CliRunner().invoke(
            app, ["experiment", "readout", str(path), "--database", str(sample_db)]
        )
        assert r.exit_code == 2 and words in r.output and "Traceback" not in r.output
