"""What a run checks before its run folder exists: the report config, the ``-p`` values,
the segmentation and experiment configs, the database file, ``as_of`` against the data and
the data's age. Each problem raises here, so a bad run leaves nothing on disk.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..errors import CollectKitError, ConfigError
from ..periods import parse_date, parse_month_end
from .config import ReportConfig, config_file, load_config
from .parameters import check_parameters, declared_parameters
from .runs import manifest_value


class StaleDataError(CollectKitError, ValueError):
    """The data's extraction date is older than the report config's ``max_data_age_days``."""


@dataclass
class Plan:
    """What a run will do, checked before anything runs (the paths of the sources, the
    database, the segmentation, the experiments, the plan and the discovery absolute)."""

    cfg: ReportConfig
    config_path: Path
    base: Path  # the report config's folder
    config_text: str
    sources: str
    database: str | None
    segmentation: str
    experiments: list[str]
    plan: str | None  # the strategy plan config
    discovery: str | None  # the discovery config
    language: str
    title: str
    engine: str | None  # the query engine (-p engine=, else the config's; None: the sources')
    spark: dict | None  # the report config's Spark settings (None: the sources')
    declared: dict[str, dict[str, dict]]
    extra: dict[str, object]  # the other -p values, checked
    overrides: dict[str, object]  # every -p value, as the manifest shows it


def preflight(
    config_path: str | os.PathLike,
    parameters: Mapping[str, object] | None,
    database: str | os.PathLike | None,
    notebook_path: Callable[[str], Path],
) -> Plan:
    """The run's :class:`Plan`: the config, the parameters, the segmentation and
    experiment configs and the database file checked.

    ``config_path``: a report config file, or the name of a packaged one (``monthly``).
    ``notebook_path`` finds a notebook's file by its name in the config (the notebooks'
    declared parameters are read from it). ``database`` overrides the config's. Raises
    :class:`ConfigError`, or the error of a config that cannot be read.
    """
    from .. import segmentation
    from ..discovery.config import load_discovery
    from ..experiments.config import load_experiment
    from ..planning.config import load_plan

    config_path = config_file(config_path)
    cfg, base, config_text = load_config(config_path)

    def resolve(p: str) -> str:
        return p if os.path.isabs(p) else os.path.normpath(os.path.abspath(base / p))

    declared = declared_parameters({n: notebook_path(n) for n in cfg.notebooks})
    given = dict(parameters or {})
    checked = check_parameters(given, declared, cfg.name)
    overrides = {k: manifest_value(v, base) for k, v in checked.items()}
    seg = checked.pop("segmentation", None) or resolve(cfg.segmentation)
    experiments = checked.pop("experiments", None)
    if experiments is None:
        experiments = [resolve(e) for e in cfg.experiments]
        for path in experiments:
            load_experiment(path)
    if "segmentation" not in given:
        segmentation.load(seg)
    plan = checked.pop("plan", None)
    if plan is None and cfg.plan:
        plan = resolve(cfg.plan)
        load_plan(plan)
    discovery = checked.pop("discovery", None)
    if discovery is None and cfg.discovery:
        discovery = resolve(cfg.discovery)
        load_discovery(discovery)
    # absolute: notebooks run with the run folder as working directory
    if database is not None:
        db, where = os.path.abspath(database), f"--database: '{database}'"
    else:
        db = resolve(cfg.database) if cfg.database else None
        where = f"{config_path}: database: '{cfg.database}'"
    if db is not None and not os.path.isfile(db):
        raise ConfigError(f"{where} is not a file (expected a DuckDB database file)")
    language = checked.pop("language", cfg.language)
    spark = cfg.spark.model_dump(exclude_defaults=True) if cfg.spark else None
    return Plan(
        cfg, Path(config_path), base, config_text, resolve(cfg.sources), db, seg, experiments,
        plan, discovery, language, checked.pop("report_title", cfg.title_in(language)),
        checked.pop("engine", cfg.engine), spark, declared, checked, overrides,
    )  # fmt: skip


def as_of_dates(portfolio, as_of: str | None, plan: Plan) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(the run's as_of, the config's as_of), both month ends checked against the data.

    ``as_of`` None: the config's. When the data did not validate, only the format and the
    extraction date are checked (the tables may be incomplete).
    """
    config_name = f"{plan.config_path}: as_of"
    if portfolio.report.ok:
        scheduled = portfolio.month_end(plan.cfg.as_of, config_name)
        when = portfolio.month_end(as_of, "--as-of") if as_of is not None else scheduled
    else:
        bound = {"extraction_date": portfolio.extraction_date}
        scheduled = parse_month_end(plan.cfg.as_of, config_name, **bound)
        when = parse_month_end(as_of, "--as-of", **bound) if as_of is not None else scheduled
    return when, scheduled


