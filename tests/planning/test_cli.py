"""`collect-kit plan`: the plan in words, the lists exported, bad plans exit 2."""

from __future__ import annotations

from typer.testing import CliRunner

from collect_kit.cli import app

from .helpers import plan_yaml


def run(*args):
    return CliRunner().invoke(app, ["plan", *map(str, args)])


def test_plan_command(tmp_path, sources_yaml):
    out = tmp_path / "lists"
    out.mkdir()
    done = run(plan_yaml(tmp_path, sources_yaml), "--draws", "20", "--export", out)
    assert done.exit_code == 0, done.output
    assert "Next month:" in done.output and "Capacities (shadow price" in done.output
    assert "draws" in done.output and "Customer lists written to" in done.output
    assert sorted(p.name for p in out.iterdir())[0].startswith("next_month-")


def test_infeasible_plan_names_the_capacity(tmp_path, sources_yaml):
    # everyone gets at least the usual reminders: 0.16 agent hours a customer
    done = run(plan_yaml(tmp_path, sources_yaml, **{"capacity.agent_hours": 10}), "--draws", "0")
    assert done.exit_code == 2, done.output
    assert "agent hours: the plan needs" in done.output and "capacity 10: short by" in done.output
    assert "Traceback" not in done.output


def test_bad_plans_exit_2(tmp_path, sources_yaml):
    capped = plan_yaml(tmp_path, sources_yaml, **{"rules.max_actions_per_week": {"call": 0.3}})
    done = run(capped, "--draws", "0")
    assert done.exit_code == 2
    for words in (
        "treatments.usual_reminders: 1.6 call actions a month break the contact cap",
        "treatments.sms_and_call: 3.3 call",
        "treatments.settlement_offer: 2.6 call",
    ):
        assert words in done.output
    bad = plan_yaml(tmp_path, sources_yaml, **{"treatments.sms_and_call.actions": {"fax": 1}})
    done = run(bad, "--draws", "0")
    assert (
        done.exit_code == 2
        and "treatments.sms_and_call: ['fax'] are not channels of the plan" in done.output
    )
    done = run(plan_yaml(tmp_path, sources_yaml), "--export", tmp_path / "missing")
    assert done.exit_code == 2 and "is not a folder" in done.output


def test_ids_that_would_escape_the_export_folder_are_refused(tmp_path, sources_yaml):
    import yaml

    path = plan_yaml(tmp_path, sources_yaml)
    raw = yaml.safe_load(path.read_text())
    raw["treatments"]["../../escape"] = raw["treatments"].pop("settlement_offer")
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    done = run(path, "--draws", "0")
    assert done.exit_code == 2 and "a treatment id is letters, digits" in done.output
    done = run(plan_yaml(tmp_path, sources_yaml, plan_id="../x"), "--draws", "0")
    assert done.exit_code == 2 and "plan_id" in done.output
