"""Runs that are finished or visibly not: pre-flight, manifests, heartbeats, kernels, signals,
``latest`` for scheduled runs only, pruning, notify commands, nothing personal in logs.

Most runs here execute tiny stand-in notebooks (``notebook_path`` patched) so each costs a
few seconds; the kill tests run the real ``collect-kit`` console script on the sample."""

from __future__ import annotations

import datetime as dt
import errno
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import nbformat
import pytest
import yaml
from typer.testing import CliRunner

from collect_kit import files, snapshot, sources
from collect_kit.cli import app
from collect_kit.reports import processes, runner, runs, supervision
from collect_kit.reports.cache import cached_snapshots
from collect_kit.reports.notify import run_notify_command
from collect_kit.reports.processes import is_kernel, process_start
from collect_kit.reports.runs import (
    display_path,
    prune_runs,
    read_manifest,
    recover_stale_runs,
    run_status,
)
from collect_kit.snapshot import fingerprint

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "src" / "collect_kit" / "configs"
COLLECT_KIT = Path(sys.executable).parent / "collect-kit"

PARAMETERS = """as_of = None
sources = None
database = None
segmentation = None
experiments = None
language = "en"
lgd = 0.6
report_title = "Tiny"
run_id = ""
validated = False
snapshots = None
"""
OK_BODY = """from IPython.display import HTML, display
display(HTML(f"<h1>{report_title}</h1><p>as of {as_of}, language {language}</p>"))
"""
FAIL_BODY = """import time
time.sleep(1.0)
raise ValueError("boom: the tiny notebook fails on purpose")
"""


