"""The one place that opens connections and knows which query engine is used.

Domain modules work on Ibis expressions only and never import DuckDB (or, later, PySpark).
Default engine: DuckDB in-process. DuckDB files are opened read-only except while they are
being built (:func:`write_database`), so an open notebook never blocks a scheduled run.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import ibis
import pandas as pd
import pyarrow as pa
from ibis.expr.types import Table

from .errors import ConfigError, DataAccessError, InvalidParameterError
from .files import reason
from .schema import PANDAS_DTYPES, TableSpec

ENGINES = ("duckdb",)


def connect(engine: str = "duckdb", path: str | os.PathLike | None = None, read_only: bool = True):
    """Return an Ibis backend connection.

    ``engine``: ``"duckdb"`` (in-process). ``path``: a DuckDB database file, or ``None`` for
    an in-memory database. Files are opened read-only unless ``read_only=False``.
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine: '{engine}' is not one of {', '.join(ENGINES)}")
    if path is None:
        return ibis.duckdb.connect()
    path = Path(path)
    if read_only and not path.exists():
        raise ConfigError(f"database file '{path}' does not exist")
    if path.is_dir():
        raise ConfigError(f"database file '{path}' is a folder, expected a DuckDB file")
    with reading(path, "database file"):
        return ibis.duckdb.connect(str(path), read_only=read_only)


def backend_errors() -> tuple[type[BaseException], ...]:
    """The exception types the query engine raises (to translate at the kit's boundary)."""
    import duckdb

    return (duckdb.Error,)


@contextmanager
def reading(path: str | os.PathLike, what: str, hint: str = "") -> Iterator[None]:
    """Turn the engine's and the OS's errors met while reading ``path`` into the kit's.

    A corrupt, locked or non-DuckDB database file, a CSV that is not UTF-8 (``hint`` says
    how to fix it), a folder where a file is expected, a file that cannot be opened: each
    becomes a :class:`DataAccessError` naming ``what`` and ``path``, with the engine's
    first line of explanation.
    """
    try:
        yield
    except backend_errors() as exc:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else exc.__class__.__name__
        if "unicode" in text.lower() or "utf-8" in text.lower():
            first = "not UTF-8 text" + (f"; {hint}" if hint else "")
        elif "lock" in text.lower():
            first = (
                "locked by another process (close the program writing it, or read a copy): " + first
            )
        raise DataAccessError(f"{what} '{path}': cannot be read: {first}") from None
    except UnicodeDecodeError:
        raise DataAccessError(
            f"{what} '{path}': cannot be read: not UTF-8 text" + (f"; {hint}" if hint else "")
        ) from None
    except OSError as exc:
        raise DataAccessError(f"{what} '{path}': cannot be read: {reason(exc)}") from None


_session = None


def session():
    """The process's in-memory DuckDB connection, where pandas and Arrow inputs are loaded."""
    global _session
    if _session is None:
        _session = ibis.duckdb.connect()
    return _session


def as_table(data: pd.DataFrame | pa.Table | Table, spec: TableSpec | None = None) -> Table:
    """Return ``data`` as an Ibis table.

    Ibis tables pass through. pandas and Arrow inputs are copied into a temporary table of
    the in-memory :func:`session` (DuckDB scans its own storage about 7x faster than an
    Arrow memtable referenced several times in one query); :func:`release` drops it. With a
    canonical ``spec``, pandas columns holding only nulls get the canonical type.
    """
    if isinstance(data, Table):
        return data
    if isinstance(data, pd.DataFrame) and spec is not None:
        untyped = {
            c.name: PANDAS_DTYPES[c.dtype]
            for c in spec.columns
            if c.name in data.columns and data[c.name].dtype == object and data[c.name].isna().all()
        }
        data = data.astype(untyped) if untyped else data
    if isinstance(data, pd.DataFrame | pa.Table):
        return session().create_table(f"_ck_{uuid.uuid4().hex}", data, temp=True)
    raise InvalidParameterError(
        f"expected a pandas DataFrame or an Ibis table, got {type(data).__name__}"
    )


