"""The scheduled way to run the report: the packaged crontab line run as cron runs it (a
shell in the project folder), its exit codes, and the CI-workflow example."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import yaml

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "collect_kit"
SCHEDULING = PACKAGE / "configs" / "scheduling"
FIELDS = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))


def cron_job() -> tuple[str, str]:
    """The (schedule, command) of the packaged crontab's one job line."""
    lines = [
        line
        for line in (SCHEDULING / "crontab").read_text().splitlines()
        if line.strip() and not line.startswith("#") and "=" not in line.split()[0]
    ]
    assert len(lines) == 1
    parts = lines[0].split(maxsplit=5)
    return " ".join(parts[:5]), parts[5]


def test_crontab_schedule_is_valid():
    schedule, command = cron_job()
    for field, (low, high) in zip(schedule.split(), FIELDS, strict=True):
        assert field == "*" or low <= int(field) <= high, field
    assert "collect-kit report run configs/reports/monthly.yaml" in command


def project(tmp_path: Path, sample_db: Path) -> Path:
    """A project folder laid out like a clone: configs, the venv's command, data, reports."""
    root = tmp_path / "collect_kit"
    (root / ".venv" / "bin").mkdir(parents=True)
    (root / "data").mkdir()
    (root / "reports").mkdir()
    os.symlink(PACKAGE / "configs", root / "configs")
    os.symlink(Path(sys.executable).parent / "collect-kit", root / ".venv" / "bin" / "collect-kit")
    shutil.copy(sample_db, root / "data" / "sample.duckdb")
    return root


def run_as_cron(command: str, root: Path, cache: Path) -> subprocess.CompletedProcess:
    # cron runs the line with /bin/sh and a minimal environment
    env = {"PATH": "/usr/bin:/bin", "HOME": str(root), "COLLECT_KIT_CACHE": str(cache)}
    return subprocess.run(
        ["/bin/sh", "-c", command.replace("/srv/collect_kit", str(root))],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


def test_the_cron_line_runs_the_report_and_its_status_tells_the_outcome(tmp_path, sample_db):
    _, command = cron_job()
    assert "reports/" not in command.split(">>", 1)[1]  # the console log is not handed on
    root = project(tmp_path, sample_db)
    log = root / "logs" / "monthly-report.log"
    done = run_as_cron(command, root, tmp_path / "cache")
    assert done.returncode == 0, log.read_text()
    assert done.stdout == ""  # nothing for cron to mail
    latest = root / "reports" / "monthly" / "latest"
    assert latest.is_symlink()
    assert {p.name for p in latest.glob("*.pdf")} == {
        "portfolio_report.pdf", "segmentation.pdf", "experiment_readout.pdf", "strategy_plan.pdf",
    }  # fmt: skip
    assert f"latest -> {latest.resolve().name}" in log.read_text()

    # bad input: exit status 2, nothing new in reports/, the failure mailed by the line
    bad = command.replace("configs/reports/monthly.yaml", "configs/reports/missing.yaml")
    failed = run_as_cron(bad, root, tmp_path / "cache")
    assert "failed with status 2" in failed.stdout
    runs = [p for p in (root / "reports" / "monthly").iterdir() if not p.is_symlink()]
    assert len(runs) == 1 and latest.resolve() == runs[0].resolve()
    assert re.search(r"missing\.yaml", log.read_text())

    # invalid data: the log kept by cron has the counts, never the example ids
    with duckdb.connect(str(root / "data" / "sample.duckdb")) as con:
        (rid,) = con.execute("select min(receivable_id) from receivables").fetchone()
        con.execute("update receivables set amount = 'NaN'::double where receivable_id = ?", [rid])
    failed = run_as_cron(command, root, tmp_path / "cache")
    assert "failed with status 2" in failed.stdout
    assert "not_finite: 1 row(s)" in log.read_text() and rid not in log.read_text()
    assert latest.resolve() == runs[0].resolve()
    for path in (root / "reports").rglob("*"):
        assert path.suffix != ".log" or path.name == "run.log"
        assert not path.is_file() or rid not in path.read_text(errors="replace")


def test_ci_workflow_example_runs_the_same_command_on_the_same_schedule():
    workflow = yaml.safe_load((SCHEDULING / "monthly-report.github-actions.yml").read_text())
    triggers = workflow[True] if True in workflow else workflow["on"]  # YAML 1.1 reads on: as True
    schedule, _ = cron_job()
    assert triggers["schedule"] == [{"cron": schedule}]
    steps = workflow["jobs"]["report"]["steps"]
    runs = " ".join(s.get("run", "") for s in steps)
    assert "make setup" in runs and "scripts/system-deps.sh" in runs
    assert "collect-kit report run configs/reports/monthly.yaml" in runs and "--quiet" in runs
    upload = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload and upload[0]["if"] == "always()"
    # the console stays in the job's log: nothing is redirected into the uploaded folder
    assert ">" not in runs and "tee" not in runs
    assert upload[0]["with"]["path"].startswith("reports/")