def today() -> pd.Timestamp:
    """The run's date: ``COLLECT_KIT_TODAY`` (YYYY-MM-DD, for tests) or today."""
    value = os.environ.get("COLLECT_KIT_TODAY")
    if value:
        return parse_date(value, "COLLECT_KIT_TODAY")
    return pd.Timestamp(dt.date.today())


def data_age_warning(cfg: ReportConfig, extraction, run_day: pd.Timestamp) -> str | None:
    """A warning when the data's extraction date is more than the config's
    ``max_data_age_days`` days before ``run_day``; None when it is not, or the config sets
    no limit."""
    if cfg.max_data_age_days is None:
        return None
    age = (run_day.normalize() - pd.Timestamp(extraction).normalize()).days
    if age <= cfg.max_data_age_days:
        return None
    return (
        f"stale data: the extraction date {pd.Timestamp(extraction).date()} is {age} days "
        f"before the run's date {run_day.date()}; the report config allows "
        f"max_data_age_days: {cfg.max_data_age_days}"
    )


def check_report_columns(cfg: ReportConfig, fields, config_path) -> None:
    """The snapshot columns a report config names, checked against this data's snapshot
    (canonical columns and the non-personal fields of the sources YAML):

    - ``breakdowns``: text or true/false columns;
    - ``risk_target``: a true/false column, with ``risk_features`` naming valid features
      (:func:`collect_kit.risk.feature_list`) and ``risk_penalty`` >= 0.

    Raises :class:`ConfigError` naming the field, the column and what was expected."""
    from ..risk import ColumnFeature, feature_list
    from ..snapshot import snapshot_schema

    columns = snapshot_schema(fields)  # personal fields are never in it
    personal = {f.name for f in fields if f.personal}

    def column(field: str, name: str):
        if name in personal:
            raise ConfigError(
                f"{config_path}: {field}: '{name}' is personal data (personal: true) and "
                "never shown in a report"
            )
        if name not in columns:
            raise ConfigError(
                f"{config_path}: {field}: '{name}' is not a snapshot column; expected a "
                "canonical one such as region or dpd_bucket, or a field declared under extra: "
                "in the sources YAML"
            )
        return columns[name]

    for name in cfg.breakdowns:
        kind = column("breakdowns", name)
        if not (kind.is_string() or kind.is_boolean()):
            raise ConfigError(
                f"{config_path}: breakdowns: '{name}' is a {kind} column; expected text or "
                "true/false (band a number with a segmentation rule and break down by segment)"
            )
    if cfg.risk_target is None:
        return
    kind = column("risk_target", cfg.risk_target)
    if not kind.is_boolean():
        raise ConfigError(
            f"{config_path}: risk_target: '{cfg.risk_target}' is a {kind} column; expected true/false"
        )
    if not cfg.risk_features:
        raise ConfigError(f"{config_path}: risk_features: list the model's features")
    try:
        spec = feature_list(cfg.risk_features)
    except CollectKitError as exc:
        raise ConfigError(f"{config_path}: risk_features: {exc}") from None
    for f in spec:
        if isinstance(f, ColumnFeature):
            column("risk_features", f.column)
    if not cfg.risk_penalty >= 0:
        raise ConfigError(f"{config_path}: risk_penalty: must be >= 0, got {cfg.risk_penalty}")
