"""The catalogue of bad input: every kind a careless or hostile user gives the CLI.

Each case copies a small CSV portfolio project (data, sources YAML, segmentation,
experiment and report configs), breaks one thing, runs one `collect-kit` command in
process and asserts: exit status 2, a message naming the file / field / column /
parameter and what was expected, no traceback, and no file written anywhere in the
project (no export, no run folder, no cache entry). Faults that need a real process or a
real mount (a locked database, a read-only or full disk) are at the end of this module.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from collect_kit import synth
from collect_kit.cli import app

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "collect_kit" / "configs"
TABLES = (
    "customers",
    "receivables",
    "payments",
    "adjustments",
    "contacts",
    "scores",
    "assignments",
)


# ------------------------------------------------------------------------ the project


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    """A 400-customer portfolio as CSV files with every config a user writes."""
    root = tmp_path_factory.mktemp("template")
    sample = synth.generate(400, seed=4)
    (root / "data").mkdir()
    tables = {}
    for name in TABLES:
        sample.frame(name).to_csv(root / "data" / f"{name}.csv", index=False)
        tables[name] = {"path": f"data/{name}.csv"}
    write(root / "sources.yaml", {"portfolio": "Test book", "currency": "CLP",
                                  "extraction_date": "2026-10-31", "tables": tables})  # fmt: skip
    shutil.copy(CONFIGS / "segments" / "consumer.yaml", root / "segments.yaml")
    experiment = yaml.safe_load((CONFIGS / "experiments" / "sms_call_pilot.yaml").read_text())
    experiment.update(sources="sources.yaml", segmentation="segments.yaml")
    write(root / "experiment.yaml", experiment)
    write(root / "report.yaml", {
        "name": "monthly", "title": "Monthly report", "sources": "sources.yaml",
        "segmentation": "segments.yaml", "experiments": ["experiment.yaml"],
        "notebooks": ["segmentation", "portfolio_report"],
    })  # fmt: skip
    return root


def write(path: Path, data) -> None:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


def edit(path: Path, change: Callable[[dict], None]) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    write(path, data)


def edit_csv(project: Path, table: str, change: Callable[[pd.DataFrame], None]) -> None:
    path = project / "data" / f"{table}.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    change(frame)
    frame.to_csv(path, index=False)


def files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@dataclass
class Case:
    id: str
    #: breaks the project (a copy) and returns the command line
    setup: Callable[[Path], list[str]]
    #: every one of these must appear in the message (file, field, parameter, expectation)
    expect: tuple[str, ...]


SEG = ["segment", "segments.yaml", "--sources", "sources.yaml"]
VALIDATE = ["validate", "--sources", "sources.yaml"]
REPORT = ["report", "run", "report.yaml"]


def data_case(id, table, change, *expect) -> Case:
    def setup(p: Path) -> list[str]:
        edit_csv(p, table, change)
        return VALIDATE

    return Case(id, setup, expect)


def set_first(column: str, value: str) -> Callable[[pd.DataFrame], None]:
    def change(frame: pd.DataFrame) -> None:
        frame.loc[0, column] = value

    return change


def yaml_case(id, file, change, command, *expect) -> Case:
    def setup(p: Path) -> list[str]:
        edit(p / file, change)
        return list(command)

    return Case(id, setup, expect)


def text_case(id, file, text, command, *expect) -> Case:
    def setup(p: Path) -> list[str]:
        (p / file).write_text(textwrap.dedent(text), encoding="utf-8")
        return list(command)

    return Case(id, setup, expect)


def args_case(id, command, *expect) -> Case:
    return Case(id, lambda p: list(command), expect)


def rule(when) -> Callable[[dict], None]:
    def change(cfg: dict) -> None:
        cfg["segments"][0]["when"] = when

    return change


def nested(depth: int) -> dict:
    node: dict = {"column": "balance", "op": ">", "value": 0}
    for _ in range(depth):
        node = {"not": node}
    return node


BOMB = """\
name: bomb
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
segments: [*i]
"""


def latin1_csv(p: Path) -> list[str]:
    path = p / "data" / "customers.csv"
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    frame.loc[0, "region"] = "Biobío Ñuble"
    frame.to_csv(path, index=False, encoding="latin-1")
    return VALIDATE


def folder_as_csv(p: Path) -> list[str]:
    (p / "data" / "scores.csv").unlink()
    (p / "data" / "scores.csv").mkdir()
    return VALIDATE


def corrupt_database(p: Path) -> list[str]:
    (p / "broken.duckdb").write_bytes(b"this is not a database" * 200)
    return [*VALIDATE, "--database", "broken.duckdb"]


def csv_as_database(p: Path) -> list[str]:
    return [*VALIDATE, "--database", "data/customers.csv"]


def folder_as_database(p: Path) -> list[str]:
    (p / "db.duckdb").mkdir()
    return [*VALIDATE, "--database", "db.duckdb"]


def many_segments(p: Path) -> list[str]:
    segments = [
        {"name": f"S{i}", "when": {"column": "balance", "op": ">", "value": i}} for i in range(501)
    ]
    write(p / "segments.yaml", {"name": "big", "segments": segments})
    return SEG


def duplicated_key(p: Path) -> list[str]:
    def change(frame: pd.DataFrame) -> None:
        frame.loc[1, "payment_id"] = frame.loc[0, "payment_id"]

    edit_csv(p, "payments", change)
    return VALIDATE


def missing_column(p: Path) -> list[str]:
    edit_csv(p, "receivables", lambda f: f.pop("due_at"))
    return VALIDATE


def output_dir_is_a_file(p: Path) -> list[str]:
    (p / "out").write_text("a file, not a folder")
    return [*REPORT, "--output-dir", "out"]


CASES = [
    # ---- data (validate)
    data_case("amount_nan", "receivables", set_first("amount", "NaN"),
              "receivables.csv", "receivables.amount", "not_finite", "finite number"),
    data_case("amount_inf", "payments", set_first("amount", "inf"),
              "payments.csv", "payments.amount", "not_finite"),
    data_case("amount_overflow", "payments", set_first("amount", "1e400"),
              "payments.csv", "payments.amount", "not_finite"),
    data_case("amount_too_large", "receivables", set_first("amount", "5e13"),
              "receivables.amount", "amount_too_large", "max_amount"),
    data_case("amount_zero", "payments", set_first("amount", "0"),
              "payments.amount", "zero_amount"),
    data_case("amount_negative_statement", "receivables", set_first("amount", "-120.5"),
              "receivables.amount", "negative_amount", "credit balance"),
    data_case("amount_negative_payment", "payments", set_first("amount", "-5"),
              "payments.amount", "negative_amount", "reversal"),
    data_case("cost_negative", "contacts", set_first("cost", "-1"),
              "contacts.cost", "negative_amount"),
    data_case("score_nan", "scores", set_first("score", "nan"), "scores.score", "not_finite"),
    data_case("date_day_first", "receivables", set_first("issued_at", "01/10/2026"),
              "receivables.issued_at", "unparsable_date", "YYYY-MM-DD"),
    data_case("date_not_real", "payments", set_first("paid_at", "2026-02-30"),
              "payments.paid_at", "unparsable_date"),
    data_case("amount_text", "payments", set_first("amount", "1.234,50"),
              "payments.amount", "not_a_number"),
    data_case("unknown_channel", "contacts", set_first("channel", "pigeon"),
              "contacts.channel", "unknown_code", "values:"),
    data_case("event_after_extraction", "payments", set_first("paid_at", "2027-01-05"),
              "payments.paid_at", "after_extraction_date", "2026-10-31"),
    data_case("mixed_currency", "receivables", set_first("currency", "USD"),
              "receivables.currency", "mixed_currencies", "CLP"),
    data_case("unknown_customer", "payments", set_first("customer_id", "NOBODY"),
              "payments.customer_id", "unknown_reference"),
    data_case("bad_boolean", "customers", set_first("open_dispute", "maybe"),
              "customers.open_dispute", "not_a_boolean"),
    Case("duplicated_key", duplicated_key, ("payments.csv", "duplicated_key")),
    Case("missing_column", missing_column, ("receivables.csv", "due_at", "missing_column")),
    Case("latin1_csv", latin1_csv, ("customers", "customers.csv", "encoding: latin-1")),
    Case("folder_named_csv", folder_as_csv, ("scores.csv", "missing_file", "folder")),
    Case("corrupt_database", corrupt_database, ("broken.duckdb", "not a valid DuckDB")),
    Case("csv_as_database", csv_as_database, ("customers.csv", "cannot be read")),
    Case("folder_as_database", folder_as_database, ("db.duckdb", "is a folder")),
    # ---- sources YAML
    yaml_case("currency_lowercase", "sources.yaml", lambda c: c.update(currency="clp"),
              VALIDATE, "sources.yaml", "currency", "ISO 4217"),
    yaml_case("unknown_table", "sources.yaml", lambda c: c["tables"].update(clientes={"path": "x.csv"}),
              VALIDATE, "sources.yaml", "clientes", "not a canonical table"),
    yaml_case("misspelt_field", "sources.yaml", lambda c: c.update(extraction_dat="2026-10-31"),
              VALIDATE, "sources.yaml", "extraction_dat", "not a known field"),
    yaml_case("sources_version_2", "sources.yaml", lambda c: c.update(version=2),
              VALIDATE, "sources.yaml", "version", "got 2"),
    yaml_case("max_amount_negative", "sources.yaml", lambda c: c.update(max_amount=-1),
              VALIDATE, "sources.yaml", "max_amount", "positive"),
    yaml_case("unknown_encoding", "sources.yaml",
              lambda c: c["tables"]["customers"].update(encoding="ebcdic"),
              VALIDATE, "sources.yaml", "encoding", "latin-1"),
    yaml_case("xlsx_source", "sources.yaml",
              lambda c: c["tables"]["customers"].update(path="data/customers.xlsx"),
              VALIDATE, "sources.yaml", "customers.xlsx"),
    yaml_case("extraction_not_a_date", "sources.yaml", lambda c: c.update(extraction_date="soon"),
              VALIDATE, "sources.yaml", "extraction_date"),
    args_case("sources_missing", ["validate", "--sources", "nope.yaml"], "nope.yaml", "does not exist"),
    args_case("sources_is_folder", ["validate", "--sources", "data"], "data", "is a folder"),
    text_case("sources_not_yaml", "sources.yaml", "portfolio: [unclosed\n", VALIDATE,
              "sources.yaml", "not valid YAML", "line"),
    text_case("sources_python_tag", "sources.yaml",
              "portfolio: !!python/object/apply:os.system ['echo hacked']\ncurrency: CLP\n",
              VALIDATE, "sources.yaml", "not valid YAML"),
    text_case("sources_alias_bomb", "sources.yaml", BOMB, VALIDATE, "sources.yaml", "alias"),
    args_case("data_option_removed", ["validate", "--data", "x.duckdb"], "--data was removed", "--sources"),
    args_case("validate_positional", ["validate", "sources.yaml"], "--sources sources.yaml"),
    # ---- segmentation
    args_case("segmentation_missing", ["segment", "nope.yaml", "--sources", "sources.yaml"],
              "nope.yaml", "does not exist"),
    yaml_case("op_typo", "segments.yaml", rule({"column": "balance", "op": "betwen", "value": [1, 2]}),
              SEG, "segments.yaml", "New customers", "op", "did you mean 'between'"),
    yaml_case("empty_in_list", "segments.yaml", rule({"column": "dpd_bucket", "op": "in", "value": []}),
              SEG, "segments.yaml", "New customers", "non-empty list"),
    yaml_case("unknown_column", "segments.yaml", rule({"column": "balanse", "op": ">", "value": 1}),
              SEG, "segments.yaml", "balanse"),
    yaml_case("text_for_number", "segments.yaml", rule({"column": "balance", "op": ">", "value": "lots"}),
              SEG, "segments.yaml", "balance", "text"),
    yaml_case("value_is_mapping", "segments.yaml", rule({"column": "balance", "op": ">", "value": {"a": 1}}),
              SEG, "segments.yaml", "value"),
    yaml_case("nested_200_deep", "segments.yaml", rule(nested(200)), SEG, "segments.yaml", "32"),
    yaml_case("nested_40_deep", "segments.yaml", rule(nested(40)), SEG, "segments.yaml", "32 levels"),
    Case("501_segments", many_segments, ("segments.yaml", "at most 500 segments")),
    yaml_case("segment_named_default", "segments.yaml", lambda c: c["segments"][0].update(name="Default"),
              SEG, "segments.yaml", "implicit"),
    yaml_case("duplicate_names", "segments.yaml",
              lambda c: c["segments"][1].update(name=c["segments"][0]["name"]),
              SEG, "segments.yaml", "used twice"),
    yaml_case("segmentation_version_9", "segments.yaml", lambda c: c.update(version=9),
              SEG, "segments.yaml", "version"),
    text_case("segmentation_alias_bomb", "segments.yaml", BOMB, SEG, "segments.yaml", "alias"),
    args_case("as_of_nonsense", [*SEG, "--as-of", "nonsense"], "--as-of", "YYYY-MM-DD", "nonsense"),
    args_case("as_of_mid_month", [*SEG, "--as-of", "2026-10-15"], "--as-of", "2026-10-31", "month end"),
    args_case("as_of_day_first", [*SEG, "--as-of", "01/10/2026"], "--as-of", "never guessed"),
    args_case("as_of_future", [*SEG, "--as-of", "2030-12-31"], "--as-of", "extraction date 2026-10-31"),
    args_case("as_of_before_data", [*SEG, "--as-of", "1990-01-31"], "--as-of", "first month"),
    args_case("as_of_not_a_day", [*SEG, "--as-of", "2026-02-30"], "--as-of", "not a real"),
    args_case("export_xlsx", [*SEG, "--export", "out.xlsx"], "--export", "out.xlsx", ".csv or .parquet"),
    args_case("export_missing_folder", [*SEG, "--export", "nowhere/out.csv"], "--export", "nowhere"),
    args_case("sql_dialect", ["sql", "segments.yaml", "--dialect", "oracle"], "oracle", "duckdb"),
    # ---- experiment configs
    yaml_case("alpha_above_one", "experiment.yaml", lambda c: c.update(alpha=1.5),
              ["experiment", "design", "experiment.yaml"], "experiment.yaml", "alpha", "1.5"),
    yaml_case("power_zero", "experiment.yaml", lambda c: c.update(power=0),
              ["experiment", "design", "experiment.yaml"], "experiment.yaml", "power", "got 0"),
    yaml_case("one_arm", "experiment.yaml", lambda c: c.update(arms={"champion": 1.0}),
              ["experiment", "design", "experiment.yaml"], "experiment.yaml", "arms", "challenger"),
    yaml_case("negative_weight", "experiment.yaml", lambda c: c.update(arms={"a": 0.5, "b": -0.5}),
              ["experiment", "design", "experiment.yaml"], "experiment.yaml", "arms", ">= 0"),
    yaml_case("window_zero", "experiment.yaml", lambda c: c.update(window_days=0),
              ["experiment", "readout", "experiment.yaml"], "experiment.yaml", "window_days"),
    yaml_case("mde_points_not_fraction", "experiment.yaml", lambda c: c.update(mde_payer_rate=3),
              ["experiment", "design", "experiment.yaml"], "experiment.yaml", "mde_payer_rate"),
    yaml_case("misspelt_alpha", "experiment.yaml", lambda c: c.update(alfa=0.05),
              ["experiment", "design", "experiment.yaml"], "experiment.yaml", "alfa"),
    yaml_case("experiment_sources_missing", "experiment.yaml", lambda c: c.update(sources="gone.yaml"),
              ["experiment", "readout", "experiment.yaml"], "experiment.yaml", "sources", "gone.yaml"),
    args_case("assign_in_future", ["experiment", "assign", "experiment.yaml", "--export", "arms.csv",
                                   "--as-of", "2030-12-31"], "as_of", "extraction date"),
    args_case("assign_mid_month", ["experiment", "assign", "experiment.yaml", "--export", "arms.csv",
                                   "--as-of", "2026-10-15"], "as_of", "month end"),
    args_case("assign_export_txt", ["experiment", "assign", "experiment.yaml", "--export", "arms.txt"],
              "--export", "arms.txt"),
    args_case("readout_future", ["experiment", "readout", "experiment.yaml", "--as-of", "2030-12-31"],
              "as_of", "extraction date"),
    args_case("readout_day_first", ["experiment", "readout", "experiment.yaml", "--as-of", "31/10/2026"],
              "as_of", "YYYY-MM-DD"),
    # ---- report runs (pre-flight: nothing is created)
    args_case("param_language_fr", [*REPORT, "-p", "language=fr"], "language", "fr", "en"),
    args_case("param_lgd_text", [*REPORT, "-p", "lgd=abc"], "lgd", "abc"),
    args_case("param_lgd_above_one", [*REPORT, "-p", "lgd=1.5"], "lgd", "1.5"),
    args_case("param_bad_yaml", [*REPORT, "-p", "language=[oops"], "language", "[oops"),
    args_case("param_unknown", [*REPORT, "-p", "colour=red"], "colour"),
    args_case("param_no_equals", [*REPORT, "-p", "language"], "-p", "key=value"),
    args_case("report_as_of_nonsense", [*REPORT, "--as-of", "nonsense"], "--as-of", "YYYY-MM-DD"),
    args_case("report_as_of_mid_month", [*REPORT, "--as-of", "2026-10-15"], "--as-of", "2026-10-31"),
    args_case("report_as_of_future", [*REPORT, "--as-of", "2030-12-31"], "--as-of", "extraction date"),
    args_case("report_as_of_day_first", [*REPORT, "--as-of", "01/10/2026"], "--as-of", "never guessed"),
    args_case("report_as_of_before_data", [*REPORT, "--as-of", "1990-01-31"], "--as-of", "first month"),
    yaml_case("report_segmentation_missing", "report.yaml", lambda c: c.update(segmentation="gone.yaml"),
              REPORT, "report.yaml", "segmentation", "gone.yaml"),
    yaml_case("report_language_fr", "report.yaml", lambda c: c.update(language="fr"),
              REPORT, "report.yaml", "language"),
    yaml_case("report_name_path", "report.yaml", lambda c: c.update(name="../evil"),
              REPORT, "report.yaml", "name", "folder"),
    yaml_case("report_title_two_lines", "report.yaml", lambda c: c.update(title="a\nb"),
              REPORT, "report.yaml", "title", "one line"),
    yaml_case("report_bad_experiment", "experiment.yaml", lambda c: c.update(alpha=2),
              REPORT, "experiment.yaml", "alpha"),
    yaml_case("report_bad_rules", "segments.yaml", rule({"column": "x", "op": "~", "value": 1}),
              REPORT, "segments.yaml", "op"),
    yaml_case("keep_runs_zero", "report.yaml", lambda c: c.update(keep_runs=0),
              REPORT, "report.yaml", "keep_runs"),
    Case("output_dir_is_a_file", output_dir_is_a_file, ("out", "folder")),
]  # fmt: skip


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_exits_2_with_a_named_message_and_writes_nothing(
    case, template, tmp_path, monkeypatch
):
    project = tmp_path / "project"
    shutil.copytree(template, project)
    monkeypatch.chdir(project)
    monkeypatch.setenv("COLLECT_KIT_CACHE", str(project / "cache"))
    argv = case.setup(project)
    before = files_in(project)
    started = time.perf_counter()
    result = CliRunner().invoke(app, argv)
    elapsed = time.perf_counter() - started
    output = result.output
    assert result.exit_code == 2, f"{argv}: exit {result.exit_code}\n{output}\n{result.exception!r}"
    assert "Traceback" not in output
    missing = [text for text in case.expect if text not in output]
    assert not missing, f"{argv}: message lacks {missing}:\n{output}"
    assert files_in(project) == before, "nothing may be written on a user error"
    assert elapsed < 30


def test_a_month_means_its_end(template, monkeypatch):
    """The accepted forms: ``YYYY-MM`` is that month's end, like ``YYYY-MM-DD`` of it."""
    monkeypatch.chdir(template)
    by_month = CliRunner().invoke(app, [*SEG, "--as-of", "2026-09"])
    by_day = CliRunner().invoke(app, [*SEG, "--as-of", "2026-09-30"])
    assert by_month.exit_code == 0 and by_day.exit_code == 0, by_month.output
    assert "segments as of 2026-09-30" in by_month.output
    assert by_month.output == by_day.output


