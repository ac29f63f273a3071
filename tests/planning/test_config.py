"""Plan configs: every mistake refused with the file, the field and what was expected."""

from __future__ import annotations

import pytest

from collect_kit.errors import ConfigError
from collect_kit.planning.config import load_plan

from .helpers import plan_yaml


def test_the_sample_plan_loads(tmp_path):
    cfg, _ = load_plan(plan_yaml(tmp_path))
    assert cfg.champion == "usual_reminders" and cfg.holdout == 0.1
    # 1.9 e-mails x 5 + 1.4 WhatsApp x 25 + 1.2 SMS x 40 + 1.6 calls x 650 + 0.2 letters x 1 200
    assert cfg.cost_per_customer()["usual_reminders"] == pytest.approx(
        1.9 * 5 + 1.4 * 25 + 1.2 * 40 + 1.6 * 650 + 0.2 * 1200
    )
    # the offer's calls take 12 minutes instead of 6
    assert cfg.agent_minutes_per_customer()["settlement_offer"] == pytest.approx(2.6 * 12)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"champion": "nobody"}, "champion: ['nobody'] are not treatments of the plan"),
        ({"treatments.usual_reminders.assumed": {"High risk": {"effect": 1, "se": 1}}},
         "the champion's effect is 0 by definition"),
        ({"treatments.sms_and_call.measured": None}, "treatments.sms_and_call: give its effects"),
        ({"capacity.budget": {"fax": 10}}, "capacity.budget: ['fax'] are not channels"),
        ({"capacity.agent_hours": -5}, "capacity.agent_hours"),
        ({"rules.max_share": {"settlement_offer": 1.5}}, "shares are fractions from 0 to 1"),
        ({"rules.max_share": {"nothing": 0.5}}, "rules.max_share: ['nothing'] are not treatments"),
        ({"rules.minimum_treatment": "sms_and_call"},
         "the champion 'usual_reminders' gives fewer actions than 'sms_and_call'"),
        ({"treatments.settlement_offer.discount": 1.0}, "treatments.settlement_offer.discount"),
        ({"treatments.sms_and_call.actions": {"call": "many"}}, "treatments.sms_and_call.actions"),
        ({"holdout": 1.0}, "holdout"),
        ({"robustness.draws": 1}, "robustness.draws"),
        ({"surprise": 1}, "surprise"),
    ],
)  # fmt: skip
def test_mistakes_are_refused(tmp_path, change, words):
    path = plan_yaml(tmp_path, **change)
    with pytest.raises(ConfigError) as info:
        load_plan(path)
    assert words in str(info.value)
    assert str(path) in str(info.value)


def test_files_it_names_must_exist(tmp_path):
    path = plan_yaml(tmp_path, **{"treatments.sms_and_call.measured.experiment": "missing.yaml"})
    with pytest.raises(
        ConfigError,
        match=r"treatments.sms_and_call.measured.experiment: 'missing.yaml' is not a file",
    ):
        load_plan(path)
