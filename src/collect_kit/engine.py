"""The one place that opens connections and knows which query engine is used.

Domain modules work on Ibis expressions only and never import DuckDB or PySpark.
Engines: ``duckdb`` (default, in-process) and ``spark`` (PySpark through Ibis; local mode
by default, or a cluster's master URL: :class:`SparkConfig`). DuckDB files are opened
read-only except while they are being built (:func:`write_database`), so an open notebook
never blocks a scheduled run.

On Spark, data enters through Arrow or Parquet and results leave through Arrow, never
pandas (pandas turns missing values into NaN, which is not NULL on Spark:
``docs/stack.md``): :class:`_SparkBackend` does both for every Ibis expression. A
portfolio's CSV files and DuckDB tables reach Spark as Parquet staged by DuckDB
(:class:`DataSource`).

Every public function of the kit takes its tables through :func:`inputs`: pandas, Arrow
or Ibis in, Ibis tables of one backend inside, results back in the kind that came in.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import shutil
import sys
import tempfile
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

import ibis
import pandas as pd
import pyarrow as pa
from ibis.expr import operations as ops
from ibis.expr.types import Table
from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import files
from .errors import ConfigError, DataAccessError, InvalidParameterError, ResultTooLargeError
from .files import reason
from .schema import PANDAS_DTYPES, TableSpec

ENGINES = ("duckdb", "spark")


class SparkConfig(BaseModel):
    """The ``spark:`` block of a sources YAML or a report config.

    ``master``: ``local[N]`` / ``local[*]`` (Spark local mode, the default: every core of
    this machine) or a cluster's URL (``spark://host:7077``, ``yarn``). ``app_name``: the
    name the cluster shows. ``driver_memory``: the driver's heap (``2g``; only before the
    process's first Spark session starts). ``shuffle_partitions``: partitions of joins
    and group-bys (default: the number of local cores in local mode, else Spark's).
    ``local_dir``: the folder for the session's warehouse, staged Parquet and spill
    (default: the system's temporary folder); each process gets its own subfolder,
    removed when it ends. ``conf``: any other Spark setting, as ``key: value``.
    """

    model_config = ConfigDict(extra="forbid")
    master: str = "local[*]"
    app_name: str = "collect_kit"
    driver_memory: str = "2g"
    shuffle_partitions: int | None = Field(None, ge=1)
    local_dir: str | None = None
    conf: dict[str, str | int | float | bool] = {}

    @field_validator("driver_memory")
    @classmethod
    def _memory(cls, v: str) -> str:
        digits = v[:-1] if v[-1:].lower() in "kmgt" else v
        if not digits.isdigit():
            raise ValueError(f"must be a size such as 2g or 512m (got '{v}')")
        return v


class DuckDBConfig(BaseModel):
    """The ``duckdb:`` block of a sources YAML: DuckDB's settings for the connection that
    computes (DuckDB's defaults where not given).

    ``memory_limit``: what DuckDB may hold before it spills to disk (``8GB``; default
    :func:`default_memory_limit`, half of the machine's memory). ``temp_directory``:
    where it spills (a folder, relative to the sources YAML; default ``.tmp`` in the
    working folder). ``threads``: the cores it uses (default all).
    """

    model_config = ConfigDict(extra="forbid")
    memory_limit: str | None = None
    temp_directory: str | None = None
    threads: int | None = Field(None, ge=1)

    @field_validator("memory_limit")
    @classmethod
    def _size(cls, v: str | None) -> str | None:
        if v is None:
            return v
        number = v.upper().removesuffix("B").rstrip("KMGT").strip()
        if not number.replace(".", "", 1).isdigit():
            raise ValueError(f"must be a size such as 8GB or 512MB (got '{v}')")
        return v

    def settings(self) -> dict:
        """The settings given, as DuckDB's configuration keys."""
        return self.model_dump(exclude_none=True)


#: the share of the machine's memory a DuckDB connection of the kit may hold when the
#: sources YAML gives no ``duckdb: memory_limit``. DuckDB's own default, 80 %, assumes
#: DuckDB is alone on the machine; the kit's Python process (and, in a report run, a
#: notebook kernel beside the runner) needs the rest. The KPIs of 12 months at 1 M
#: customers filled DuckDB's 80 % (19 GiB here) with what it keeps and, with the Python
#: process on top, exhausted a 24 GiB machine without swap; with 4 GB they took as long.
DUCKDB_MEMORY_SHARE = 0.5


#: where a container's memory limit is (cgroup v2, then v1)
_CGROUP_LIMITS = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def machine_memory() -> int | None:
    """The memory this process's machine or container has, in bytes: the physical memory,
    or the container's (cgroup) limit where that is lower; ``None`` where the system does
    not say (not a POSIX system)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    for path in _CGROUP_LIMITS:
        with contextlib.suppress(OSError, ValueError):  # absent, or "max" (no limit)
            total = min(total, int(Path(path).read_text().strip()))
    return total


def default_memory_limit() -> str | None:
    """:data:`DUCKDB_MEMORY_SHARE` of :func:`machine_memory`, as a DuckDB size
    (``"12075MiB"``); ``None`` (DuckDB's own default) where the system does not say."""
    total = machine_memory()
    if total is None:
        return None
    return f"{max(int(total * DUCKDB_MEMORY_SHARE) // 2**20, 256)}MiB"


def _duckdb_connect(path: str = ":memory:", memory_limit: str | None = None, **settings):
    """An Ibis DuckDB connection with ``settings`` (DuckDB's configuration keys), held to
    ``memory_limit`` (a DuckDB size), else :func:`default_memory_limit`.

    The limit is set on the open connection, not given as a configuration: DuckDB refuses
    a second connection to a file open in the same process with a different
    configuration, so an analyst's own ``duckdb.connect`` to the portfolio's file would
    fail beside the kit's. (``memory_limit`` is a size checked by :class:`DuckDBConfig`.)
    """
    con = ibis.duckdb.connect(path, **settings)
    if limit := memory_limit or default_memory_limit():
        con.con.execute(f"SET memory_limit = '{limit}'")
    return con


def _own_spill_folder(parent: Path) -> Path:
    """A spill folder of this connection's own inside ``parent``, removed when the process
    ends: DuckDB names its spill files the same in every process, so two processes (a
    report run and its notebook kernels) must never share one."""
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f"duckdb-{os.getpid()}-", dir=parent))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def connect(
    engine: str = "duckdb",
    path: str | os.PathLike | None = None,
    read_only: bool = True,
    spark: SparkConfig | None = None,
    duckdb: DuckDBConfig | None = None,
):
    """Return an Ibis backend connection.

    ``engine``: ``"duckdb"`` (in-process) or ``"spark"``. ``path`` (DuckDB): a database
    file, or ``None`` for an in-memory database; files are opened read-only unless
    ``read_only=False``. ``spark``: the Spark settings (default :class:`SparkConfig`);
    a process has one Spark session, started by its first Spark connection. ``duckdb``:
    DuckDB's settings (:class:`DuckDBConfig`).
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine: '{engine}' is not one of {', '.join(ENGINES)}")
    if engine == "spark":
        return spark_backend(spark)
    settings = duckdb.settings() if duckdb is not None else {}
    if settings.get("temp_directory"):
        settings["temp_directory"] = str(_own_spill_folder(Path(settings["temp_directory"])))
    if path is None:
        con = _duckdb_connect(**settings)
    else:
        path = Path(path)
        if read_only and not path.exists():
            raise ConfigError(f"database file '{path}' does not exist")
        if path.is_dir():
            raise ConfigError(f"database file '{path}' is a folder, expected a DuckDB file")
        with reading(path, "database file"):
            con = _duckdb_connect(str(path), read_only=read_only, **settings)
    if settings.get("temp_directory"):
        _SCRATCH[id(con)] = Path(settings["temp_directory"])
    return con


#: the spill folder of each DuckDB connection given one (id of the connection -> folder)
_SCRATCH: dict[int, Path] = {}


def scratch_folder(con) -> Path:
    """A folder of this process's own for intermediate files of ``con``'s engine (removed
    when the process ends): the connection's spill folder when the sources YAML gives
    one (``duckdb: temp_directory``), Spark's own folder, else one in the system's
    temporary folder."""
    if is_spark(con):
        return spark_folder()
    if id(con) not in _SCRATCH:
        _SCRATCH[id(con)] = _own_spill_folder(Path(tempfile.gettempdir()))
    return _SCRATCH[id(con)]


def backend_errors() -> tuple[type[BaseException], ...]:
    """The exception types the query engines raise (to translate at the kit's boundary)."""
    import duckdb

    found: list[type[BaseException]] = [duckdb.Error]
    if "pyspark" in sys.modules:  # only once a Spark session could have run a query
        from py4j.protocol import Py4JError
        from pyspark.errors import PySparkException

        found += [PySparkException, Py4JError]
    return tuple(found)


def backend_reason(exc: Exception) -> str:
    """A short reason from a query engine's error (its I/O errors carry no errno)."""
    text = str(exc)
    for marker, said in (
        ("No space left", "the disk is full"),
        ("Read-only file system", "the file system is read-only"),
        ("Permission denied", "permission denied"),
    ):
        if marker in text:
            return said
    return (text.strip().splitlines() or [exc.__class__.__name__])[0]


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
        first = backend_reason(exc)
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


# ------------------------------------------------------------------------- Spark


def _spark_classes():
    """PySpark's Ibis backend and Spark itself, or a ConfigError saying how to get them."""
    try:
        from ibis.backends.pyspark import Backend
        from pyspark.sql import SparkSession

        ibis.pyspark  # noqa: B018 - loading the backend this way registers its options
    except ImportError:
        raise ConfigError(
            "engine: spark needs PySpark: install the kit's spark extra "
            "(pip install 'collect_kit[spark]'; Java 17 must be on the machine)"
        ) from None
    return Backend, SparkSession


@functools.cache
def _spark_backend_class():
    import sqlglot.expressions as sge
    from ibis.backends.sql.compilers.pyspark import PySparkCompiler

    Backend, _ = _spark_classes()

    class _SparkCompiler(PySparkCompiler):
        """Float literals as DOUBLE: Spark SQL reads ``30.0`` as a DECIMAL, so
        ``days / 30.0`` would be a decimal rounded to 6 places (DuckDB: a double)."""

        def visit_NonNullLiteral(self, op, *, value, dtype):
            result = super().visit_NonNullLiteral(op, value=value, dtype=dtype)
            if dtype.is_floating() and isinstance(result, sge.Literal):
                return self.cast(result, dtype)
            return result

    class _SparkBackend(Backend):
        """Ibis's PySpark backend with Arrow in and out (never pandas: NaN is not NULL on
        Spark). In-memory tables (``ibis.memtable``) are registered from Arrow; results
        are fetched with ``DataFrame.toArrow()``, and pandas results are built from that
        Arrow table the way the DuckDB backend builds its own, so both engines return the
        same frames."""

        compiler = _SparkCompiler()

        def _register_in_memory_table(self, op) -> None:
            data = _plain_arrow(op.data.to_pyarrow(op.schema))
            self._session.createDataFrame(data).createOrReplaceTempView(op.name)

        def to_pyarrow(self, expr, /, *, params=None, limit=None, **kwargs):
            from ibis.formats.pyarrow import PyArrowData

            self._run_pre_execute_hooks(expr)
            table_expr = expr.as_table()
            sql = self.compile(table_expr, params=params, limit=limit, **kwargs)
            with self._safe_raw_sql(sql) as query:
                arrow = query.toArrow()
            arrow = PyArrowData.convert_table(arrow, table_expr.schema())
            return expr.__pyarrow_result__(arrow)

        def execute(self, expr, /, *, params=None, limit=None, **kwargs):
            from ibis.backends.duckdb.converter import DuckDBPandasData

            table_expr = expr.as_table()
            arrow = self.to_pyarrow(table_expr, params=params, limit=limit, **kwargs)
            frame = DuckDBPandasData.convert_table(_pandas_like_duckdb(arrow), table_expr.schema())
            return expr.__pandas_result__(frame)

        def disconnect(self) -> None:  # the process's one session outlives a portfolio
            pass

        def _drop_cached_table(self, name: str) -> None:
            from py4j.protocol import Py4JError

            # at exit the JVM may be gone, and its cached tables with it
            with contextlib.suppress(OSError, Py4JError):
                super()._drop_cached_table(name)

    return _SparkBackend


def _plain_arrow(data: pa.Table) -> pa.Table:
    """``data`` without dictionary-encoded or large-string columns (Spark takes neither
    from Arrow)."""
    for i, f in enumerate(data.schema):
        if pa.types.is_dictionary(f.type):
            data = data.set_column(i, f.name, data.column(i).cast(f.type.value_type))
        if pa.types.is_large_string(data.schema.field(i).type):
            data = data.set_column(i, f.name, data.column(i).cast(pa.string()))
    return data


def _pandas_like_duckdb(arrow: pa.Table) -> pd.DataFrame:
    """An Arrow result as the DuckDB backend turns its own into pandas (columns with
    nulls as Python objects), so both engines return the same frames."""
    import pyarrow.types as pat

    return pd.DataFrame(
        {
            name: (
                col.to_pylist()
                if pat.is_nested(col.type) or pat.is_dictionary(col.type) or col.null_count
                else col.to_pandas()
            )
            for name, col in zip(arrow.column_names, arrow.columns, strict=True)
        }
    )


_spark: dict[str, object] = {}  # the process's Spark backend and its local folder


def spark_backend(settings: SparkConfig | None = None):
    """The process's Spark connection (an Ibis backend), started on first use with
    ``settings``; later calls return it whatever their settings (Spark has one session
    per process, and its driver memory is fixed when it starts)."""
    if "backend" in _spark:
        return _spark["backend"]
    settings = settings or SparkConfig()
    Backend, SparkSession = _spark_classes()
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise ConfigError("engine: spark needs Java 17 (no java on PATH and no JAVA_HOME)")
    parent = settings.local_dir
    if parent:
        files.make_folder(Path(parent), "spark.local_dir")
    local = Path(tempfile.mkdtemp(prefix=f"{_SPARK_PREFIX}{os.getpid()}-", dir=parent))
    atexit.register(shutil.rmtree, local, True)
    _remove_orphans(local.parent)
    conf = {
        "spark.sql.warehouse.dir": str(local / "warehouse"),
        "spark.local.dir": str(local / "spill"),
        "spark.driver.memory": settings.driver_memory,
        "spark.sql.session.timeZone": "UTC",
        # NULL, not an error, for a division by zero or a failed cast (as on DuckDB)
        "spark.sql.ansi.enabled": "false",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
    }
    if settings.master.startswith("local"):
        conf["spark.sql.shuffle.partitions"] = str(os.cpu_count() or 2)
    if settings.shuffle_partitions:
        conf["spark.sql.shuffle.partitions"] = str(settings.shuffle_partitions)
    conf.update({k: str(v).lower() if isinstance(v, bool) else str(v)
                 for k, v in settings.conf.items()})  # fmt: skip
    builder = SparkSession.builder.master(settings.master).appName(settings.app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    try:
        session = builder.getOrCreate()
    except Exception as exc:  # the JVM did not start: Java missing, a bad master URL
        raise ConfigError(f"engine: spark could not start: {backend_reason(exc)}") from None
    session.sparkContext.setLogLevel("ERROR")
    _spark.update(backend=_spark_backend_class()().connect(session), local=local)
    return _spark["backend"]


_SPARK_PREFIX = "collect_kit-spark-"


def _remove_orphans(parent: Path) -> None:
    """Remove the Spark folders in ``parent`` whose process has ended without removing
    its own: a notebook kernel stopped after its grace period (Spark's JVM is slow to
    stop) never runs its exit handlers, and its staged Parquet would stay behind."""
    for folder in parent.glob(f"{_SPARK_PREFIX}*-*"):
        pid = folder.name[len(_SPARK_PREFIX) :].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True


def spark_folder() -> Path:
    """The running Spark session's own folder (staged Parquet, warehouse, spill)."""
    return Path(_spark["local"])


def is_spark(con) -> bool:
    """Whether ``con`` is a Spark connection."""
    return getattr(con, "name", None) == "pyspark"


_session = None


def session():
    """The process's in-memory DuckDB connection: where :func:`inputs` loads pandas and
    Arrow inputs that come without any Ibis table."""
    global _session
    if _session is None:
        _session = _duckdb_connect()
    return _session


#: what every public function accepts as a table
TableLike = pd.DataFrame | pa.Table | Table

#: name prefix of the temporary tables :func:`inputs` creates (never kept by :func:`shared`)
LOADED_PREFIX = "_ck_"

#: Ibis and Arrow types of the canonical column types (:data:`collect_kit.schema.DType`)
_IBIS_TYPES = {"string": "string", "date": "date", "float": "float64", "int": "int64",
               "bool": "boolean"}  # fmt: skip
_ARROW_TYPES = {"string": pa.string(), "date": pa.date32(), "float": pa.float64(),
                "int": pa.int64(), "bool": pa.bool_()}  # fmt: skip


class Inputs(Mapping):
    """The tables of one call as Ibis tables on one backend (built by :func:`inputs`).

    A read-only mapping name -> Ibis table. ``backend``: the connection every table is on
    (empty canonical tables are in-memory and work next to any). ``kind``: how row-level
    results go back to the caller — ``"pandas"`` when any input was a pandas DataFrame,
    else ``"arrow"`` when any was a pyarrow Table, else ``"ibis"``.
    """

    def __init__(
        self, tables: dict[str, Table], backend, kind: str, absent: frozenset = frozenset()
    ):
        self._tables = tables
        self.backend = backend
        self.kind = kind
        #: canonical inputs not given: tables (``"contacts"``) and optional columns
        #: (``"customers.phone"``), stood in for by empty tables and null columns
        self.absent = absent
        #: expressions built once for the call (see :func:`collect_kit.kpis.compute`)
        self.frames: dict = {}

    def __getitem__(self, name: str) -> Table:
        return self._tables[name]

    def __iter__(self):
        return iter(self._tables)

    def __len__(self) -> int:
        return len(self._tables)

    def as_given(
        self, expr: Table, order_by: str | Sequence[str] | None = None
    ) -> pd.DataFrame | pa.Table | Table:
        """``expr`` in the kind the inputs came in (see ``kind``).

        pandas and Arrow results are computed now (the tables loaded for this call are
        dropped when the ``with`` block ends), sorted by ``order_by`` when given, with a
        fresh 0..n-1 index for pandas. An Ibis result is returned unevaluated (unordered).
        """
        if self.kind == "ibis":
            return expr
        if order_by is not None:
            expr = expr.order_by(order_by)
        if self.kind == "arrow":
            return expr.to_pyarrow()
        return _typed_frame(expr.to_pandas().reset_index(drop=True), expr.schema())


def _typed_frame(frame: pd.DataFrame, schema) -> pd.DataFrame:
    """``frame`` with its all-null number and true/false columns (which pandas holds as
    ``object``) in pandas' nullable types, so a not-available feature keeps its type."""
    fix = {}
    for name, dtype in schema.items():
        if name in frame and frame[name].dtype == object and frame[name].isna().all():
            if dtype.is_integer():
                fix[name] = "Int64"
            elif dtype.is_floating():
                fix[name] = "float64"
            elif dtype.is_boolean():
                fix[name] = "boolean"
    return frame.astype(fix) if fix else frame


@contextmanager
def inputs(
    tables: Mapping[str, TableLike | None],
    specs: Mapping[str, TableSpec | None] | None = None,
    *,
    required: Sequence[str] = (),
    parameter: str | None = None,
) -> Iterator[Inputs]:
    """The one way public functions take tables: pandas, Arrow or Ibis -> Ibis tables of one
    backend, as an :class:`Inputs` mapping valid inside the ``with`` block.

    ``tables``: the inputs by name (``None`` = not given). ``specs``: the tables to take,
    each with its canonical :class:`~collect_kit.schema.TableSpec` or ``None`` for a table
    outside the model (a snapshot, a groups frame); default: every table of ``tables``,
    none canonical. Names outside ``specs`` are ignored. ``required``: names that must be
    given. ``parameter``: the parameter holding the mapping, for messages
    (``tables['payments']``); without it a name is the parameter itself (``snapshot``).

    - Backend: that of the Ibis inputs (in-memory tables such as ``ibis.memtable`` have
      none and work next to any); without Ibis inputs, the in-memory :func:`session`.
    - pandas and Arrow inputs are loaded into that backend as temporary tables (DuckDB
      scans its own storage about 7x faster than an Arrow table referenced several times
      in one query), dropped when the block ends. DuckDB takes them with
      ``create_table(temp=True)``, which works on read-only connections; any other
      backend gets Arrow, never pandas (on Spark, pandas turns missing values into NaN,
      which is not NULL there: ``docs/stack.md``). Columns holding only nulls with no type
      (pandas ``object``, Arrow ``null``) get the canonical type, else text.
    - With a canonical spec: an absent table is an empty canonical table (unless
      required); optional canonical columns missing from a table are added as typed nulls;
      both are listed in ``Inputs.absent`` so a result can say what is not available.
      Columns beyond the spec (a team's own fields) are kept. Timestamp columns the
      model has as dates become dates.

    Raises :class:`InvalidParameterError` for ``tables`` that is not a mapping, a value
    that is not a table, missing required tables or required canonical columns, and Ibis
    tables of two different connections (naming two of them).
    """
    if not isinstance(tables, Mapping):
        raise InvalidParameterError(
            f"{parameter or 'tables'}: expected a mapping of table name -> table, "
            f"got {type(tables).__name__}"
        )
    specs = dict.fromkeys(tables) if specs is None else specs
    label = (lambda n: f"{parameter}['{n}']") if parameter else (lambda n: n)
    given = {n: tables.get(n) for n in specs if tables.get(n) is not None}
    for name, data in given.items():
        if not isinstance(data, TableLike):
            raise InvalidParameterError(
                f"{label(name)}: expected a pandas DataFrame, a pyarrow Table or an Ibis "
                f"table, got {type(data).__name__}"
            )
    missing = [n for n in required if n not in given]
    if missing and parameter:
        raise InvalidParameterError(
            f"{parameter}: missing required table(s) {', '.join(missing)}; "
            f"given: {', '.join(given) or 'none'}"
        )
    if missing:
        raise InvalidParameterError(
            f"{missing[0]}: expected a pandas DataFrame, a pyarrow Table or an Ibis table, got None"
        )
    backend = _common_backend(given, label)
    created: list[str] = []
    absent: set[str] = set()
    try:
        out: dict[str, Table] = {}
        for name, spec in specs.items():
            data = given.get(name)
            if data is None:
                if spec is not None:
                    out[name] = empty_table(spec)
                    absent.add(name)
                continue
            if not isinstance(data, Table):
                data = _load(backend, _typed_nulls(data, spec), created)
            if spec is None:
                out[name] = data
                continue
            absent.update(f"{name}.{c.name}" for c in spec.columns if c.name not in data.columns)
            out[name] = _canonical(data, spec, label(name))
        yield Inputs(out, backend, _kind(given.values()), frozenset(absent))
    finally:
        for name in reversed(created):
            _drop(backend, name)


def _kind(given) -> str:
    """How row-level results go back: pandas if any input was, else Arrow if any was."""
    if any(isinstance(d, pd.DataFrame) for d in given):
        return "pandas"
    return "arrow" if any(isinstance(d, pa.Table) for d in given) else "ibis"


def _common_backend(given: Mapping[str, TableLike], label):
    """The one backend of the Ibis inputs, or the session when there is none."""
    found: dict = {}  # backend id -> (backend, first table on it)
    for name, data in given.items():
        if isinstance(data, Table):
            for backend in data._find_backends()[0]:
                found.setdefault(id(backend), (backend, name))
    if len(found) > 1:
        (a, first), (b, second) = list(found.values())[:2]
        raise InvalidParameterError(
            f"{label(first)} and {label(second)}: Ibis tables of two different connections "
            f"({a.name} and {b.name}) cannot be read together; expected Ibis tables of one "
            "connection (pandas and Arrow tables are loaded onto it)"
        )
    return next(iter(found.values()))[0] if found else session()


def _typed_nulls(data: pd.DataFrame | pa.Table, spec: TableSpec | None) -> pd.DataFrame | pa.Table:
    """``data`` with its untyped all-null columns (pandas ``object``, Arrow ``null``) typed:
    the canonical type of a spec column, else text (engines refuse untyped columns)."""
    kinds = {c.name: c.dtype for c in spec.columns} if spec is not None else {}
    if isinstance(data, pd.DataFrame):
        untyped = {
            c: PANDAS_DTYPES[kinds.get(c, "string")]
            for c in data.columns
            if data[c].dtype == object and data[c].isna().all()
        }
        return data.astype(untyped) if untyped else data
    for i, field in enumerate(data.schema):
        if pa.types.is_null(field.type):
            target = _ARROW_TYPES[kinds.get(field.name, "string")]
            data = data.set_column(i, field.name, data.column(i).cast(target))
    return data


def _load(backend, data: pd.DataFrame | pa.Table, created: list[str]) -> Table:
    """Copy ``data`` into a new temporary table of ``backend``; its name goes to ``created``."""
    name = f"{LOADED_PREFIX}{uuid.uuid4().hex}"
    if backend.name == "duckdb":
        table = backend.create_table(name, data, temp=True)
    else:
        if isinstance(data, pd.DataFrame):
            data = pa.Table.from_pandas(data, preserve_index=False)  # NaN -> null
        table = _ARROW_LOADERS.get(backend.name, _load_arrow)(backend, name, data)
    created.append(name)
    return table


def _load_arrow(backend, name: str, data: pa.Table) -> Table:
    return backend.create_table(name, data, temp=True)


def _load_arrow_spark(backend, name: str, data: pa.Table) -> Table:
    # Ibis's create_table hands Spark pandas even for Arrow input (NaN is not NULL there),
    # and Spark refuses temp=True: a temporary view of a DataFrame built from Arrow
    backend._session.createDataFrame(_plain_arrow(data)).createOrReplaceTempView(name)
    return backend.table(name)


#: backends whose Arrow loading differs from ``create_table(name, arrow, temp=True)``
_ARROW_LOADERS = {"pyspark": _load_arrow_spark}


def _drop(backend, name: str) -> None:
    """Drop a table :func:`_load` created."""
    if backend.name == "pyspark":
        backend._session.catalog.dropTempView(name)
    else:
        backend.drop_table(name, force=True)


def _canonical(t: Table, spec: TableSpec, label: str) -> Table:
    """``t`` in the canonical shape of ``spec`` (unchanged when it already is).

    Missing optional columns are added as typed nulls; timestamps the model has as dates
    become dates. Raises :class:`InvalidParameterError` naming missing required columns.
    """
    absent = [c for c in spec.columns if c.name not in t.columns]
    lacking = [c.name for c in absent if c.required]
    if lacking:
        raise InvalidParameterError(
            f"{label}: missing required column(s) {', '.join(lacking)} of the canonical "
            f"'{spec.name}' table; has: {', '.join(t.columns)}"
        )
    fix = {c.name: ibis.null(_IBIS_TYPES[c.dtype]) for c in absent}
    fix.update(
        {
            c.name: t[c.name].date()
            for c in spec.columns
            if c.dtype == "date" and c.name in t.columns and t[c.name].type().is_timestamp()
        }
    )
    return t.mutate(**fix) if fix else t


@functools.cache
def empty_table(spec: TableSpec) -> Table:
    """An empty in-memory canonical table (one per spec, so expressions built on it are
    equal from call to call and :func:`shared` finds them again)."""
    return ibis.memtable(
        pa.table({c.name: pa.array([], _ARROW_TYPES[c.dtype]) for c in spec.columns})
    )


#: results kept by :func:`shared` (most recently used last); each is one row per customer
_SHARED: OrderedDict = OrderedDict()
#: most results :func:`shared` and :func:`built_once` keep: a year of month-end books (a
#: row per customer) and monthly settlements (the receivables settled in a month) fit
SHARED_MAX = 64


def shared(expr: Table) -> Table:
    """``expr`` computed once and kept on its database for every later use in this process.

    For results many computations need, such as the month-end book (balances per customer
    at a month end: every KPI of a month, aging, roll rates and vintages read the same few).
    Ibis materializes it as a temporary table (``Table.cache``), keyed by the expression,
    so an equal expression built again finds it; the :data:`SHARED_MAX` most recently used
    are kept. Results that read a table :func:`inputs` loaded from pandas or Arrow are not
    kept: that table is dropped after the call, and no later expression can equal them.
    """
    if _reads_loaded(expr) or isinstance(expr.op(), ops.DatabaseTable):
        return expr  # gone after the call, or already a table (Parquet parts read back)
    backend = ibis.get_backend(expr)
    # keyed by the connection object too: Ibis compares connections by their parameters,
    # so an expression on a new connection to the same file equals one on a closed
    # connection whose temporary table is gone
    key = (id(backend), expr.op())
    if key in _SHARED:
        _SHARED.move_to_end(key)
        return _SHARED[key][1]
    kept = expr.cache()
    _SHARED[key] = (backend, kept)  # holding the backend keeps its id from being reused
    while len(_SHARED) > SHARED_MAX:
        _SHARED.popitem(last=False)  # Ibis drops the temporary table once unreferenced
    return kept


#: results of :func:`built_once`: (name, date, the inputs' connections and expressions)
#: -> (connection, the :func:`shared` result), most recently used last
_BUILT: OrderedDict = OrderedDict()


def built_once(
    name: str, when, inputs: Sequence[Table], build: Callable[[], Table], most: int | None = None
) -> Table:
    """``shared(build())``, built only once per ``name``, date ``when`` and ``inputs``
    (the tables ``build`` reads).

    Building a large expression (the allocation: joins, windows, a union) and looking it
    up by value costs milliseconds of pure Python each time; a report asks for the same
    month-end book hundreds of times. Later calls with the same inputs return the kept
    result without building anything. Inputs are told apart by their connection object
    as well as their expression; results that read a table :func:`inputs` loaded are
    built every time (their table is gone after the call).

    ``most``: at most that many results of ``name`` are kept (the most recently used),
    for results too large to keep a year of (a row per receivable); in any case at most
    :data:`SHARED_MAX` results of all names.
    """
    key = (name, pd.Timestamp(when), *identities(inputs))
    if key in _BUILT:
        _BUILT.move_to_end(key)
        return _BUILT[key][1]
    expr = build()
    result = shared(expr)
    if not _reads_loaded(expr):  # kept on its database (a loaded table is gone after the call)
        _BUILT[key] = (ibis.get_backend(result), result)
        same = [k for k in _BUILT if k[0] == name]
        for old in same[: max(len(same) - (most or SHARED_MAX), 0)]:
            _forget(old)
        while len(_BUILT) > SHARED_MAX:
            _forget(next(iter(_BUILT)))
    return result


def written_in_parts(
    build: Callable[[object, object], Mapping[str, Table]], ranges, con
) -> dict[str, Table]:
    """``build(low, high)`` (results by name) for each ``(low, high)`` of ``ranges``, each
    result written to a Parquet file of its own in ``con``'s scratch folder
    (:func:`scratch_folder`) one part after the other, and each name's files read back as
    one table of ``con``.

    For results about customers that do not fit the engine's memory in one query: each
    part (a range of customers, :func:`collect_kit.snapshot.customer_ranges`) is
    computed within bounded memory; results computed together (a snapshot and the books
    of its date) share what the part keeps (its allocation), which is dropped once the
    part is written. Each name names its folder.
    """
    folder = Path(tempfile.mkdtemp(prefix="parts-", dir=scratch_folder(con)))
    names = None
    for i, (low, high) in enumerate(ranges):
        before = set(_BUILT)
        results = build(low, high)
        names = list(results)
        for name, result in results.items():
            (folder / name).mkdir(exist_ok=True)
            write_parquet(result, folder / name / f"part-{i:04d}.parquet")
        del results
        for key in set(_BUILT) - before:  # what the part kept (its allocation) is done
            _forget(key)
    out = {}
    for name in names:
        out[name] = con.read_parquet(str(folder / name / "part-*.parquet"))
        _PART_FOLDERS[out[name].op()] = folder / name
    return out


#: the folder of part files each table :func:`written_in_parts` returned reads (by the
#: table's operation), for :func:`save_parquet`
_PART_FOLDERS: dict = {}


def save_parquet(expr: Table, path: str | os.PathLike, what: str = "file") -> Path:
    """Write ``expr``'s rows to ``path`` as Parquet, whole or not at all, computed on its
    engine (``what`` names it in errors, :func:`files.write_atomic`).

    When ``expr`` is the read of the part files of :func:`written_in_parts` (a result
    about customers of a large book), those files are moved to ``path``, which is then a
    folder of them, instead of being written again: at 10 M customers, rewriting a
    snapshot and its books took 13.5 s per date. Moved, they are gone from where ``expr``
    read them: read ``path`` instead (:func:`read_parquet` reads either form). When
    another process has put a folder at ``path`` meanwhile, it is kept: it holds the same
    result.
    """
    path = Path(path)
    parts = _PART_FOLDERS.pop(expr.op(), None)
    if parts is None or not parts.is_dir():
        return files.write_atomic(path, lambda tmp: write_parquet(expr, tmp), what)
    tmp = files.temporary_name(path)
    try:
        shutil.move(parts, tmp)
        if path.is_file():
            path.unlink()
        os.replace(tmp, path)
    except OSError as exc:
        if not path.is_dir():
            raise files.access_error(exc, path, what) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return path


def read_parquet(con, path: str | os.PathLike) -> Table:
    """The Parquet file at ``path``, or the part files of the folder at ``path``
    (:func:`save_parquet`), as a table of ``con``."""
    path = Path(path)
    return con.read_parquet(str(path / "*.parquet") if path.is_dir() else str(path))


def forget_built(name: str) -> None:
    """Drop every result :func:`built_once` keeps under ``name`` or a name that starts
    with it and a space (``"allocation 2026-08-31 2026-09-30"``), for a process done with
    them (the report runner, once the snapshots and books are written)."""
    for key in [k for k in _BUILT if k[0] == name or k[0].startswith(name + " ")]:
        _forget(key)


def _forget(key) -> None:
    """Drop the result :func:`built_once` keeps under ``key``, and its :func:`shared` entry."""
    _backend, result = _BUILT.pop(key)
    for k in [k for k, (_b, t) in _SHARED.items() if t is result]:
        del _SHARED[k]


def keep_built(name: str, when, inputs: Sequence[Table], result: Table) -> None:
    """Make ``result`` (e.g. a table read from a file written earlier) what
    :func:`built_once` returns for ``name``, ``when`` and ``inputs`` from now on."""
    _BUILT[(name, pd.Timestamp(when), *identities(inputs))] = (ibis.get_backend(result), result)
    while len(_BUILT) > SHARED_MAX:
        _forget(next(iter(_BUILT)))


def kept(name: str, when, inputs: Sequence[Table]) -> Table | None:
    """The result :func:`built_once` keeps for ``name``, ``when`` and ``inputs``, or None
    when it has not built it (nothing is built here)."""
    found = _BUILT.get((name, pd.Timestamp(when), *identities(inputs)))
    return None if found is None else found[1]


def identities(tables: Sequence[Table]) -> list[tuple]:
    """Each table's connections (by object) and expression, as a hashable key (tables
    equal by value on another connection differ)."""
    return [(tuple(id(b) for b in t._find_backends()[0]), t.op()) for t in tables]


def _reads_loaded(expr: Table) -> bool:
    """Whether ``expr`` reads a temporary table :func:`inputs` loaded."""
    return any(t.name.startswith(LOADED_PREFIX) for t in expr.op().find(ops.DatabaseTable))


def disconnect(con) -> None:
    """Close ``con`` after dropping what :func:`shared` keeps on it.

    Close connections this way, not with ``con.disconnect()``: Ibis treats two connections
    to the same file as equal and reuses its table expressions, so a kept result of a
    closed connection would hand later connections to that file expressions bound to the
    closed one ("Connection already closed").
    """
    for kept in (_SHARED, _BUILT):
        for key in [k for k, (backend, _) in kept.items() if backend is con]:
            del kept[key]
    if con.name != "pyspark":
        # its temporary tables go with it: a cached table still referenced (by a
        # traceback, at interpreter exit) is not dropped later on a closed connection
        for entry in getattr(con, "_cache_name_to_entry", {}).values():
            entry.finalizer.detach()
        getattr(con, "_cache_name_to_entry", {}).clear()
        getattr(con, "_cache_op_to_entry", {}).clear()
    con.disconnect()  # a no-op on Spark: the process's session outlives a portfolio


def interrupt(con) -> None:
    """Stop the query running on ``con``: DuckDB interrupts it (the query raises
    ``duckdb.InterruptException``); Spark cancels the session's jobs.

    Needed after a signal even though DuckDB's Python client raises when a signal handler
    does: it leaves the query's tasks running, and the next statement on the connection
    (closing it included) first works them off to the end."""
    if is_spark(con):
        con._session.sparkContext.cancelAllJobs()
    else:
        con.con.interrupt()


def release_shared() -> None:
    """Drop every result :func:`shared` and :func:`built_once` keep."""
    _BUILT.clear()
    _SHARED.clear()


#: most rows :func:`pull` brings back from the engine: computations pull aggregates
#: (a row per segment, bucket, month or channel), never a row per customer
MAX_PULL_ROWS = 10_000


def pull(
    expr: Table, what: str = "the result", max_rows: int | None = None, parts: int = 1
) -> pd.DataFrame:
    """Execute ``expr`` on its engine and return it as a pandas DataFrame of NumPy dtypes.

    Fetched through Arrow: numbers come back as int64 / float64 (float64 with NaN where a
    value is missing, also for integer columns with missing values; decimals as
    float64), dates and timestamps as ``datetime64[ns]``, text as pandas' text dtype.
    At most ``max_rows`` rows (default :data:`MAX_PULL_ROWS`): the query asks for one
    more, and a larger result raises :class:`ResultTooLargeError` naming ``what``
    instead of filling the memory. ``parts``: ``expr`` is a union of that many
    aggregates, each held to that limit (the limit is multiplied by it).
    """
    max_rows = (MAX_PULL_ROWS if max_rows is None else max_rows) * parts
    arrow = expr.limit(max_rows + 1).to_pyarrow()
    if arrow.num_rows > max_rows:
        raise ResultTooLargeError(
            f"{what}: more than {max_rows:,} rows would come back from the engine; "
            "aggregate by fewer or coarser columns (a breakdown needs a column with few values)"
        )
    return numpy_frame(arrow)


def numpy_frame(arrow: pa.Table) -> pd.DataFrame:
    """An Arrow table as pandas with NumPy dtypes (see :func:`pull`)."""
    columns = []
    for col in arrow.columns:
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if pa.types.is_decimal(col.type):
            col = col.cast(pa.float64())
        columns.append(col)
    plain = pa.Table.from_arrays(columns, names=arrow.column_names)
    return plain.to_pandas(date_as_object=False, coerce_temporal_nanoseconds=True)


def read_file(con, path: Path, fmt: str, encoding: str = "utf-8") -> Table:
    """Register a CSV (all columns read as text, typed later by validation; ``encoding``
    ``utf-8``, ``utf-16`` or ``latin-1``) or Parquet file on a DuckDB connection.

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


class DataSource:
    """Where one portfolio's tables come from, read onto the engine that computes them.

    ``engine`` ``duckdb``: the ``database`` file's tables (read-only) and the files, read
    in place. ``spark``: Parquet files are read by Spark; CSV files and the tables of a
    DuckDB ``database`` are first written as Parquet by DuckDB into the Spark session's
    folder (data enters Spark as Parquet, never through pandas); without a ``database``,
    a ``table:`` is a table of Spark's catalog (a lakehouse table).
    """

    def __init__(
        self,
        engine: str = "duckdb",
        database: Path | None = None,
        spark: SparkConfig | None = None,
        duckdb: DuckDBConfig | None = None,
    ):
        self.database = database
        spark_db = None if engine == "spark" else database
        self.connection = connect(engine, spark_db, spark=spark, duckdb=duckdb)
        #: on Spark, the DuckDB database file the tables are staged from
        self._duck = connect("duckdb", database) if engine == "spark" and database else None

    def table_names(self) -> set[str]:
        """The tables ``table:`` may name."""
        if self._duck is not None:
            return set(self._duck.list_tables())
        if is_spark(self.connection) or self.database is not None:
            return set(self.connection.list_tables())
        return set()

    def table(self, name: str) -> Table:
        """The table ``name`` on the computing engine."""
        if self._duck is not None:
            return self._stage(self._duck.table(name))
        return self.connection.table(name)

    def read_file(self, path: Path, fmt: str, encoding: str = "utf-8") -> Table:
        """A CSV or Parquet file on the computing engine (see :func:`read_file`)."""
        if not is_spark(self.connection):
            return read_file(self.connection, path, fmt, encoding)
        if fmt == "parquet":
            return self.connection.read_parquet(str(path))
        staging = _duckdb_connect()
        try:
            return self._stage(read_file(staging, path, fmt, encoding))
        finally:
            staging.disconnect()

    def _stage(self, table: Table) -> Table:
        """``table`` (on DuckDB) written as Parquet and read by Spark."""
        folder = spark_folder() / "staged"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{uuid.uuid4().hex}.parquet"
        table.to_parquet(path)
        return self.connection.read_parquet(str(path))

    def interrupt(self) -> None:
        """Stop the queries running on the source's connections (:func:`interrupt`)."""
        for con in (self.connection, self._duck):
            if con is not None:
                interrupt(con)

    def close(self) -> None:
        """Close the connections (the process's Spark session stays up)."""
        if self._duck is not None:
            disconnect(self._duck)
        disconnect(self.connection)


def write_parquet(expr: Table, path: str | os.PathLike) -> None:
    """Write ``expr``'s rows into one Parquet file at ``path``, computed on its engine.

    Spark writes a folder of part files: its single part file (``repartition(1)``) is
    moved to ``path``, so a result reads the same wherever it was computed. Rows do not
    pass through Python.
    """
    con = ibis.get_backend(expr)
    if not is_spark(con):
        expr.to_parquet(path)
        return
    folder = spark_folder() / "out" / uuid.uuid4().hex
    try:
        con._session.sql(con.compile(expr)).repartition(1).write.parquet(str(folder))
        (part,) = folder.glob("part-*.parquet")
        shutil.move(part, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_database(path: str | os.PathLike, tables: Mapping[str, pa.Table | pd.DataFrame]) -> Path:
    """Write ``tables`` into a new DuckDB file at ``path``, atomically.

    The file is built under a temporary name next to ``path`` and renamed into place only
    when every table is written, so a reader never sees a half-built database and a failed
    build leaves the previous file untouched.
    """
    path = Path(path)
    if path.parent.exists() and not path.parent.is_dir():
        raise ConfigError(f"cannot create the folder '{path.parent}': a file is in the way")
    files.make_folder(path.parent, "folder")

    def build(tmp: Path) -> None:  # DuckDB creates the file itself
        try:
            con = _duckdb_connect(str(tmp), read_only=False)
            for name, table in tables.items():
                con.create_table(name, table)
            con.disconnect()
        finally:
            Path(f"{tmp}.wal").unlink(missing_ok=True)

    return files.write_atomic(path, build, "database")
