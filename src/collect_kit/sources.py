"""Load a portfolio from CSV, Parquet or a DuckDB file, map it onto the canonical model, validate it.

A sources YAML (``configs/sources/sample.yaml`` is the worked example) says where each table
is, how the user's column names and category codes map onto canonical ones, the portfolio
currency, the data's extraction date and the orientation of the external score::

    portfolio: Cartera consumo
    currency: CLP
    extraction_date: 2026-10-31     # optional; default: the newest event date in the data
    score: {higher_is: safer}       # or riskier
    database: cartera.duckdb        # optional DuckDB file; tables default to canonical names
    engine: duckdb                  # or spark (then an optional spark: block, engine.SparkConfig)
    duckdb: {memory_limit: 8GB, temp_directory: spill}   # optional, engine.DuckDBConfig
    tables:
      customers:
        path: clientes.csv          # csv or parquet (by extension), or `table:` in the database
        columns: {customer_id: rut, customer_type: tipo}   # canonical: yours
        values:
          customer_type: {persona: person, empresa: company}
      contacts:
        path: gestiones.parquet
        values:
          channel: {llamada: call, correo: email}

Paths are resolved relative to the YAML file. Validation (:func:`validate`) collects every
problem before raising one :class:`~collect_kit.errors.DataValidationError`; nothing is
dropped or coerced silently. Checks run as aggregate queries on the engine.
"""

from __future__ import annotations

import datetime as dt
import os
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import ibis
import pandas as pd
from ibis.expr.types import Table
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from . import availability, engine, schema
from .engine import ENGINES, DuckDBConfig, SparkConfig
from .errors import ConfigError, DataValidationError, InvalidParameterError
from .fields import FIELD_TABLES, ROLLUPS, CustomField
from .fields import problems as fields_problems
from .periods import parse_month_end
from .yamlconfig import Label, VersionedConfig, display, folder_of, load_model

MAX_EXAMPLES = 5
#: snapshots a :class:`Portfolio` keeps on its engine (a report reads at most four dates)
KEPT_SNAPSHOTS = 4

_IBIS_TYPES = {
    "string": "string",
    "date": "date",
    "float": "float64",
    "int": "int64",
    "bool": "boolean",
}


# ------------------------------------------------------------------------- config


ENCODINGS = ("utf-8", "utf-16", "latin-1")


