"""Readouts stored once by a report run and loaded by its notebooks: the same readout."""

from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from collect_kit import sources
from collect_kit.demo import sample_config
from collect_kit.errors import NoResultsYetError
from collect_kit.experiments import stored
from collect_kit.experiments.run import ExperimentReadout, readout_experiment
from collect_kit.reports.context import experiment_configs

MONTH = pd.Timestamp("2026-10-31")


@pytest.fixture(scope="module")
def portfolio(sample_db):
    p = sources.load(sample_config(), database=sample_db)
    yield p
    p.close()


@pytest.mark.parametrize("name", ["sms_call_pilot", "discount_offer"])
def test_a_stored_readout_equals_the_one_read_now(portfolio, tmp_path, name):
    config = experiment_configs([name])[0]
    stored.store(config, MONTH, portfolio, tmp_path / "r")
    assert not (tmp_path / "r.part").exists()
    kept = {str(config.resolve()): str(tmp_path / "r")}
    loaded = readout_experiment(config, as_of=MONTH, portfolio=portfolio, stored=kept)
    fresh = readout_experiment(config, as_of=MONTH, portfolio=portfolio)
    assert loaded.config == fresh.config and loaded.as_of == fresh.as_of
    assert loaded.labels == fresh.labels and loaded.currency == fresh.currency
    for f in dataclasses.fields(ExperimentReadout):
        if isinstance(getattr(fresh, f.name), pd.DataFrame):
            pd.testing.assert_frame_equal(getattr(loaded, f.name), getattr(fresh, f.name))
    assert len(loaded.results) > 0
    # another date, or another config, is read again, not loaded
    assert stored.load(kept, config, MONTH - pd.offsets.MonthEnd(1)) is None
    other = experiment_configs(["discount_offer" if name == "sms_call_pilot" else "sms_call_pilot"])
    assert stored.load(kept, other[0], MONTH) is None


def test_nothing_to_read_yet_is_stored_as_such(portfolio, tmp_path):
    config = experiment_configs(["sms_call_pilot"])[0]
    early = pd.Timestamp("2025-01-31")
    with pytest.raises(NoResultsYetError) as fresh:
        readout_experiment(config, as_of=early, portfolio=portfolio)
    stored.store(config, early, portfolio, tmp_path / "r")
    with pytest.raises(NoResultsYetError) as loaded:
        stored.load({str(config.resolve()): str(tmp_path / "r")}, config, early)
    assert str(loaded.value) == str(fresh.value)