def tiny_notebook(path: Path, body: str) -> Path:
    """A notebook declaring the runner's parameters, with one cell of ``body``."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(PARAMETERS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(path))
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    """One snapshot cache for the module (also given to the console-script runs)."""
    folder = tmp_path_factory.mktemp("cache")
    old = os.environ.get("COLLECT_KIT_CACHE")
    os.environ["COLLECT_KIT_CACHE"] = str(folder)
    yield folder
    if old is None:
        os.environ.pop("COLLECT_KIT_CACHE")
    else:
        os.environ["COLLECT_KIT_CACHE"] = old


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("notebooks")
    return {
        "ok": tiny_notebook(folder / "ok.ipynb", OK_BODY),
        "fail": tiny_notebook(folder / "fail.ipynb", FAIL_BODY),
    }


@pytest.fixture
def stand_ins(monkeypatch, tiny, cache):
    """Patch the packaged notebooks: ``stand_ins(portfolio_report="fail")``; others run ok."""

    def use(**mapping: str) -> None:
        monkeypatch.setattr(runner, "notebook_path", lambda name: tiny[mapping.get(name, "ok")])

    use()
    return use


def write_config(folder: Path, **changes) -> Path:
    """The monthly config with absolute paths, one notebook, and ``changes``."""
    cfg = yaml.safe_load((CONFIGS / "reports" / "monthly.yaml").read_text())
    cfg["sources"] = str(CONFIGS / "sources" / "sample.yaml")
    cfg["segmentation"] = str(CONFIGS / "segments" / "consumer.yaml")
    cfg["experiments"] = [str(CONFIGS / "experiments" / "sms_call_pilot.yaml")]
    cfg["plan"] = str(CONFIGS / "plans" / "next_month.yaml")
    cfg["notebooks"] = ["segmentation"]
    cfg.update(changes)
    path = folder / f"report-{len(list(folder.glob('report-*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def cli(*args: str):
    return CliRunner().invoke(app, ["report", "run", *map(str, args)])


def run_folders(out: Path, report: str = "monthly") -> list[Path]:
    folder = out / report
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.is_symlink())


def fake_run(out: Path, run_id: str, status: str, started: dt.datetime, report="monthly") -> Path:
    """A run folder holding only a manifest (an earlier run)."""
    folder = out / report / run_id
    folder.mkdir(parents=True)
    manifest = {"report": report, "run_id": run_id, "status": status,
                "started_at": started.isoformat(timespec="seconds"),
                "heartbeat_at": started.isoformat(timespec="seconds")}  # fmt: skip
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def previous_latest(out: Path) -> Path:
    """An earlier good run and ``latest`` pointing to it."""
    folder = fake_run(out, "20200131T060000-000000", "ok", dt.datetime(2020, 1, 31).astimezone())
    (out / "monthly" / "latest").symlink_to(folder.name)
    return folder


def no_partial_files(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".partial")]


# --------------------------------------------------------------------------- pre-flight

BAD = [
    (["-p", "lgd=abc"], ["parameter lgd: must be a number between 0 and 1", "got 'abc'"]),
    (["-p", "lgd=1.5"], ["parameter lgd: must be a number between 0 and 1", "got 1.5"]),
    (["-p", "lgd=.nan"], ["parameter lgd", "got nan"]),
    (["-p", "language=fr"], ["parameter language: must be one of en, es, pt, got 'fr'"]),
    (["-p", "language=[oops"], ["-p language: '[oops' is not a valid YAML value"]),
    (["-p", "report_title=[1, 2]"], ["parameter report_title: must be one line"]),
    (["-p", "lgd"], ["-p 'lgd': must be key=value"]),
    (["-p", "lgd=0.5", "-p", "lgd=0.7"], ["-p lgd: given twice"]),
    (["-p", "as_of=2026-06-30"], ["parameter as_of: cannot be set with -p; use --as-of"]),
    (["-p", "database=x.duckdb"], ["parameter database: cannot be set with -p; use --database"]),
    (["-p", "lgdd=0.5"], ["parameter lgdd: no notebook of report 'monthly' takes it", "lgd"]),
    (["-p", "segmentation=missing.yaml"], ["missing.yaml", "does not exist"]),
    (["-p", "experiments=[nope]"], ["experiments: 'nope' is neither"]),
    (["--database", "nope.duckdb"], ["--database: 'nope.duckdb' is not a file"]),
    (["--as-of", "2026-10-15"], ["--as-of: must be a month end", "did you mean 2026-10-31"]),
    (["--as-of", "2026-13"], ["--as-of", "2026-13"]),
    (["--as-of", "01/10/2026"], ["--as-of: must be", "never guessed"]),
    (["--as-of", "nonsense"], ["--as-of: must be", "'nonsense'"]),
    (["--as-of", "2030-12-31"], ["--as-of: 2030-12-31 is after the data's extraction date"]),
    (["--as-of", "1990-01-31"], ["--as-of: 1990-01-31 is before"]),
]


@pytest.mark.parametrize(("args", "needles"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_preflight_refuses_before_any_run_folder(tmp_path, sample_db, cache, args, needles):
    out = tmp_path / "out"
    done = cli(CONFIGS / "reports" / "monthly.yaml", "--output-dir", out,
               "--database", sample_db, *args)  # fmt: skip
    assert done.exit_code == 2, done.output
    for needle in needles:
        assert needle in done.output
    assert "Traceback" not in done.output and done.output.count("\n") <= 2
    assert run_folders(out) == [] and not (out / "monthly").exists()


def test_preflight_refuses_an_unwritable_output_folder_and_stale_data(
    tmp_path, sample_db, cache, monkeypatch
):
    (tmp_path / "taken").write_text("a file where the output folder should be")
    done = cli(write_config(tmp_path), "--output-dir", tmp_path / "taken", "--database", sample_db)
    assert done.exit_code == 2 and "output folder" in done.output and "taken" in done.output
    assert "Traceback" not in done.output

    monkeypatch.setenv("COLLECT_KIT_TODAY", "2026-12-31")
    config = write_config(tmp_path, max_data_age_days=45)
    out = tmp_path / "out"
    done = cli(config, "--output-dir", out, "--database", sample_db, "--fail-if-stale")
    assert done.exit_code == 2, done.output
    assert "stale data: the extraction date 2026-10-31 is 61 days before the run's date " \
           "2026-12-31" in done.output  # fmt: skip
    assert "max_data_age_days: 45" in done.output and run_folders(out) == []


# --------------------------------------------------------------------------- pieces


def test_display_path_is_never_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "project" / "configs").mkdir(parents=True)
    assert display_path(tmp_path / "project" / "data.duckdb", tmp_path / "x") == (
        "project/data.duckdb"
    )
    base = tmp_path / "project" / "configs"
    monkeypatch.chdir(base)
    assert display_path(tmp_path / "project" / "data.duckdb", base) == "../data.duckdb"
    assert not display_path("/etc/hosts", base).startswith("/")


def test_run_status_reads_stale_runs():
    now = dt.datetime.now().astimezone()
    fresh = {"status": "running", "heartbeat_at": now.isoformat()}
    assert run_status(fresh, now) == "running"
    old = {"status": "running", "heartbeat_at": (now - dt.timedelta(seconds=61)).isoformat()}
    assert run_status(old, now) == "stale"
    assert run_status({**old, "status": "ok"}, now) == "ok"
    ended = subprocess.Popen(["true"])  # a runner process that has ended
    ended.wait()
    gone = dict(
        fresh, runner={"pid": ended.pid, "process_start": 1, "boot_id": processes.boot_id()}
    )
    assert run_status(gone, now) == "stale"
    me = dict(fresh, runner=processes.runner_identity())
    assert run_status(me, now) == "running"


def test_recovery_stops_recorded_kernels_and_nothing_else(tmp_path):
    kernel = subprocess.Popen(
        [sys.executable, "-m", "ipykernel_launcher", "-f", str(tmp_path / "kernel.json")],
        start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    sleeper = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        starts = {p.pid: process_start(p.pid) for p in (kernel, sleeper)}
        assert is_kernel(kernel.pid, starts[kernel.pid]) and not is_kernel(sleeper.pid)
        assert not is_kernel(kernel.pid, starts[kernel.pid] + 1)  # a reused pid
        beat = dt.datetime.now().astimezone() - dt.timedelta(minutes=5)
        folder = fake_run(tmp_path / "out", "20261102T060000-dead00", "running", beat)
        manifest = read_manifest(folder)
        manifest["kernel_pids"] = [kernel.pid, sleeper.pid]
        manifest["kernel_process_starts"] = {str(p): s for p, s in starts.items()}
        (folder / "manifest.json").write_text(json.dumps(manifest))
        messages = recover_stale_runs(tmp_path / "out")
        assert len(messages) == 1 and "stale run monthly/20261102T060000-dead00" in messages[0]
        assert kernel.wait(timeout=10) is not None
        assert sleeper.poll() is None  # not a kernel: left alone
        manifest = read_manifest(folder)
        assert manifest["status"] == "failed" and manifest["stopped_kernel_pids"] == [kernel.pid]
        assert recover_stale_runs(tmp_path / "out") == []  # once
    finally:
        for p in (kernel, sleeper):
            p.kill()
            p.wait()


def test_prune_keeps_newest_successful_latest_and_young_failures(tmp_path):
    now = dt.datetime(2026, 11, 2, 6, tzinfo=dt.UTC)
    out = tmp_path / "out"
    runs = {"20261001T060000-000001": "ok", "20261002T060000-000002": "ok",
            "20261003T060000-000003": "ok", "20261004T060000-000004": "ok",
            "20260901T060000-000005": "failed", "20261020T060000-000006": "failed",
            "20261025T060000-000007": "running"}  # fmt: skip
    for run_id, status in runs.items():
        fake_run(out, run_id, status, dt.datetime.strptime(run_id[:15], "%Y%m%dT%H%M%S").replace(
            tzinfo=dt.UTC))  # fmt: skip
    (out / "monthly" / "latest").symlink_to("20261001T060000-000001")
    removed = prune_runs(out / "monthly", 2, 30, {"20261001T060000-000001"}, now)
    # the 2 newest successful runs stay, and latest; failed runs older than 30 days go
    assert removed == ["20260901T060000-000005", "20261002T060000-000002"]
    left = sorted(p.name for p in (out / "monthly").iterdir())
    assert left == ["20261001T060000-000001", "20261003T060000-000003",
                    "20261004T060000-000004", "20261020T060000-000006",
                    "20261025T060000-000007", "latest"]  # fmt: skip
    assert prune_runs(out / "monthly", None, 30, set(), now) == []


def test_notify_command_gets_folder_and_status(tmp_path):
    target = tmp_path / "notified.txt"
    command = f'printf "%s|%s|%s|%s" "$1" "$2" "$COLLECT_KIT_RUN_FOLDER" ' \
              f'"$COLLECT_KIT_RUN_STATUS" > {target}'  # fmt: skip
    assert run_notify_command(command, tmp_path / "run", "ok") is None
    assert target.read_text() == f"{tmp_path / 'run'}|ok|{tmp_path / 'run'}|ok"
    problem = run_notify_command("echo no webhook >&2; exit 3", None, "failed", "why")
    assert "exited with status 3" in problem and "no webhook" in problem


def test_snapshot_cache_key_follows_the_content(tmp_path, sample_db, monkeypatch):
    """A corrected amount, two amounts swapped (same sum), a payment moved by a day: each
    is a new cache entry; the same data again reuses its entry. The key from the digests
    the validation sums is the same as from digests of their own."""
    edits = {
        "one amount": "update receivables set amount = amount + 1 where receivable_id = "
        "(select min(receivable_id) from receivables)",
        "two amounts swapped": "update receivables set amount = case receivable_id "
        "when (select min(receivable_id) from receivables) then (select amount from "
        "receivables order by receivable_id limit 1 offset 1) else (select amount from "
        "receivables order by receivable_id limit 1) end where receivable_id in (select "
        "receivable_id from receivables order by receivable_id limit 2)",
        "a payment a day later": "update payments set paid_at = paid_at + 1 where payment_id = "
        "(select min(payment_id) from payments)",
    }
    monkeypatch.setenv("COLLECT_KIT_CACHE", str(tmp_path / "cache"))
    keys = []
    for name, sql in [("unchanged", None), *edits.items(), ("unchanged again", None)]:
        db = tmp_path / f"{len(keys)}.duckdb"
        shutil.copy(sample_db, db)
        if sql:
            with duckdb.connect(str(db)) as con:
                total = "select sum(amount), count(distinct amount) from receivables"
                before = con.execute(total).fetchone()
                con.execute(sql)
                assert (con.execute(total).fetchone() == before) == (name != "one amount")
        portfolio = sources.load(CONFIGS / "sources" / "sample.yaml", database=db)
        keys.append(fingerprint(portfolio.tables))
        # the digests the validation summed with its checks give the same key, and only
        # the absent tables (empty) are scanned for it
        scanned, real = [], snapshot.table_digest
        with monkeypatch.context() as m:
            m.setattr(
                snapshot, "table_digest", lambda t, seen=scanned, f=real: seen.append(t) or f(t)
            )
            assert fingerprint(portfolio.tables, digests=portfolio.digests) == keys[-1]
        assert set(portfolio.digests) == set(portfolio.tables)
        assert len(scanned) == len(set(snapshot.SNAPSHOT_TABLES) - set(portfolio.tables)) > 0
        cached_snapshots(portfolio, keys[-1], ["2026-10-31"], logging.getLogger())
        portfolio.close()
    assert len(set(keys[:4])) == 4 and keys[4] == keys[0]
    assert len(list((tmp_path / "cache" / "snapshots").glob("*-2026-10-31.parquet"))) == 4
    assert len(list((tmp_path / "cache" / "snapshots").glob("*-book.parquet"))) == 4


# --------------------------------------------------------------------------- runs


def test_a_failing_notebook_is_named_with_cell_and_message(
    tmp_path, sample_db, stand_ins, monkeypatch
):
    stand_ins(portfolio_report="fail")
    monkeypatch.setattr(supervision, "HEARTBEAT_SECONDS", 0.2)
    writes = []
    real = runs.write_manifest
    monkeypatch.setattr(
        runs,
        "write_manifest",
        lambda path, data: (
            writes.append(json.loads(json.dumps(data, default=str))),
            real(path, data),
        ),  # fmt: skip
    )
    out = tmp_path / "out"
    before = previous_latest(out)
    notified = tmp_path / "notified.txt"
    config = write_config(tmp_path, notebooks=["portfolio_report", "segmentation"])
    done = cli(config, "--output-dir", out, "--database", sample_db, "--quiet",
               "--notify-command", f'echo "$1 $2" > {notified}')  # fmt: skip
    assert done.exit_code == 1, done.output
    assert "notebook portfolio_report failed in cell" in done.output
    assert "ValueError: boom: the tiny notebook fails on purpose" in done.output
    (failed,) = [f for f in run_folders(out) if f != before]
    log = (failed / "run.log").read_text()
    assert "notebook portfolio_report failed in cell" in log and "ValueError: boom" in log
    manifest = read_manifest(failed)
    assert manifest["status"] == "failed" and manifest["kernel_pids"]
    nb = manifest["notebooks"][0]
    assert nb["status"] == "failed" and isinstance(nb["failed_cell"], int)
    assert "boom" in nb["error"] and manifest["notebooks"][1]["status"] == "pending"
    executed = json.loads((failed / "portfolio_report.ipynb").read_text())
    assert any(o.get("output_type") == "error" for c in executed["cells"]
               for o in c.get("outputs", []))  # fmt: skip
    assert not list(failed.glob("*.html")) and not list(failed.glob("*.pdf"))
    assert no_partial_files(out) and (out / "monthly" / "latest").resolve() == before.resolve()
    assert notified.read_text().split() == [str(failed), "failed"]
    # the manifest existed from the start and its heartbeat beat while the cell slept
    assert writes[0]["status"] == "running" and writes[-1]["status"] == "failed"
    beats = {w["heartbeat_at"] for w in writes if w["status"] == "running" and w["kernel_pids"]}
    assert len([w for w in writes if w["status"] == "running"]) >= 5 and beats
    assert not any(is_kernel(pid) for pid in manifest["kernel_pids"])


def test_latest_is_the_scheduled_report_and_runs_are_pruned(
    tmp_path, sample_db, stand_ins, monkeypatch
):
    monkeypatch.setenv("COLLECT_KIT_TODAY", "2026-12-31")
    out = tmp_path / "out"
    now = dt.datetime.now().astimezone()
    old_failure = fake_run(out, "20200101T060000-0f0f0f", "failed", now - dt.timedelta(days=40))
    young_failure = fake_run(out, "20200102T060000-0e0e0e", "failed", now - dt.timedelta(days=2))
    config = write_config(tmp_path, keep_runs=1, max_data_age_days=45)
    common = ("--output-dir", out, "--database", sample_db)

    adhoc = cli(config, *common, "-p", "language=es", "-p", "lgd=0.4")
    assert adhoc.exit_code == 0, adhoc.output
    assert "latest unchanged: ad-hoc run (overrides: language=es, lgd=0.4); --publish to " \
           "publish it" in adhoc.output  # fmt: skip
    assert "warning: stale data: the extraction date 2026-10-31 is 61 days" in adhoc.output
    assert not (out / "monthly" / "latest").exists()
    (first,) = [f for f in run_folders(out) if f.name.startswith("2026")]
    manifest = read_manifest(first)
    assert manifest["overrides"] == {"language": "es", "lgd": 0.4}
    assert manifest["published"] is False and "stale data" in manifest["warnings"][0]
    assert "language es" in (first / "segmentation.html").read_text()
    # pruning follows every successful run: the old failure goes, the young one stays
    assert not old_failure.exists() and young_failure.exists()

    # --as-of equal to the config's (latest -> 2026-10-31) is the scheduled report
    scheduled = cli(config, *common, "--as-of", "2026-10")
    assert scheduled.exit_code == 0, scheduled.output
    second = (out / "monthly" / "latest").resolve()
    assert f"latest -> {second.name}" in scheduled.output
    assert read_manifest(second)["overrides"] == {} and read_manifest(second)["published"]
    # keep_runs 1: the ad-hoc run goes
    assert not first.exists() and young_failure.exists()
    assert f"Pruned 1 old run(s): {first.name}" in scheduled.output

    published = cli(config, *common, "--as-of", "2026-09-30", "--publish")
    assert published.exit_code == 0, published.output
    third = (out / "monthly" / "latest").resolve()
    assert third != second and f"latest -> {third.name}" in published.output
    manifest = read_manifest(third)
    assert manifest["overrides"] == {"as_of": "2026-09-30"} and manifest["published"]
    assert not second.exists() and no_partial_files(out)
    assert "as of 2026-09-30" in (third / "segmentation.html").read_text()


def full_disk_for(ending: str):
    """``files.write_atomic`` on a disk that fills up while writing a file whose name
    ends with ``ending`` (half of it written, then ENOSPC)."""
    real = files.write_atomic

    def write(path, content, what="file"):
        if str(path).endswith(ending):

            def half_written(tmp):
                Path(tmp).write_text("<html><body>half a report")
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

            return real(path, half_written, what)
        return real(path, content, what)

    return write


def test_a_full_disk_leaves_no_finished_looking_file(tmp_path, sample_db, stand_ins, monkeypatch):
    monkeypatch.setattr(files, "write_atomic", full_disk_for(".html"))
    out = tmp_path / "out"
    before = previous_latest(out)
    done = cli(write_config(tmp_path), "--output-dir", out, "--database", sample_db)
    assert done.exit_code == 2, done.output
    assert "report HTML" in done.output and "the disk is full" in done.output
    (failed,) = [f for f in run_folders(out) if f != before]
    assert read_manifest(failed)["status"] == "failed"
    assert not list(failed.glob("*.html")) and not list(failed.glob("*.pdf"))
    assert no_partial_files(out) and (out / "monthly" / "latest").resolve() == before.resolve()


def test_validation_examples_stay_out_of_logs(tmp_path, sample_db, cache):
    broken = tmp_path / "broken.duckdb"
    shutil.copy(sample_db, broken)
    with duckdb.connect(str(broken)) as con:
        (rid,) = con.execute("select min(receivable_id) from receivables").fetchone()
        con.execute("update receivables set amount = 'NaN'::double where receivable_id = ?", [rid])
    out = tmp_path / "out"
    done = cli(write_config(tmp_path), "--output-dir", out, "--database", broken)
    assert done.exit_code == 2, done.output
    assert "not_finite: 1 row(s)" in done.output and rid not in done.output
    (failed,) = run_folders(out)
    blob = "".join(p.read_text() for p in failed.iterdir())
    assert "not_finite" in blob and rid not in blob


# --------------------------------------------------------------------------- real kills


def start_run(config: Path, out: Path, sample_db: Path, cache: Path) -> subprocess.Popen:
    env = dict(os.environ, COLLECT_KIT_CACHE=str(cache))
    return subprocess.Popen(
        [str(COLLECT_KIT), "report", "run", str(config), "--output-dir", str(out),
         "--database", str(sample_db), "--quiet"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for_kernel(out: Path, proc: subprocess.Popen, timeout: float = 90) -> tuple[Path, dict]:
    """The run folder and manifest once the run has started a kernel."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for folder in run_folders(out):
            manifest = read_manifest(folder)
            if manifest and manifest.get("status") == "running" and manifest["kernel_pids"]:
                return folder, manifest
        time.sleep(0.1)
    raise AssertionError("no kernel started")