class ExtraColumn(BaseModel):
    """One ``extra:`` column of a table (see :mod:`collect_kit.fields`).

    ``type``: string, float, int, bool or date. ``rollup``: how a receivables, payments
    or contacts column becomes one value per customer (:data:`~collect_kit.fields.ROLLUPS`).
    ``as``: the name in the kit when the source name collides or is not a usable name.
    ``personal``: never leaves the engine. ``categories``: allowed codes (string columns).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    type: Literal["string", "float", "int", "bool", "date"]
    rollup: Literal[tuple(ROLLUPS)] | None = None  # type: ignore[valid-type]
    as_: str | None = Field(None, alias="as")
    personal: bool = False
    categories: list[str] | None = None
    description: str = ""


class TableSource(BaseModel):
    """Where one table comes from and how its names and codes map onto canonical ones.

    ``encoding``: of a CSV file (``utf-8``, ``utf-16`` or ``latin-1``; default utf-8).
    ``extra``: the team's own columns to carry (source column name -> :class:`ExtraColumn`).
    """

    model_config = ConfigDict(extra="forbid")
    path: str | None = None
    table: str | None = None
    encoding: Literal["utf-8", "utf-16", "latin-1"] = "utf-8"
    columns: dict[str, str] = {}
    values: dict[str, dict[str, str]] = {}
    extra: dict[str, ExtraColumn] = {}


class ContactQualityConfig(BaseModel):
    """``contact_quality:``: check phones for ``region`` (ISO 3166, e.g. CL) and e-mails in
    ``collect-kit validate``; flag contact points shared by more than ``max_customers``."""

    model_config = ConfigDict(extra="forbid")
    region: str
    max_customers: int = 5

    @field_validator("region")
    @classmethod
    def _region(cls, v: str) -> str:
        import phonenumbers

        if v.upper() not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"'{v}' is not a region phonenumbers knows (ISO 3166 code such as CL)")
        return v.upper()

    @field_validator("max_customers")
    @classmethod
    def _max(cls, v: int) -> int:
        if v < 1:
            raise ValueError(f"must be >= 1, got {v}")
        return v


class ScoreConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    higher_is: Literal["riskier", "safer"]


class SourcesConfig(VersionedConfig):
    """The sources YAML, validated.

    ``max_amount``: the largest plausible amount in the portfolio currency (default 10^12,
    so CLP books pass and an overflow such as ``1e400`` does not); larger amounts are
    validation problems.
    """

    model_config = ConfigDict(extra="forbid")
    portfolio: str | Label  # its name; or one per language: {en: ..., es: ...}
    currency: str
    extraction_date: dt.date | None = None
    max_amount: float = 1e12
    dpd_buckets: list[int] | None = None
    contact_quality: ContactQualityConfig | None = None
    score: ScoreConfig | None = None
    database: str | None = None
    #: the query engine that computes: duckdb (in-process) or spark (``spark:`` settings)
    engine: Literal[ENGINES] = "duckdb"  # type: ignore[valid-type]
    spark: SparkConfig | None = None
    duckdb: DuckDBConfig | None = None  # DuckDB's memory limit, spill folder and threads
    tables: dict[str, TableSource] = {}

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if len(v) != 3 or not v.isalpha() or not v.isupper():
            raise ValueError(f"must be an ISO 4217 code such as CLP or EUR (got '{v}')")
        return v

    @field_validator("dpd_buckets")
    @classmethod
    def _dpd_buckets(cls, v: list[int] | None) -> list[int] | None:
        if v is not None:
            from .snapshot import DpdBuckets

            try:
                DpdBuckets(tuple(v))
            except InvalidParameterError as exc:
                raise ValueError(str(exc).removeprefix("dpd_buckets: ")) from None
        return v

    @field_validator("max_amount")
    @classmethod
    def _max_amount(cls, v: float) -> float:
        if not 0 < v < float("inf"):
            raise ValueError(f"must be a positive amount in the portfolio currency, got {v}")
        return v

    @field_validator("tables")
    @classmethod
    def _tables(cls, v: dict[str, TableSource]) -> dict[str, TableSource]:
        for name, src in v.items():
            if name not in schema.TABLES:
                raise ValueError(f"'{name}' is not a canonical table ({', '.join(schema.TABLES)})")
            spec = schema.TABLES[name]
            for canon in [*src.columns, *src.values]:
                if canon not in spec.column_names:
                    raise ValueError(
                        f"{name}: '{canon}' is not a column of {name} ({', '.join(spec.column_names)})"
                    )
            for canon in src.values:
                if spec.column(canon).categories is None:
                    raise ValueError(f"{name}.values: '{canon}' is not a categorical column")
            if src.path and src.table:
                raise ValueError(f"{name}: give either path or table, not both")
            if src.extra and name not in FIELD_TABLES:
                raise ValueError(
                    f"{name}.extra: extra columns are read from {', '.join(FIELD_TABLES)} only"
                )
        return v

    @model_validator(mode="after")
    def _fields(self) -> SourcesConfig:
        # every field's name must be free in its table and in the snapshot it joins
        from .snapshot import FEATURES

        taken = {f: f"the snapshot column '{f}'" for f in FEATURES}
        for table, spec in schema.TABLES.items():
            for c in spec.columns:
                taken.setdefault(c.name, f"the canonical column '{table}.{c.name}'")
        for f in self.fields:
            own = {
                c: f"the canonical column '{f.table}.{c}'"
                for c in schema.TABLES[f.table].column_names
            }
            where = own | (taken if not f.personal else {})
            bad = fields_problems(f, where)
            if bad:
                raise ValueError(f"tables.{f.table}.extra.{f.source}: " + "; ".join(bad))
            if not f.personal:
                taken[f.name] = f"the extra column '{f.table}.extra.{f.source}'"
        return self

    @property
    def fields(self) -> list[CustomField]:
        """The declared extra columns, in the order of the YAML."""
        return [
            CustomField(
                table=name,
                name=x.as_ or column,
                source=column,
                dtype=x.type,
                rollup=x.rollup,
                personal=x.personal,
                categories=tuple(x.categories) if x.categories is not None else None,
                description=x.description,
            )
            for name, src in self.tables.items()
            for column, x in src.extra.items()
        ]


def read_config(path: str | os.PathLike) -> SourcesConfig:
    """Parse and check a sources YAML; raise :class:`ConfigError` naming the file and field."""
    return load_model(path, SourcesConfig, "sources file")


# ------------------------------------------------------------------------- report


@dataclass(frozen=True)
class Problem:
    """One failed check: where (file, table, column), what, how many rows, example ids."""

    table: str
    file: str
    column: str
    check: str
    rows: int
    expected: str
    examples: tuple[str, ...] = ()

    def __str__(self) -> str:
        ex = f" e.g. {', '.join(self.examples)}" if self.examples else ""
        return f"{self.file} [{self.table}.{self.column}] {self.check}: {self.rows} row(s); expected {self.expected}.{ex}"


@dataclass
class ValidationReport:
    """Every problem found in one load, plus information lines (unmapped columns...)."""

    problems: list[Problem] = field(default_factory=list)
    info: list[str] = field(default_factory=list)
    #: findings worth a look that do not make the data unusable (reported balances that
    #: differ from the computed ones...)
    warnings: list[Problem] = field(default_factory=list)
    #: optional inputs the source leaves out ("table" or "table.column") -> what that
    #: disables (see :mod:`collect_kit.availability`)
    absent: dict[str, str] = field(default_factory=dict)
    #: False when the value and row checks were skipped (``load(checks=False)``)
    checked: bool = True

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_frame(self) -> pd.DataFrame:
        """One row per problem: table, file, column, check, rows, expected, examples."""
        cols = ["table", "file", "column", "check", "rows", "expected", "examples"]
        return pd.DataFrame([[getattr(p, c) for c in cols] for p in self.problems], columns=cols)

    def __str__(self) -> str:
        return self.text(examples=True)

    def text(self, examples: bool = True) -> str:
        """The readable report; ``examples=False`` leaves out example ids (for run folders)."""
        if self.ok:
            head = "Validation passed: 0 problems."
        else:
            head = f"Validation failed: {len(self.problems)} problem(s)."
        shown = self.problems if examples else [replace(p, examples=()) for p in self.problems]
        lines = [head, *(f"  - {p}" for p in shown)]
        if self.warnings:
            warned = self.warnings if examples else [replace(p, examples=()) for p in self.warnings]
            lines.append("Warnings:")
            lines += [f"  - {p}" for p in warned]
        if self.info:
            lines.append("Information:")
            lines += [f"  - {i}" for i in self.info]
        return "\n".join(lines)


# ---------------------------------------------------------------------- portfolio


@dataclass
class Portfolio:
    """A loaded portfolio: canonical Ibis tables on one connection, plus its metadata."""

    name: str
    currency: str
    extraction_date: pd.Timestamp
    score_higher_is: str | None
    tables: dict[str, Table]
    report: ValidationReport
    connection: object = None
    #: the team's own columns declared under ``extra:`` (:mod:`collect_kit.fields`)
    fields: tuple[CustomField, ...] = ()
    #: the days-past-due bucket edges (``dpd_buckets:``; None: the default)
    dpd_edges: tuple[int, ...] | None = None
    #: ``contact_quality:`` as (region, max customers per contact point), or None
    contact_quality: tuple[str, int] | None = None
    #: the portfolio's name by language when the sources YAML gives one per language
    labels: dict[str, str] = field(default_factory=dict)
    #: where the tables are read from (:class:`collect_kit.engine.DataSource`)
    source: engine.DataSource | None = field(default=None, repr=False)
    _first_date: pd.Timestamp | None = field(default=None, repr=False)
    _contact_flags_path: Path | None = field(default=None, repr=False)
    #: table name -> (its schema, its digest) computed with the validation's checks, for
    #: :func:`collect_kit.snapshot.fingerprint` (``digests=``)
    digests: dict[str, tuple] = field(default_factory=dict, repr=False)
    #: snapshots computed or read once (:meth:`snapshot`), most recently used last
    _snapshots: OrderedDict = field(default_factory=OrderedDict, repr=False)
    #: Parquet files of snapshots (:meth:`read_snapshots`): month end -> path
    _snapshot_files: dict = field(default_factory=dict, repr=False)

    @property
    def absent(self) -> dict[str, str]:
        """Optional inputs the source leaves out -> what that disables. Absent tables are
        not in :attr:`tables`; absent optional columns are not in their table (the
        kit's functions add them as nulls and say which figures are not available)."""
        return self.report.absent

    def interrupt(self) -> None:
        """Stop the queries running on the portfolio's connections (a run stopped by a
        signal; :func:`collect_kit.engine.interrupt`)."""
        if self.source is not None:
            self.source.interrupt()
        else:
            engine.interrupt(self.connection)

    def close(self) -> None:
        """Close the portfolio's connections (and drop what the engine kept on them)."""
        self._snapshots.clear()
        if self.source is not None:
            self.source.close()
        else:
            engine.disconnect(self.connection)

    @property
    def dpd_buckets(self):
        """The portfolio's :class:`~collect_kit.snapshot.DpdBuckets`."""
        from .snapshot import DEFAULT_DPD, DpdBuckets

        return DpdBuckets(self.dpd_edges) if self.dpd_edges else DEFAULT_DPD

    def snapshot(self, as_of) -> Table:
        """The snapshot as of ``as_of`` (:func:`collect_kit.snapshot.snapshot` with this
        portfolio's fields, buckets and contact checks), an Ibis table on its engine.
        The date's month-end book and open receivables (:data:`kpis.BESIDE_SNAPSHOTS`)
        are computed with it, from the same allocation, and kept for the KPIs.

        Computed once per date and kept on the engine (the :data:`KEPT_SNAPSHOTS` most
        recently used): the segments of a month end, their inflow and the report's
        sections read the same few dates. A book of more than twice
        :data:`~collect_kit.snapshot.PART_CUSTOMERS` customers is computed one range of its
        customers at a time into Parquet files in the engine's scratch folder
        (:func:`~collect_kit.snapshot.per_customer`), so its memory stays bounded. A
        date given a file by
        :meth:`read_snapshots` is read from it instead.
        """
        when = pd.Timestamp(as_of)
        if when not in self._snapshots:
            self.compute_snapshots([when])
        self._snapshots.move_to_end(when)
        return self._snapshots[when]

    def compute_snapshots(self, dates) -> None:
        """Compute the snapshots of ``dates`` that :meth:`snapshot` does not keep yet,
        together, and keep them as it does (a date given a file by :meth:`read_snapshots`
        is read from it instead).

        The dates share one allocation (:func:`~collect_kit.snapshot.allocated_each`),
        and in parts each part writes every date's snapshot and books before its
        allocation is dropped: a report run's three month ends (at 1 M customers, their
        allocations take 25.9 s together against 37.8 s one by one). At most
        :data:`KEPT_SNAPSHOTS` dates are kept: ask for no more at once."""
        if len(set(dates)) > KEPT_SNAPSHOTS:
            raise InvalidParameterError(
                f"dates: at most {KEPT_SNAPSHOTS} snapshots at once (got {len(set(dates))})"
            )
        from .kpis import BESIDE_SNAPSHOTS, keep_beside, results_beside
        from .snapshot import allocated_for, per_customer_together, snapshot

        todo = []
        for when in dict.fromkeys(pd.Timestamp(d) for d in dates):
            path = self._snapshot_files.get(when)
            if when in self._snapshots:
                continue
            if path is not None and Path(path).exists():
                kept = engine.read_parquet(self.connection, path)
                if "p_pay" in kept.columns:  # a segmentation's risk model adds its own
                    kept = kept.drop("p_pay")
                self._keep(when, kept)
            else:
                todo.append(when)
        if not todo:
            return
        options = self.snapshot_options  # with contact_flags, a table per customer

        def build(t: dict) -> dict[str, Table]:
            flags = t.pop("contact_flags")
            allocated_for(t, todo)
            out = {}  # by name and date (in parts, the name of each result's folder)
            for when in todo:
                day = when.date()
                out[f"snapshot-{day}"] = snapshot(t, when, **{**options, "contact_flags": flags})
                # the date's books read the allocation the snapshot keeps (in parts, it
                # is dropped once the part is written)
                out |= {f"{n}-{day}": r for n, r in results_beside(t, when).items()}
            return out

        tables = {**self.tables, "contact_flags": options["contact_flags"]}
        results = per_customer_together(build, tables)
        for when in todo:
            day = when.date()
            beside = {n: results[f"{n}-{day}"] for n in BESIDE_SNAPSHOTS if f"{n}-{day}" in results}
            keep_beside(self.tables, when, beside)
            self._keep(when, engine.shared(results[f"snapshot-{day}"]))

    def _keep(self, when: pd.Timestamp, snap: Table) -> None:
        """Keep ``snap`` as the snapshot of ``when`` (the :data:`KEPT_SNAPSHOTS` most
        recently used)."""
        self._snapshots[when] = snap
        self._snapshots.move_to_end(when)
        while len(self._snapshots) > KEPT_SNAPSHOTS:
            self._snapshots.popitem(last=False)

    def read_snapshots(self, files: dict) -> None:
        """Read the snapshots of these dates from Parquet files (month end -> path) from
        now on: a report run's snapshot cache, keyed by this very data
        (:func:`collect_kit.reports.cache.cached_snapshots`). A ``p_pay`` column in them
        is left out. The month-end book and the open receivables cached beside a file
        (:data:`kpis.BESIDE_SNAPSHOTS`) are read from there too."""
        from .kpis import read_beside

        for when, path in files.items():
            when = pd.Timestamp(when)
            if self._snapshot_files.get(when) == Path(path):
                continue  # read from there already
            self._snapshot_files[when] = Path(path)
            self._snapshots.pop(when, None)
            read_beside(self.tables, when, Path(path))

    @property
    def snapshot_options(self) -> dict:
        """What :func:`collect_kit.snapshot.snapshot` needs from the sources YAML besides
        the tables (:meth:`snapshot` applies them)."""
        return {
            "fields": self.fields,
            "dpd_buckets": self.dpd_buckets,
            "contact_flags": self.contact_flags(),
        }

    def contact_flags(self):
        """The phone and e-mail checks of ``collect-kit validate`` for exactly this data
        (an Ibis table on the portfolio's connection), or None when there are none: the
        snapshot's has_valid_phone / has_valid_email then fall back to a pattern."""
        if self.contact_quality is None or "customers" not in self.tables:
            return None
        from .contact_quality import cache_paths

        if self._contact_flags_path is None:
            self._contact_flags_path = cache_paths(self.tables["customers"], *self.contact_quality)[
                0
            ]
        path = self._contact_flags_path
        return self.connection.read_parquet(str(path)) if path.exists() else None

    def check_contacts(self):
        """Run the phone and e-mail checks (``contact_quality:``) and cache them; add
        their warnings to :attr:`report`. For ``collect-kit validate``, never a report run."""
        from .contact_quality import check_and_cache, warnings_of

        if self.contact_quality is None or "customers" not in self.tables:
            return None
        result = check_and_cache(self.tables["customers"], *self.contact_quality)
        self.report.warnings += warnings_of(result, "customers")
        return result

    def frame(self, name: str) -> pd.DataFrame:
        """Return one canonical table as pandas (for small tables or tests)."""
        return self.tables[name].to_pandas()

    @property
    def first_date(self) -> pd.Timestamp | None:
        """The data's first date: the earliest receivable issue date, or for a book given
        as an extract the date of its first extract (None without any)."""
        if self._first_date is None:
            if "receivables" in self.tables:
                value = self.tables["receivables"].issued_at.min().execute()
            else:
                value = self.tables["extract"].extracted_at.min().execute()
            self._first_date = None if value is None or pd.isna(value) else pd.Timestamp(value)
        return self._first_date

    def title(self, language: str) -> str:
        """The portfolio's name in ``language`` (its only name when it has one)."""
        return display(self.labels, language, self.name)

    def month_end(self, as_of, name: str = "as_of") -> pd.Timestamp:
        """``as_of`` (``YYYY-MM``, a month-end ``YYYY-MM-DD``, None/"latest") checked
        against this data: see :func:`collect_kit.periods.parse_month_end`."""
        return parse_month_end(
            as_of, name, extraction_date=self.extraction_date, first_date=self.first_date
        )


def load(
    config_path: str | os.PathLike,
    database: str | os.PathLike | None = None,
    validate: bool = True,
    checks: bool = True,
    engine_name: str | None = None,
    spark: engine.SparkConfig | None = None,
) -> Portfolio:
    """Load and validate the portfolio described by a sources YAML.

    ``database`` overrides the YAML's ``database`` path (used by the demo and the packaged
    sample config). Raises :class:`DataValidationError` listing every problem unless
    ``validate`` is False (then ``Portfolio.report`` still holds what was found).
    ``checks=False`` skips the scans of every value and row (types, ranges, codes, keys,
    references) and keeps the structural ones (tables, columns, mapping): for a process
    that reads data another step of the same run has just validated (a report's
    notebooks); ``Portfolio.report.checked`` then says so. ``engine_name`` and ``spark``
    override the YAML's ``engine`` and ``spark`` (a report config's, or one run's).
    """
    config_path = Path(config_path)
    cfg = read_config(config_path)
    if engine_name is not None and engine_name not in engine.ENGINES:
        raise InvalidParameterError(
            f"engine: '{engine_name}' is not one of {', '.join(engine.ENGINES)}"
        )
    base = folder_of(config_path)

    def resolve(p: str | os.PathLike) -> Path:
        p = Path(p)
        return p if p.is_absolute() else Path(os.path.normpath(base / p))

    db_path = (
        Path(database)
        if database is not None
        else (resolve(cfg.database) if cfg.database else None)
    )
    with engine.reading(db_path or config_path, "database file" if db_path else "sources file"):
        duck = cfg.duckdb
        if duck is not None and duck.temp_directory:
            duck = duck.model_copy(update={"temp_directory": str(resolve(duck.temp_directory))})
        source = engine.DataSource(engine_name or cfg.engine, db_path, spark or cfg.spark, duck)
        existing = source.table_names()
    con = source.connection
    report = ValidationReport(checked=checks)
    typed: dict[str, Table] = {}
    wide: dict[str, Table] = {}  # typed + parse flags, for the checks
    parsed: dict[str, dict] = {}  # the parse checks of each table
    origins: dict[str, str] = {}
    files: dict[str, Path] = {}
    specs: dict[str, schema.TableSpec] = {}  # canonical specs plus the declared fields
    has_extract = "extract" in cfg.tables
    for name, spec in schema.TABLES.items():
        src = cfg.tables.get(name, TableSource())
        # with an extract the event tables are optional; without one, so is the extract
        optional = spec.may_be_empty or (has_extract and name in schema.EVENT_TABLES)
        if src.path:
            path = resolve(src.path)
            origin = str(src.path)
            fmt = path.suffix.lower().lstrip(".")
            if fmt not in ("csv", "parquet"):
                raise ConfigError(
                    f"{config_path}: tables.{name}.path: '{src.path}' is not a .csv or .parquet file"
                )
            if not path.is_file():
                found = "a folder" if path.is_dir() else "nothing"
                report.problems.append(
                    Problem(
                        name, origin, "*", "missing_file", 0,
                        f"an existing CSV or Parquet file (found {found} at {path})",
                    )
                )  # fmt: skip
                continue
            files[name] = path
            with _reading(path, name, src):
                raw = source.read_file(path, fmt, src.encoding)
        else:
            table_name = src.table or name
            origin = f"{db_path.name if db_path else '(no database)'}:{table_name}"
            if table_name not in existing:
                if optional and name not in cfg.tables:
                    # the extract is one of two ways to give a book; adjustments only
                    # change balances computed from events
                    if name != "extract" and not (has_extract and name == "adjustments"):
                        _note_absent(report, name)
                    continue
                report.problems.append(
                    Problem(
                        name,
                        origin,
                        "*",
                        "missing_table",
                        0,
                        f"a table '{table_name}' with {spec.grain}",
                    )
                )
                continue
            with _reading(db_path, name, src):
                raw = source.table(table_name)
        origins[name] = origin
        if name == "extract":
            raw = _extract_defaults(raw, src, cfg)
        spec = _with_fields(spec, cfg.fields)
        specs[name] = spec
        with _reading(files.get(name, db_path), name, src):
            mapped = _map_and_type(raw, spec, src, origin, report, checks)
        if mapped is not None:
            typed[name], wide[name], parsed[name] = mapped

    if cfg.extraction_date:
        extraction = pd.Timestamp(cfg.extraction_date)
    else:
        with engine.reading(db_path or config_path, "portfolio data"):
            extraction = _newest_event(typed)
    if cfg.extraction_date is None:
        report.info.append(
            f"extraction_date not set: using the newest event date {extraction.date()}"
        )
    digests: dict[str, tuple] = {}
    for name in typed if checks else ():
        with _reading(files.get(name, db_path), name, cfg.tables.get(name, TableSource())):
            _row_checks(
                wide[name], parsed[name], specs[name], origins[name], extraction,
                cfg, typed, report, digests,
            )  # fmt: skip
    if checks and "receivables" in typed and "payments" in typed:
        with engine.reading(db_path or config_path, "portfolio data"):
            _reported_balances(typed, extraction, origins["receivables"], cfg.currency, report)
    names = {} if isinstance(cfg.portfolio, str) else dict(cfg.portfolio)
    portfolio = Portfolio(
        name=cfg.portfolio if isinstance(cfg.portfolio, str) else display(names, "en", "portfolio"),
        labels=names,
        currency=cfg.currency,
        extraction_date=extraction,
        score_higher_is=cfg.score.higher_is if cfg.score else None,
        tables=typed,
        report=report,
        digests=digests,
        connection=con,
        source=source,
        fields=tuple(cfg.fields),
        dpd_edges=tuple(cfg.dpd_buckets) if cfg.dpd_buckets else None,
        contact_quality=(
            (cfg.contact_quality.region, cfg.contact_quality.max_customers)
            if cfg.contact_quality
            else None
        ),
    )
    if validate and not report.ok:
        raise DataValidationError(report)
    return portfolio


def _reading(path, name: str, src: TableSource):
    """Engine and OS errors while reading one table's source become a DataAccessError."""
    hint = (
        f"set `encoding: latin-1` (or utf-16) under tables.{name} in the sources YAML"
        if src.path
        else ""
    )
    return engine.reading(path or "(no database)", f"{name} source", hint)


def _reported_balances(
    typed: dict[str, Table],
    extraction: pd.Timestamp,
    origin: str,
    currency: str,
    report: ValidationReport,
) -> None:
    """Compare ``receivables.reported_balance`` (when the source gives it) with the balance
    computed from the events at the extraction date; differences above 1 currency unit
    are a warning with their count, total and examples."""
    r = typed["receivables"]
    if "reported_balance" not in r.columns:
        return
    from .snapshot import allocate

    adjustments = typed.get("adjustments", engine.empty_table(schema.ADJUSTMENTS))
    b = allocate(r, typed["payments"], adjustments, extraction).balances()
    j = b.join(r.select("receivable_id", "reported_balance"), "receivable_id")
    gap = (j.reported_balance - j.balance).abs()
    bad = j.reported_balance.notnull() & (gap > 1.0)
    got = j.aggregate(rows=bad.sum(), money=gap.sum(where=bad)).to_pandas().iloc[0]
    rows = int(got["rows"] or 0)
    if not rows:
        return
    examples = j.filter(bad).order_by("receivable_id").select("receivable_id").limit(MAX_EXAMPLES)
    report.warnings.append(
        Problem(
            "receivables", origin, "reported_balance", "reported_balance_differs", rows,
            f"the balance computed from the events at {extraction.date()} within 1 {currency} "
            f"(the differences add up to {float(got['money']):,.2f} {currency})",
            tuple(examples.to_pandas().receivable_id),
        )
    )  # fmt: skip


def _extract_defaults(raw: Table, src: TableSource, cfg: SourcesConfig) -> Table:
    """An extract without ``customer_id`` (each account is its own customer) or without
    ``extracted_at`` (one extract, dated the YAML's ``extraction_date``) gets them."""
    add = {}
    account = src.columns.get("account_id", "account_id")
    if (
        "customer_id" not in src.columns
        and "customer_id" not in raw.columns
        and account in raw.columns
    ):
        add["customer_id"] = raw[account]
    if (
        "extracted_at" not in src.columns
        and "extracted_at" not in raw.columns
        and cfg.extraction_date
    ):
        add["extracted_at"] = ibis.date(cfg.extraction_date)
    return raw.mutate(**add) if add else raw


def _note_absent(report: ValidationReport, name: str) -> None:
    """Record an optional input (table or ``table.column``) the source leaves out."""
    report.absent[name] = effect = availability.disables(name)
    kind = "optional column" if "." in name else "optional table"
    said = effect[len("none: ") :] if effect.startswith("none: ") else f"disables {effect}"
    report.info.append(f"{name}: not provided ({kind}); {said}")


def _with_fields(spec: schema.TableSpec, fields: list[CustomField]) -> schema.TableSpec:
    """``spec`` with the table's declared extra columns appended (validated like its own)."""
    extra = tuple(f.column() for f in fields if f.table == spec.name)
    return replace(spec, columns=spec.columns + extra) if extra else spec


def _map_and_type(
    raw: Table,
    spec: schema.TableSpec,
    src: TableSource,
    origin: str,
    report: ValidationReport,
    checks: bool = True,
):
    """Rename, map codes and cast to canonical types.

    Returns None when required columns are missing (recorded in ``report``), else
    ``(typed, wide, parse_checks)``: the canonical table, the same with one boolean column
    per parse check (unparsable dates, numbers, booleans; empty when ``checks`` is False),
    and those checks keyed like :func:`_row_checks`' own.
    """
    sources = {x.as_ or column: column for column, x in src.extra.items()}
    mapping = {c.name: sources.get(c.name) or src.columns.get(c.name, c.name) for c in spec.columns}
    present = set(raw.columns)
    # a column is missing when required, or when the YAML maps it and the source lacks it
    missing = [
        c
        for c in spec.columns
        if mapping[c.name] not in present and (c.required or c.name in src.columns)
    ]
    for c in missing:
        hint = f" (mapped from '{mapping[c.name]}')" if mapping[c.name] != c.name else ""
        report.problems.append(
            Problem(
                spec.name,
                origin,
                c.name,
                "missing_column",
                0,
                f"a column '{mapping[c.name]}'{hint} of type {c.dtype}",
            )
        )
    if missing:
        return None
    extra = sorted(present - set(mapping.values()))
    if extra:
        report.info.append(f"{origin}: unmapped columns ignored: {', '.join(extra)}")
    for c in spec.columns:
        if mapping[c.name] not in present:
            _note_absent(report, f"{spec.name}.{c.name}")

    cols = {}
    parse_checks = {}
    for c in spec.columns:
        target = _IBIS_TYPES[c.dtype]
        if mapping[c.name] not in present:
            continue  # absent optional column: left out (the kit's functions add nulls)
        col = raw[mapping[c.name]]
        dtype = col.type()
        if c.dtype == "string":
            value = col.cast("string")
            if c.name in src.values:
                value = value.substitute(src.values[c.name], else_=value)
        elif c.dtype == "date":
            if dtype.is_date():
                value = col
            elif dtype.is_timestamp():
                value = col.date()
                report.info.append(
                    f"{origin}: {mapping[c.name]} holds timestamps; their date part is used"
                )
            elif dtype.is_string():
                value = col.try_cast("date")
                parse_checks[(c.name, "unparsable_date", "dates as YYYY-MM-DD")] = (
                    col.notnull() & value.isnull()
                )
            else:
                parse_checks[(c.name, "wrong_type", f"a date, got {dtype}")] = col.notnull()
                value = ibis.null("date")
        elif c.dtype in ("float", "int"):
            if dtype.is_numeric():
                value = col.cast(target)
            elif dtype.is_string():
                value = col.try_cast(target)
                parse_checks[
                    (c.name, "not_a_number", f"a number ({c.dtype}) with '.' as decimal mark")
                ] = col.notnull() & value.isnull()
            else:
                parse_checks[(c.name, "wrong_type", f"a number, got {dtype}")] = col.notnull()
                value = ibis.null(target)
        else:  # bool
            if dtype.is_boolean():
                value = col
            else:
                value = col.cast("string").lower().try_cast("boolean")
                parse_checks[(c.name, "not_a_boolean", "true/false, yes/no or 1/0")] = (
                    col.notnull() & value.isnull()
                )
        cols[c.name] = value.cast(target)
    typed = raw.select(**cols)
    if not checks:
        return typed, typed, {}
    # the parse flags ride along with the typed columns, so the row checks count both in
    # one scan of the source (see _row_checks)
    flags = {f"_parse{i}": expr for i, expr in enumerate(parse_checks.values())}
    wide = raw.select(**cols, **flags)
    return typed, wide, {key: wide[f"_parse{i}"] for i, key in enumerate(parse_checks)}


def _count_and_report(
    t: Table,
    checks: dict,
    id_col,
    table: str,
    origin: str,
    report: ValidationReport,
    extra: dict | None = None,
) -> pd.Series:
    """Count the rows failing each boolean check in one query; fetch examples for failures.

    ``extra``: more aggregates computed in the same scan; returned with the counts.
    """
    names = {f"c{i}": key for i, key in enumerate(checks)}
    aggregates = {k: checks[key].sum() for k, key in names.items()} | (extra or {})
    counts = t.aggregate(**aggregates).to_pandas().iloc[0]
    for k, (column, check, expected) in names.items():
        rows = int(counts[k] or 0)
        if rows:
            ex = (
                t.filter(checks[(column, check, expected)])
                .select(i=id_col)
                .limit(MAX_EXAMPLES)
                .to_pandas()
            )
            report.problems.append(
                Problem(
                    table, origin, column, check, rows, expected, tuple(str(x) for x in ex["i"])
                )
            )
    return counts


def _newest_event(typed: dict[str, Table]) -> pd.Timestamp:
    newest = []
    for name, t in typed.items():
        for c in schema.TABLES[name].columns:
            if c.event_date and c.name in t.columns:
                value = t[c.name].max().execute()
                if value is not None and not pd.isna(value):
                    newest.append(pd.Timestamp(value))
    return max(newest) if newest else pd.Timestamp.today().normalize()


#: what a zero or negative amount usually means, per table (the hint of the problem line)
_NEGATIVE_HINTS = {
    "receivables": "a negative statement is a credit balance: load it as a payment on "
    "account or a credit note (adjustment), not as a negative receivable",
    "payments": "a reversed payment is an adjustment of kind reversal, not a negative payment",
    "adjustments": "the kind gives the direction (a reversal adds back): amounts are positive",
}
_ZERO_HINTS = {
    "receivables": "a receivable of 0 owes nothing: leave it out of the export",
    "payments": "a payment of 0 moves no money: leave it out of the export",
    "adjustments": "an adjustment of 0 changes nothing: leave it out of the export",
}


def _number_checks(col, c: schema.Column, table: str, max_amount: float) -> dict:
    """Finite, within ``max_amount`` (money) and above the column's minimum, as separate
    checks: non-finite, too large, zero and negative are different mistakes."""
    checks = {}
    nonfinite = col.isnan() | col.isinf()
    checks[(c.name, "not_finite", "a finite number (NaN, infinity and overflows such as 1e400 are not amounts)")] = nonfinite  # fmt: skip
    finite = col.notnull() & ~nonfinite
    if c.unit == "portfolio currency":
        checks[
            (c.name, "amount_too_large", f"at most {max_amount:,.0f} in absolute value "
             "(max_amount in the sources YAML, portfolio currency)")
        ] = finite & (col.abs() > max_amount)  # fmt: skip
    if c.min_value is None:
        return checks
    low = c.min_value
    if low == 0 and not c.min_inclusive:
        zero = _ZERO_HINTS.get(table, "")
        checks[(c.name, "zero_amount", "> 0" + (f" ({zero})" if zero else ""))] = finite & (
            col == 0
        )
    if low == 0:
        hint = _NEGATIVE_HINTS.get(table, "")
        op = ">=" if c.min_inclusive else ">"
        checks[(c.name, "negative_amount", f"{op} 0" + (f" ({hint})" if hint else ""))] = finite & (
            col < 0
        )
    else:
        bad = col < low if c.min_inclusive else col <= low
        op = ">=" if c.min_inclusive else ">"
        checks[(c.name, "out_of_range", f"{op} {low:g}")] = finite & bad
    return checks


def _report_unknown_references(
    t: Table, spec: schema.TableSpec, typed: dict[str, Table], origin: str,
    report: ValidationReport,
) -> None:  # fmt: skip
    """Count the rows of ``t`` whose value of a referencing column (``references``) is
    absent from its parent table (when that table is loaded), each in a query of its own
    over the two key columns, and report them with examples.

    An anti join: a parent key that repeats matches once, so no distinct is needed, and
    only the key and id columns pass through the join. Joined inside the table's check
    query, every column went through it: at 10 M customers the payments' two references
    cost 52 s there against 24 s so. Not ``isin`` of a subquery: inside an aggregate,
    Spark runs ``NOT IN (subquery)`` as a nested-loop join (rows x keys).
    """
    for c in spec.columns:
        if not c.references or c.name not in t.columns:
            continue
        parent_name, parent_col = c.references.split(".")
        if parent_name not in typed:
            continue
        parent = typed[parent_name]
        keys = parent.select(_ref=parent[parent_col])
        rows = t.select(_value=t[c.name], _id=t[spec.id_column]).filter(ibis._._value.notnull())
        unknown = rows.anti_join(keys, rows._value == keys._ref)
        count = int(unknown.count().to_pyarrow().as_py())
        if not count:
            continue
        ex = unknown.select(i="_id").limit(MAX_EXAMPLES).to_pandas()
        report.problems.append(
            Problem(
                spec.name, origin, c.name, "unknown_reference", count,
                f"a {parent_col} present in {parent_name}", tuple(str(x) for x in ex["i"]),
            )
        )  # fmt: skip


def _row_checks(
    t: Table,
    parse_checks: dict,
    spec: schema.TableSpec,
    origin: str,
    extraction: pd.Timestamp,
    cfg: SourcesConfig,
    typed: dict[str, Table],
    report: ValidationReport,
    digests: dict[str, tuple],
) -> None:
    """Nulls, numbers, codes, dates, keys, references and currency of one typed table.

    ``t`` is the typed table with the parse flags of :func:`_map_and_type` (``wide``);
    every check, parse checks included, is counted in one aggregate query, the
    references to other tables then in a query each (:func:`_report_unknown_references`).
    The aggregate query also sums the typed table's digest
    (:func:`collect_kit.snapshot.digest_sums`), kept in ``digests`` by table name with its
    schema: a report run's snapshot cache key then needs no second scan (4.7 s of 15 s at
    1 M customers).
    """
    from .snapshot import digest_sums, digest_text

    typed_table = typed[spec.name]
    parse_checks = {key: t[flag.get_name()] for key, flag in parse_checks.items()}
    id_col = t[spec.id_column]
    checks: dict[tuple[str, str, str], object] = {}
    limit = ibis.date(extraction.date())
    currency = cfg.currency
    present = [c for c in spec.columns if c.name in t.columns]
    for c in present:
        col = t[c.name]
        if not c.nullable:
            checks[(c.name, "missing_value", "a value on every row")] = col.isnull()
        if c.dtype == "float":
            checks.update(_number_checks(col, c, spec.name, cfg.max_amount))
        elif c.min_value is not None:
            bad = col < c.min_value if c.min_inclusive else col <= c.min_value
            op = ">=" if c.min_inclusive else ">"
            checks[(c.name, "out_of_range", f"{op} {c.min_value:g}")] = bad
        if c.categories:
            checks[
                (
                    c.name,
                    "unknown_code",
                    "one of " + ", ".join(c.categories) + " (map other codes under values:)",
                )
            ] = col.notnull() & ~col.isin(c.categories)
        if c.event_date:
            checks[
                (
                    c.name,
                    "after_extraction_date",
                    f"a date on or before the extraction date {extraction.date()}",
                )
            ] = col > limit
    for earlier, later in spec.date_order:
        checks[(later, f"{later}_before_{earlier}", f"{later} on or after {earlier}")] = (
            t[later] < t[earlier]
        )
    if spec.name == "receivables" and "currency" in t.columns:
        expected = f"the portfolio currency {currency} on every row (convert other currencies before loading)"
        checks[("currency", "mixed_currencies", expected)] = t.currency.notnull() & (
            t.currency != currency
        )
    if spec.name == "contacts" and "promise_due" in t.columns:
        checks[("promise_due", "promise_without_due_date", "a promise_due on every promise")] = (
            t.outcome == "promise"
        ) & t.promise_due.isnull()
    # duplicated keys: counted in the same scan (rows vs distinct keys); only when some
    # key repeats does a second query find how many and which
    key = list(spec.key)
    # a key of several columns counted as one struct (typed values, nulls equal): 20 %
    # faster than joining them as text (13 M scores at 1 M customers)
    key_value = t[key[0]] if len(key) == 1 else ibis.struct({k: t[k] for k in key})
    digest = digest_sums(t, typed_table.columns)
    counts = _count_and_report(
        t, {**parse_checks, **checks}, id_col, spec.name, origin, report,
        extra={"_rows": t.count(), "_keys": key_value.nunique(), **digest},
    )  # fmt: skip
    digests[spec.name] = (typed_table.schema(), digest_text(counts))
    _report_unknown_references(t, spec, typed, origin, report)
    if int(counts["_rows"]) == int(counts["_keys"] or 0):
        return
    dup = t.group_by(key).aggregate(_n=t.count()).filter(ibis._._n > 1)
    stats = dup.aggregate(rows=dup._n.sum(), keys=dup.count()).to_pandas().iloc[0]
    if stats["keys"]:
        ex = dup.select(i=dup[spec.id_column].cast("string")).limit(MAX_EXAMPLES).to_pandas()
        report.problems.append(
            Problem(
                spec.name, origin, "+".join(key), "duplicated_key", int(stats["rows"]),
                f"unique {'+'.join(key)} ({int(stats['keys'])} value(s) repeated)", tuple(ex["i"]),
            )
        )  # fmt: skip
