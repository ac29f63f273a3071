"""`collect-kit sources init`: a first sources YAML proposed from a folder of files."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pandas as pd
import yaml
from typer.testing import CliRunner

from collect_kit import engine, mapping, sources
from collect_kit.cli import app

ROOT = Path(__file__).resolve().parents[1]


def spanish_folder(folder: Path) -> Path:
    """What a Chilean team's export looks like: Spanish names, no ids for the events."""
    pd.DataFrame(
        {"rut": ["11111111-1", "22222222-2"], "cliente": ["Ana Pérez", "Sur Ltda"]}
    ).to_csv(folder / "clientes.csv", index=False)
    pd.DataFrame({"rut": ["11111111-1", "22222222-2"], "monto": [1000, 500],
                  "fecha_emision": ["2026-01-05", "2026-01-10"],
                  "fecha_vencimiento": ["2026-02-05", "2026-02-10"], "saldo": [400, 0]}).to_csv(
        folder / "documentos.csv", index=False)  # fmt: skip
    pd.DataFrame({"rut": ["11111111-1", "22222222-2"], "monto": [600, 500],
                  "fecha_pago": ["2026-02-01", "2026-02-09"]}).to_csv(
        folder / "pagos.csv", index=False)  # fmt: skip
    pd.DataFrame({"rut": ["11111111-1", "22222222-2", "11111111-1"],
                  "canal": ["llamada", "correo", "SMS"],
                  "resultado": ["promesa", "entregado", "sin respuesta"]}).to_csv(
        folder / "gestiones.csv", index=False)  # fmt: skip
    return folder


def test_a_spanish_folder_gets_exactly_the_expected_mapping(tmp_path):
    folder = spanish_folder(tmp_path)
    result = CliRunner().invoke(app, ["sources", "init", str(folder)])
    assert result.exit_code == 0, result.output
    assert f"collect-kit validate --sources {folder / 'sources.yaml'}" in result.output
    text = (folder / "sources.yaml").read_text()
    cfg = yaml.safe_load(text)
    columns = {name: t.get("columns", {}) for name, t in cfg["tables"].items()}
    assert columns == {
        "customers": {"customer_id": "rut"},
        "receivables": {"customer_id": "rut", "amount": "monto", "issued_at": "fecha_emision",
                        "due_at": "fecha_vencimiento"},
        "payments": {"customer_id": "rut", "amount": "monto", "paid_at": "fecha_pago"},
        "contacts": {"customer_id": "rut", "channel": "canal", "outcome": "resultado"},
    }  # fmt: skip
    assert "# reported_balance: saldo" in text  # a commented candidate
    assert "#   cliente: {type: string}" in text  # an unmapped column, as a candidate extra
    assert cfg["tables"]["contacts"]["values"] == {
        "channel": {"SMS": "sms", "correo": "email", "llamada": "call"},
        "outcome": {"entregado": "delivered", "promesa": "promise", "sin respuesta": "no_answer"},
    }
    # every guess is marked, and what is missing is a TODO
    assert (
        text.count("# GUESS") >= 13
        and "TODO: no column found for the required receivable_id" in text
    )
    # the proposal is a valid sources YAML (validation then names what is still missing)
    assert sources.read_config(folder / "sources.yaml").tables["payments"].path == "pagos.csv"


def test_it_never_overwrites_a_file(tmp_path):
    folder = spanish_folder(tmp_path)
    (folder / "sources.yaml").write_text("mine\n")
    result = CliRunner().invoke(app, ["sources", "init", str(folder)])
    assert result.exit_code == 2 and "never overwritten" in result.output
    assert (folder / "sources.yaml").read_text() == "mine\n"
    result = CliRunner().invoke(app, ["sources", "init", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "neither a folder nor a DuckDB file" in result.output


def test_the_public_loan_book_is_recognised_as_an_extract(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "lc_prepare", ROOT / "examples" / "lending_club_2018" / "prepare.py"
    )
    prepare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prepare)
    prepare.to_extract(prepare.load_book()).to_csv(tmp_path / "loans.csv", index=False)
    proposal = mapping.propose(tmp_path)
    [t] = proposal.tables
    assert t.table == "extract"
    assert t.columns["balance"] == "balance" and t.columns["status"] == "loan_status"
    assert t.columns["days_past_due"] == "days_past_due" and t.columns["issued_at"] == "issue_date"
    assert t.missing == ["account_id"]  # `rownames` is no known name: the user maps it
    assert t.unmapped["grade"] == "string" and t.unmapped["annual_income"] == "float"
    assert t.unmapped["late_or_charged_off"] == "bool" and t.unmapped["delinq_2y"] == "int"
    assert set(t.codes["status"]) == set(prepare.STATUS_DPD)
    text = mapping.render(proposal)
    assert "Current: current   # GUESS" in text and "Charged Off: written_off" in text
    assert "Fully Paid: TODO" in text and "#   grade: {type: string, rollup: first}" in text


def test_tables_of_a_duckdb_file(tmp_path, small_sample):
    db = tmp_path / "book.duckdb"
    engine.write_database(db, {"clientes": small_sample.tables["customers"],
                               "facturas": small_sample.tables["receivables"],
                               "pagos": small_sample.tables["payments"]})  # fmt: skip
    proposal = mapping.propose(db)
    assert proposal.database == "book.duckdb"
    assert {t.source: t.table for t in proposal.tables} == {
        "clientes": "customers", "facturas": "receivables", "pagos": "payments"}  # fmt: skip
    assert all(not t.missing for t in proposal.tables)
    text = mapping.render(proposal)
    cfg = yaml.safe_load(text)
    assert cfg["database"] == "book.duckdb" and cfg["tables"]["receivables"]["table"] == "facturas"
