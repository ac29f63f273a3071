"""The demo command end to end, in a subprocess, from a fresh temporary directory."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from collect_kit import schema, synth
from collect_kit.demo import DEFAULT_CUSTOMERS, DEFAULT_SEED
from collect_kit.periods import latest_month_end
from collect_kit.snapshot import snapshot

EXE = Path(sys.executable).parent / "collect-kit"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    cwd = tmp_path_factory.mktemp("fresh")
    done = subprocess.run([str(EXE), "demo"], cwd=cwd, capture_output=True, text=True, timeout=300)
    return cwd, done


def test_demo_succeeds_and_builds_the_database(demo_run):
    cwd, done = demo_run
    assert done.returncode == 0, done.stderr
    db = cwd / "data" / "sample.duckdb"
    assert db.exists()
    assert not [
        p.name for p in (cwd / "data").iterdir() if p.name != "sample.duckdb"
    ]  # no temp leftovers
    expected = synth.generate(DEFAULT_CUSTOMERS, seed=DEFAULT_SEED)
    con = duckdb.connect(str(db), read_only=True)
    for name in expected.tables:
        n = con.execute(f'select count(*) from "{name}"').fetchone()[0]
        assert n == expected.tables[name].num_rows, name
    assert con.execute("select count(*) from customers").fetchone()[0] == DEFAULT_CUSTOMERS
    con.close()


def test_printed_overdue_balance_equals_the_snapshot_total(demo_run):
    cwd, done = demo_run
    printed = re.search(r"Overdue balance: ([\d,]+) CLP", done.stdout)
    assert printed, done.stdout
    con = duckdb.connect(str(cwd / "data" / "sample.duckdb"), read_only=True)
    names = [n for n in schema.TABLES if n not in synth.NOT_GENERATED]
    tables = {name: con.execute(f'select * from "{name}"').df() for name in names}
    con.close()
    snap = snapshot(tables, latest_month_end("2026-10-31"))
    assert int(printed.group(1).replace(",", "")) == round(snap.overdue_balance.sum())
    assert "as of 2026-10-31" in done.stdout
    for label in ("current", "1-30", "361+"):
        assert re.search(rf"│ {re.escape(label)}\s+│", done.stdout), label


def test_demo_reports_user_errors_with_status_2(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("a file where the data folder should be")
    done = subprocess.run(
        [str(EXE), "demo", "--customers", "50"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 2 and "a file is in the way" in done.stderr
    assert "Traceback" not in done.stderr
    bad = subprocess.run(
        [str(EXE), "demo", "--customers", "3"], cwd=tmp_path, capture_output=True, text=True
    )
    assert bad.returncode == 2


def test_latest_month_end():
    assert str(latest_month_end("2026-10-31").date()) == "2026-10-31"
    assert str(latest_month_end("2026-11-25").date()) == "2026-10-31"
