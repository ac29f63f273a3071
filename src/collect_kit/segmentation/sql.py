"""The cascade as portable SQL, for pasting into a production collections system."""

from __future__ import annotations

import ibis

from ..snapshot import snapshot_schema
from .compile import assigned
from .rules import Segmentation, SegmentationError

#: The dialect names users type, mapped to the Ibis/sqlglot dialect that compiles them.
#: Ibis has no "spark" dialect without a live PySpark session; Databricks SQL is Spark SQL.
DIALECTS = {
    "duckdb": "duckdb",
    "spark": "databricks",
    "databricks": "databricks",
    "postgres": "postgres",
    "postgresql": "postgres",
    "snowflake": "snowflake",
}


def to_sql(
    segmentation: Segmentation,
    dialect: str = "duckdb",
    table: str = "snapshot",
    schema: dict[str, str] | None = None,
) -> str:
    """Return a ``SELECT customer_id, segment, strategy FROM <table>`` query in ``dialect``.

    ``dialect``: one of :data:`DIALECTS`. ``table``: the table holding one row per customer
    with the columns the rules read. ``schema``: column name -> type of that table
    (default: the snapshot's columns). Literals are quoted by the SQL compiler, never
    pasted as text.
    """
    if dialect not in DIALECTS:
        raise SegmentationError(f"dialect: '{dialect}' is not one of {', '.join(DIALECTS)}")
    schema = dict(schema or snapshot_schema())
    keep = {"customer_id": schema.get("customer_id", "string")}
    keep.update({c: schema[c] for c in segmentation.columns if c in schema})
    t = ibis.table(keep, name=table)
    expr = assigned(segmentation, t, names=list(schema)).select(
        "customer_id", "segment", "strategy"
    )
    return ibis.to_sql(expr, dialect=DIALECTS[dialect])