def release(tables) -> None:
    """Drop the temporary tables :func:`as_table` created (others are left alone)."""
    con = session()
    for t in tables:
        name = t.get_name() if isinstance(t, Table) else None
        if name and name.startswith("_ck_"):
            con.drop_table(name, force=True)


#: results kept by :func:`shared` (most recently used last); each is one row per customer
_SHARED: OrderedDict = OrderedDict()
SHARED_MAX = 24


def shared(expr: Table) -> Table:
    """``expr`` computed once and kept on its database for every later use in this process.

    For results many computations need, such as the month-end book (balances per customer
    at a month end: every KPI of a month, aging, roll rates and vintages read the same few).
    Ibis materializes it as a temporary table (``Table.cache``), keyed by the expression,
    so an equal expression built again finds it; the :data:`SHARED_MAX` most recently used
    are kept. Inputs loaded from pandas into the :func:`session` are not kept: they are
    released after each call, and keeping results built on them would only hold memory.
    """
    backend = ibis.get_backend(expr)
    if _session is not None and backend is _session:
        return expr
    key = expr.op()
    if key in _SHARED:
        _SHARED.move_to_end(key)
        return _SHARED[key]
    kept = expr.cache()
    _SHARED[key] = kept
    while len(_SHARED) > SHARED_MAX:
        _SHARED.popitem(last=False)  # Ibis drops the temporary table once unreferenced
    return kept


def release_shared() -> None:
    """Drop every result :func:`shared` keeps (call before disconnecting their database)."""
    _SHARED.clear()


def to_pandas(expr: Table) -> pd.DataFrame:
    """Execute an Ibis table expression and return a pandas DataFrame."""
    return expr.to_pandas()


def read_file(con, path: Path, fmt: str, encoding: str = "utf-8") -> Table:
    """Register a CSV (all columns read as text, typed later by validation; ``encoding``
    ``utf-8``, ``utf-16`` or ``latin-1``) or Parquet file.

    A CSV is read once into a temporary table of ``con``: validation and every later
    query then scan the engine's own storage instead of parsing the text again (a CSV
    view is re-read, and its dialect re-detected, by every query that touches it).
    """
    if fmt == "csv":
        text = con.read_csv(str(path), all_varchar=True, header=True, encoding=encoding)
        return con.create_table(f"_csv_{uuid.uuid4().hex}", text, temp=True)
    if fmt == "parquet":
        return con.read_parquet(str(path))
    raise ConfigError(f"file '{path}': format '{fmt}' is not csv or parquet")


def write_database(path: str | os.PathLike, tables: Mapping[str, pa.Table | pd.DataFrame]) -> Path:
    """Write ``tables`` into a new DuckDB file at ``path``, atomically.

    The file is built under a temporary name next to ``path`` and renamed into place only
    when every table is written, so a reader never sees a half-built database and a failed
    build leaves the previous file untouched.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(
            f"cannot create the folder '{path.parent}': a file is in the way"
        ) from None
    except OSError as exc:
        raise DataAccessError(f"folder '{path.parent}': cannot be created: {reason(exc)}") from None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".duckdb", dir=path.parent)
    except OSError as exc:
        raise DataAccessError(f"database '{path}': cannot be written: {reason(exc)}") from None
    os.close(fd)
    os.unlink(tmp)  # DuckDB must create the file itself
    try:
        con = ibis.duckdb.connect(tmp, read_only=False)
        for name, table in tables.items():
            con.create_table(name, table)
        con.disconnect()
        os.replace(tmp, path)
    except BaseException as exc:
        for leftover in (tmp, tmp + ".wal"):
            if os.path.exists(leftover):
                os.unlink(leftover)
        if isinstance(exc, OSError):
            raise DataAccessError(f"database '{path}': cannot be written: {reason(exc)}") from None
        if isinstance(exc, backend_errors()):
            first = (str(exc).strip().splitlines() or [exc.__class__.__name__])[0]
            raise DataAccessError(f"database '{path}': cannot be written: {first}") from None
        raise
    return path