def test_catalogue_is_large_enough():
    assert len(CASES) >= 60


def test_alias_bomb_is_refused_in_under_a_second(tmp_path):
    from collect_kit.errors import ConfigError
    from collect_kit.segmentation import load

    path = tmp_path / "bomb.yaml"
    path.write_text(BOMB)
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="alias"):
        load(path)
    assert time.perf_counter() - started < 1.0


# ------------------------------------------------------------- faults of a real process


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: int = 300):
    """The installed console script in a real process (exit status and stderr as a user sees)."""
    exe = Path(sys.executable).with_name("collect-kit")
    return subprocess.run(
        [str(exe), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def test_locked_database_is_a_clear_error(template, tmp_path):
    """A DuckDB file opened read-write by another process cannot be read: exit 2 naming it."""
    db = tmp_path / "locked.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(db)!r})
            con.execute("create table customers as select 1 as customer_id")
            print("ready", flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = run_cli(
            "validate", "--sources", "sources.yaml", "--database", str(db), cwd=template
        )
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2, result.stderr
    assert "locked.duckdb" in result.stderr and "locked by another process" in result.stderr
    assert "Traceback" not in result.stderr


def test_unexpected_errors_exit_1_with_a_traceback_and_version_works(tmp_path):
    version = run_cli("--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip()
    usage = run_cli("segment", cwd=tmp_path)  # missing argument: a usage error
    assert usage.returncode == 2


def _mount_works() -> str | None:
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt && echo ok"],
        capture_output=True, text=True,
    )  # fmt: skip
    return None if probe.stdout.strip() == "ok" else (probe.stderr.strip() or "unshare refused")


def _in_mount(
    command: list[str], size: str, readonly: bool, cwd: Path
) -> subprocess.CompletedProcess:
    """Run ``command`` with ``cwd/out`` a tmpfs of ``size`` (read-only if asked)."""
    exe = Path(sys.executable).with_name("collect-kit")
    out = cwd / "out"
    out.mkdir(exist_ok=True)
    remount = f"mount -o remount,ro {out} && " if readonly else ""
    script = f'mount -t tmpfs -o size={size} tmpfs {out} && {remount}exec "$@"'
    return subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(exe), *command],
        cwd=cwd, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.parametrize("fault", ["read_only", "full"])
def test_export_to_a_read_only_or_full_disk(fault, template, tmp_path, monkeypatch):
    project = tmp_path / "project"
    shutil.copytree(template, project)
    reason = _mount_works()
    target = "out/dialer.csv"
    if reason is None:
        result = _in_mount([*SEG, "--export", target], "4k", fault == "read_only", project)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr
        assert "dialer.csv" in result.stderr
        assert ("read-only" if fault == "read_only" else "disk is full") in result.stderr
        assert not (project / target).exists()  # the mount is gone; nothing leaked outside
        return
    # the machine refuses the mount: inject the same OS error at the kit's one write function
    import errno

    from collect_kit import files

    code = errno.EROFS if fault == "read_only" else errno.ENOSPC

    def refuse(path, content, what="file"):
        raise files.access_error(OSError(code, os.strerror(code)), path, what)

    monkeypatch.setattr("collect_kit.segmentation.export.write_atomic", refuse)
    monkeypatch.chdir(project)
    (project / "out").mkdir()
    result = CliRunner().invoke(app, [*SEG, "--export", target])
    assert result.exit_code == 2 and "dialer.csv" in result.output, reason
    assert not (project / target).exists()


def test_write_atomic_on_dev_full_leaves_nothing(tmp_path):
    """/dev/full gives ENOSPC on write: the error names the path, no partial file remains."""
    from collect_kit import files
    from collect_kit.errors import DataAccessError

    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this machine")
    target = tmp_path / "report.html"

    def into_dev_full(tmp: Path) -> None:
        with open("/dev/full", "wb") as f:
            f.write(b"x" * 65536)
            f.flush()

    with pytest.raises(DataAccessError, match="report.html.*disk is full"):
        files.write_atomic(target, into_dev_full, "report")
    assert list(tmp_path.iterdir()) == []


def test_a_bug_exits_1_with_its_traceback(template, monkeypatch):
    def broken(path):
        raise RuntimeError("an internal error, not the user's")

    monkeypatch.setattr("collect_kit.cli.segmentation.load", broken)
    monkeypatch.chdir(template)
    result = CliRunner().invoke(app, SEG)
    assert result.exit_code == 1
    assert isinstance(result.exception, RuntimeError)  # not swallowed into a user error


def test_example_ids_only_reach_a_terminal(template, tmp_path):
    """Validation examples (customer ids) go to a person at a terminal, never to a log."""
    import pty

    project = tmp_path / "project"
    shutil.copytree(template, project)
    edit_csv(project, "payments", set_first("customer_id", "NOBODY-1"))
    example = pd.read_csv(project / "data" / "payments.csv", dtype=str).payment_id[0]

    def at_a_terminal(*extra: str) -> bytes:
        primary, secondary = pty.openpty()
        exe = Path(sys.executable).with_name("collect-kit")
        process = subprocess.Popen([str(exe), *VALIDATE, *extra], cwd=project, stdin=secondary,
                                   stdout=secondary, stderr=secondary, close_fds=True)  # fmt: skip
        os.close(secondary)
        seen = b""
        while True:
            try:
                chunk = os.read(primary, 65536)
            except OSError:
                break
            if not chunk:
                break
            seen += chunk
        assert process.wait(timeout=120) == 2
        os.close(primary)
        return seen

    assert f"e.g. {example}".encode() in at_a_terminal()  # a person at a terminal sees them
    assert example.encode() not in at_a_terminal("--quiet")
    piped = run_cli(*VALIDATE, cwd=project)  # cron, CI, a pipe, a log: counts only
    assert piped.returncode == 2 and "unknown_reference" in piped.stdout
    assert example not in piped.stdout + piped.stderr


@pytest.mark.parametrize("fault", ["read_only", "full"])
def test_report_run_into_a_read_only_or_full_disk(fault, template, tmp_path):
    """A real read-only or full output folder (tmpfs): exit 2 naming it, no traceback.

    Read-only is found by the pre-flight (nothing runs); a disk that fills up during the
    run fails it when an artefact cannot be written, and never leaves a half-written file
    under its final name.
    """
    reason = _mount_works()
    if reason is not None:
        pytest.skip(f"cannot mount a tmpfs here ({reason}); the same path is exercised by "
                    "test_run_lifecycle's injected ENOSPC at files.write_atomic")  # fmt: skip
    project = tmp_path / "project"
    shutil.copytree(template, project)
    edit(project / "report.yaml", lambda c: c.update(notebooks=["segmentation"]))
    size = "64k" if fault == "full" else "1m"
    command = [*REPORT, "--output-dir", "out", "--quiet"]
    env_cache = {"COLLECT_KIT_CACHE": str(project / "cache")}
    exe = Path(sys.executable).with_name("collect-kit")
    out = project / "out"
    out.mkdir()
    remount = f"mount -o remount,ro {out} && " if fault == "read_only" else ""
    listing = f"; status=$?; find {out} -type f > {project}/listing.txt; exit $status"
    script = f'mount -t tmpfs -o size={size} tmpfs {out} && {remount}"$@"{listing}'
    result = subprocess.run(
        ["unshare", "-rm", "sh", "-c", script, "sh", str(exe), *command],
        cwd=project, capture_output=True, text=True, timeout=600,
        env={**os.environ, **env_cache},
    )  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert ("read-only" if fault == "read_only" else "disk is full") in result.stderr, result.stderr
    written = (project / "listing.txt").read_text().split()
    assert not any(name.endswith((".html", ".pdf")) for name in written), written
    assert not any(name.endswith(".partial") for name in written), written
