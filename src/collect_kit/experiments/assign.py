"""Deterministic arm assignment from a salted MD5 of the customer id, on the engine.

A customer goes to the first arm whose cumulative weight exceeds its bucket
(:func:`collect_kit.hashing.bucket_expr`), so the same customer gets the same arm in every
engine and every run, and adding customers never moves anyone.
"""

from __future__ import annotations

from collections.abc import Mapping

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
from ibis.expr.types import Table

from ..engine import TableLike, inputs
from ..errors import InvalidParameterError
from ..hashing import bucket_expr, hash_bucket

__all__ = ["assign_arms", "bucket_expr", "hash_bucket"]


def assign_arms(
    population: TableLike,
    salt: str,
    weights: Mapping[str, float] | Mapping[str, Mapping[str, float]],
    segment: str = "segment",
) -> pd.DataFrame | pa.Table | Table:
    """Add ``bucket`` and ``arm`` to each row of ``population`` (customer_id, segment).

    ``weights``: arm -> weight for every segment, or segment -> {arm: weight} per segment;
    weights are normalised to 1 and the first arm is the champion. A segment present in the
    data without weights raises ``ValueError``. pandas in, pandas out (same rows, same
    order and index); Arrow in, Arrow out (same row order); an Ibis table gives an Ibis
    table.
    """
    if isinstance(population, Table):
        return _assigned(population, salt, weights, segment)
    with inputs({"population": _keyed(population, segment)}) as t:
        out = _assigned(t["population"], salt, weights, segment)
        out = out.select(_ROW, "bucket", "arm").order_by(_ROW).to_pyarrow()
    if isinstance(population, pa.Table):
        return population.append_column("bucket", out.column("bucket")).append_column(
            "arm", out.column("arm")
        )
    result = population.copy()
    result["bucket"] = out.column("bucket").to_numpy()
    result["arm"] = out.column("arm").to_numpy(zero_copy_only=False)
    return result


_ROW = "_ck_row"


def _keyed(population, segment: str):
    """``customer_id``, ``segment`` and the row number of a pandas or Arrow population
    (anything else is left for :func:`engine.inputs` to refuse)."""
    if isinstance(population, pd.DataFrame):
        return population[["customer_id", segment]].assign(**{_ROW: np.arange(len(population))})
    if isinstance(population, pa.Table):
        rows = pa.array(np.arange(len(population)))
        return population.select(["customer_id", segment]).append_column(_ROW, rows)
    return population


def _assigned(t: Table, salt: str, weights, segment: str) -> Table:
    b = bucket_expr(t.customer_id, salt)
    if all(isinstance(v, Mapping) for v in weights.values()):
        present = t.select(segment).distinct().to_pandas()[segment].tolist()
        missing = [s for s in present if s not in weights]
        if missing:
            raise InvalidParameterError(f"weights: no arm weights for segment(s) {missing}")
        arm = ibis.cases(
            *[(t[segment] == s, _arm(b, w)) for s, w in weights.items()], else_=ibis.null("string")
        )
    else:
        arm = _arm(b, weights)
    return t.mutate(bucket=b, arm=arm)


def _arm(bucket, weights: Mapping[str, float]):
    """The arm of a bucket: the first whose cumulative (normalised) weight exceeds it."""
    if not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise InvalidParameterError(
            f"weights: need arms with non-negative weights summing to more than 0, got {dict(weights)}"
        )
    total = float(sum(weights.values()))
    cases, cum = [], 0.0
    names = list(weights)
    for name in names[:-1]:
        cum += weights[name] / total
        cases.append((bucket < cum, name))
    return ibis.cases(*cases, else_=names[-1]) if cases else ibis.literal(names[-1])