def kernels_gone(pids: list[int], within: float) -> bool:
    deadline = time.monotonic() + within
    while any(is_kernel(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@pytest.fixture
def real_run_config(tmp_path) -> Path:
    """The longest single notebook, so the run is still going when it is killed."""
    return write_config(tmp_path, notebooks=["portfolio_report"])


def test_sigterm_stops_the_kernels_and_marks_the_run_failed(
    tmp_path, sample_db, cache, real_run_config
):
    out = tmp_path / "out"
    before = previous_latest(out)
    proc = start_run(real_run_config, out, sample_db, cache)
    folder, manifest = wait_for_kernel(out, proc)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "interrupted by SIGTERM" in stderr
    assert kernels_gone(manifest["kernel_pids"], within=10)
    manifest = read_manifest(folder)
    assert manifest["status"] == "failed" and "SIGTERM" in manifest["error"]
    assert (out / "monthly" / "latest").resolve() == before.resolve()
    assert not list(folder.glob("*.html")) and no_partial_files(out)


def test_a_signal_that_a_query_turns_into_its_own_error_still_interrupts_the_run(
    tmp_path, sample_db, stand_ins, monkeypatch
):
    """DuckDB checks for signals while a query runs and raises its own error ("Query
    interrupted") instead of the handler's: the run still reads as interrupted by the
    signal (exit 128 + signal), not as a crash."""

    def interrupted(ctx, state, *args):
        state.signalled = signal.SIGTERM
        raise RuntimeError("Query interrupted")

    monkeypatch.setattr(runner, "_run_body", interrupted)
    out = tmp_path / "out"
    done = cli(write_config(tmp_path), "--output-dir", out, "--database", sample_db)
    assert done.exit_code == 128 + signal.SIGTERM, done.output
    assert "interrupted by SIGTERM" in done.output and "Traceback" not in done.output
    (folder,) = run_folders(out)
    manifest = read_manifest(folder)
    assert manifest["status"] == "failed" and "SIGTERM" in manifest["error"]


#: the console script with an experiment's readout replaced by a query of minutes, which
#: writes a file when it starts (argv: that file, the stand-in notebook, the CLI's args)
SLOW_READOUT_RUN = """
import sys
from pathlib import Path

from collect_kit.cli import app
from collect_kit.experiments import stored
from collect_kit.reports import runner

started, notebook, *args = sys.argv[1:]


def a_query_of_minutes(path, as_of, portfolio, target):
    Path(started).touch()
    portfolio.connection.con.execute(
        "select count(*) from range(100000000000) t(a) where a % 7 = 3"
    ).fetchall()


stored.store = a_query_of_minutes
runner.notebook_path = lambda name: Path(notebook)
sys.argv = ["collect-kit", "report", "run", *args]
app()
"""


def test_a_signal_during_a_step_that_logs_its_errors_still_stops_the_run(
    tmp_path, sample_db, cache, tiny
):
    """SIGTERM arrives while an experiment's readout queries the engine: a step that logs
    a failed readout and goes on. The engine turns the handler's exception into its own
    error ("Query interrupted"); the run does not take it for a failed readout, stops
    there and runs no notebook."""
    script, started, out = tmp_path / "run.py", tmp_path / "started", tmp_path / "out"
    script.write_text(SLOW_READOUT_RUN)
    config = write_config(tmp_path, notebooks=["experiment_readout"])
    proc = subprocess.Popen(
        [sys.executable, str(script), str(started), str(tiny["ok"]), str(config),
         "--output-dir", str(out), "--database", str(sample_db), "--quiet"],
        env=dict(os.environ, COLLECT_KIT_CACHE=str(cache)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while not started.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), proc.communicate(timeout=30)
        time.sleep(0.3)  # in the query
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "interrupted by SIGTERM" in stderr and "Traceback" not in stderr
    (folder,) = run_folders(out)
    manifest = read_manifest(folder)
    assert manifest["status"] == "failed" and "SIGTERM" in manifest["error"]
    assert [n["status"] for n in manifest["notebooks"]] == ["pending"]
    assert "readout of" not in (folder / "run.log").read_text()


def test_after_sigkill_the_next_run_stops_its_kernels_and_marks_it_failed(
    tmp_path, sample_db, cache, real_run_config, stand_ins
):
    out = tmp_path / "out"
    before = previous_latest(out)
    proc = start_run(real_run_config, out, sample_db, cache)
    folder, manifest = wait_for_kernel(out, proc)
    proc.kill()
    proc.communicate(timeout=10)
    assert read_manifest(folder)["status"] == "running"  # as the killed runner left it
    # the next run, of another report in the same output folder
    other = write_config(tmp_path, name="weekly")
    done = cli(other, "--output-dir", out, "--database", sample_db)
    assert done.exit_code == 0, done.output
    assert f"warning: stale run monthly/{folder.name}" in done.output
    assert kernels_gone(manifest["kernel_pids"], within=1)
    manifest = read_manifest(folder)
    assert manifest["status"] == "failed" and "stale" in manifest["error"]
    assert (out / "monthly" / "latest").resolve() == before.resolve()
    assert (out / "weekly" / "latest").is_symlink()


def test_an_export_runs_while_the_next_notebook_executes(tmp_path, sample_db, stand_ins,
                                                         monkeypatch):  # fmt: skip
    """The first notebook's export starts before the second notebook has finished
    executing; when that export fails (a full disk), the run fails saying so, the
    notebook stays marked as exporting and nothing finished-looking is left."""
    events = []
    real_execute, real_export = runner.execute_notebook, runner.export_notebook

    def execute(source, out, *args):
        events.append(("execute start", out.stem, time.monotonic()))
        failure = real_execute(source, out, *args)
        events.append(("execute end", out.stem, time.monotonic()))
        return failure

    def export(executed, *args):
        events.append(("export start", executed.stem, time.monotonic()))
        return real_export(executed, *args)

    monkeypatch.setattr(runner, "execute_notebook", execute)
    monkeypatch.setattr(runner, "export_notebook", export)
    config = write_config(tmp_path, notebooks=["portfolio_report", "segmentation"])
    out = tmp_path / "out"
    done = cli(config, "--output-dir", out, "--database", sample_db)
    assert done.exit_code == 0, done.output
    at = {(kind, name): when for kind, name, when in events}
    assert at["export start", "portfolio_report"] < at["execute end", "segmentation"]
    folder = (out / "monthly" / "latest").resolve()
    assert all((folder / f"{n}.{x}").exists() for n in ("portfolio_report", "segmentation")
               for x in ("html", "pdf"))  # fmt: skip
    assert [n["status"] for n in read_manifest(folder)["notebooks"]] == ["ok", "ok"]

    monkeypatch.setattr(files, "write_atomic", full_disk_for("portfolio_report.html"))
    done = cli(config, "--output-dir", out, "--database", sample_db)
    assert done.exit_code == 2, done.output
    assert "the disk is full" in done.output
    (failed,) = [f for f in run_folders(out) if f != folder]
    manifest = read_manifest(failed)
    assert manifest["status"] == "failed"
    first, second = manifest["notebooks"]
    assert first["status"] == "exporting" and "disk is full" in manifest["error"]
    assert (failed / "segmentation.ipynb").exists()  # executed meanwhile, not exported
    assert not list(failed.glob("*.html")) and not list(failed.glob("*.pdf"))
    assert no_partial_files(out) and (out / "monthly" / "latest").resolve() == folder
