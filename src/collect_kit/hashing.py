"""Salted MD5 buckets of customer ids: the same number on every engine and in Python.

bucket = int(first 7 hex digits of md5(salt + customer_id), 16) / 16**7, a number in
[0, 1). MD5 is computed identically by DuckDB, Spark and Python's ``hashlib``, unlike each
engine's ``hash()`` (7 hex digits keep the integer inside Spark's 32-bit ``int``;
``docs/stack.md``). Experiments assign arms with it, plans rank customers with it, and
samples drawn on the engine (:func:`hash_sample`) are the same rows wherever they run.
"""

from __future__ import annotations

import hashlib

import ibis
from ibis.expr.types import Table

HEX_DIGITS = 7
_SCALE = 16**HEX_DIGITS


def hash_bucket(customer_id: str, salt: str) -> float:
    """The bucket of one customer in Python (the reference the engine must match)."""
    digest = hashlib.md5((salt + customer_id).encode("utf-8")).hexdigest()
    return int(digest[:HEX_DIGITS], 16) / _SCALE


def bucket_expr(customer_id, salt: str):
    """The same bucket as an Ibis expression (portable: md5 hex digest, digit by digit)."""
    hexd = (ibis.literal(salt) + customer_id.cast("string")).hexdigest("md5")
    value = ibis.literal(0, "int64")
    for i in range(HEX_DIGITS):
        digit = ibis.literal("0123456789abcdef").find(hexd.substr(i, 1)).cast("int64")
        value = value * 16 + digit
    return value.cast("float64") / float(_SCALE)


def hash_sample(t: Table, size: int, salt: str) -> tuple[Table, int]:
    """About ``size`` rows of ``t`` chosen on the engine by the salted MD5 bucket of
    ``customer_id`` (the same rows on every engine and in Python, whatever the row order),
    and the number of rows of ``t``. All rows when ``t`` has at most ``size``; nothing is
    pulled but the count."""
    n = int(t.count().to_pyarrow().as_py())
    if n > size:
        t = t.filter(bucket_expr(t.customer_id, salt) < size / n)
    return t, n
