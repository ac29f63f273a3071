"""The canonical model: one spec per table, reused for docs; the architecture's one-way rules."""

from __future__ import annotations

import ast
from pathlib import Path

from collect_kit import schema

SRC = Path(__file__).resolve().parents[1] / "src" / "collect_kit"
ROOT = SRC.parents[1]


def test_every_design_table_is_specified():
    assert list(schema.TABLES) == [
        "customers", "receivables", "payments", "adjustments", "contacts", "scores", "assignments",
        "extract",
    ]  # fmt: skip
    for spec in schema.TABLES.values():
        assert set(spec.key) <= set(spec.column_names), spec.name
        for c in spec.columns:
            if c.references:
                table, column = c.references.split(".")
                assert column in schema.TABLES[table].column_names


def test_optional_tables_are_the_documented_ones():
    optional = {t.name for t in schema.TABLES.values() if t.may_be_empty}
    assert optional == {"adjustments", "scores", "assignments", "contacts", "extract"}


def test_personal_columns_are_marked():
    assert schema.PERSONAL_COLUMNS["customers"] == ("name", "phone", "email")


def test_docs_are_generated_from_the_specs():
    doc = (ROOT / "docs" / "data-model.md").read_text(encoding="utf-8")
    assert doc == schema.to_markdown(), (
        "regenerate: python -m collect_kit.schema > docs/data-model.md"
    )


def test_empty_frame_is_typed():
    frame = schema.empty_frame(schema.PAYMENTS)
    assert list(frame.columns) == schema.PAYMENTS.column_names and len(frame) == 0
    assert str(frame["paid_at"].dtype).startswith("datetime64")


def test_only_the_engine_imports_database_drivers():
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in ("duckdb", "pyspark"):
                    assert path.name == "engine.py", f"{path.name} imports {name}"
