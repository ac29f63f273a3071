"""What a report notebook needs, in one call each: the portfolio, snapshots, formats.

Notebooks stay thin: they call these with their parameters. Running in JupyterLab with
the defaults, they find the demo sample (``data/sample.duckdb`` in the working folder or a
parent) and compute what the runner would otherwise have cached.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from .. import engine, periods
from .. import sources as _sources
from ..demo import sample_config
from ..engine import SparkConfig
from ..errors import ConfigError, DataValidationError


def find_sample_database(start: str | os.PathLike = ".") -> Path:
    """``data/sample.duckdb`` in ``start`` or the nearest parent holding one."""
    here = Path(start).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "data" / "sample.duckdb"
        if candidate.exists():
            return candidate
    raise ConfigError("no data/sample.duckdb found here or above: run `collect-kit demo` first")


def open_portfolio(
    sources: str | None = None,
    database: str | None = None,
    validated: bool = False,
    engine: str | None = None,
    spark: dict | None = None,
) -> _sources.Portfolio:
    """Load and validate a portfolio (default: the demo sample).

    ``engine`` (``duckdb`` or ``spark``) and ``spark`` (the settings of
    :class:`~collect_kit.engine.SparkConfig` as a mapping) override the sources YAML's.

    ``validated``: the report runner has just validated this data for the run, so the
    value and row checks are not repeated in every notebook (tables, columns and mapping
    still are). A validation failure is raised without example ids, so an executed
    notebook never carries them (the console run of ``collect-kit validate`` shows them).
    """
    config = sources or sample_config()
    db = database_for(sources, database)
    try:
        return _sources.load(
            config, database=db, checks=not validated, engine_name=engine,
            spark=SparkConfig(**spark) if spark else None,
        )  # fmt: skip
    except DataValidationError as exc:
        raise ConfigError(exc.report.text(examples=False)) from None


def database_for(sources: str | None, database: str | None) -> str | Path | None:
    """The DuckDB file to read: ``database`` when given; else the demo sample when no
    sources YAML is given; else None (the YAML names its own)."""
    if database is not None:
        return database
    return None if sources else find_sample_database()


def experiment_configs(experiments: list[str] | str | None = None) -> list[Path]:
    """Experiment config paths: a path to a YAML, or the name of a packaged example
    (``configs/experiments/<name>.yaml``); None -> every packaged example."""
    from importlib import resources

    folder = Path(str(resources.files("collect_kit") / "configs" / "experiments"))
    if experiments is None:
        return sorted(folder.glob("*.yaml"))
    items = [experiments] if isinstance(experiments, str) else list(experiments)
    out = []
    for item in items:
        path = Path(item) if str(item).endswith((".yaml", ".yml")) else folder / f"{item}.yaml"
        if not path.exists():
            known = ", ".join(p.stem for p in sorted(folder.glob("*.yaml")))
            raise ConfigError(
                f"experiments: '{item}' is neither an existing YAML file nor a packaged "
                f"example ({known})"
            )
        out.append(path)
    return out


def packaged_config(kind: str, item: str | None, default: str) -> Path:
    """A config path: a path to a YAML, or the name of a packaged example
    (``configs/<kind>/<name>.yaml``); None -> the packaged ``default``."""
    from importlib import resources

    folder = Path(str(resources.files("collect_kit") / "configs" / kind))
    item = item or default
    path = Path(item) if str(item).endswith((".yaml", ".yml")) else folder / f"{item}.yaml"
    if not path.exists():
        known = ", ".join(p.stem for p in sorted(folder.glob("*.yaml")))
        raise ConfigError(
            f"{kind}: '{item}' is neither an existing YAML file nor a packaged example ({known})"
        )
    return path


def plan_config(plan: str | None = None) -> Path:
    """A plan config: a YAML path or a packaged plan; None -> ``next_month``."""
    return packaged_config("plans", plan, "next_month")


def discovery_config(discovery: str | None = None) -> Path:
    """A discovery config: a YAML path or a packaged one; None -> ``consumer_propensity``."""
    return packaged_config("discovery", discovery, "consumer_propensity")


def as_of_date(portfolio: _sources.Portfolio, as_of: str | None) -> pd.Timestamp:
    """``as_of`` as a month end checked against the data (:meth:`Portfolio.month_end`):
    None or 'latest' -> the last complete month; ``YYYY-MM`` -> that month's end."""
    return portfolio.month_end(as_of, "as_of")


previous_month_end = periods.previous_month_end


def snapshot_dates(as_of) -> list[pd.Timestamp]:
    """The month ends whose snapshots a report as of ``as_of`` reads: ``as_of``, the
    previous month end (changes and migration) and the risk model's training and
    out-of-time dates (labels complete by ``as_of``). The runner computes each once."""
    from ..risk import training_dates

    dates = [pd.Timestamp(as_of), previous_month_end(as_of), *training_dates(as_of)]
    return sorted(set(dates), reverse=True)


def _cached(snapshots: dict[str, str] | None, as_of) -> str | None:
    """The runner's cached snapshot file for ``as_of``, if it has one."""
    path = (snapshots or {}).get(str(pd.Timestamp(as_of).date()))
    return path if path and Path(path).exists() else None


def snapshot_table(
    portfolio: _sources.Portfolio,
    as_of,
    snapshots: dict[str, str] | None = None,
    segmentation=None,
):
    """The snapshot as of ``as_of`` as an Ibis table on the portfolio's engine (it stays
    there: notebooks pull aggregates of it, never its rows). Read from the runner's cache
    (``snapshots``: date "YYYY-MM-DD" -> Parquet file) when it has it, else computed, with
    the ``p_pay`` of the ``segmentation``'s risk model when it has one (the runner caches
    it that way)."""
    from ..segmentation import portfolio_snapshot

    path = _cached(snapshots, as_of)
    if path:
        # every snapshot date of the run, with the books cached beside them: a KPI of this
        # date reads the book of the month end before it, often another snapshot date
        portfolio.read_snapshots({d: p for d, p in snapshots.items() if _cached(snapshots, d)})
        return engine.read_parquet(portfolio.connection, path)
    return portfolio_snapshot(segmentation, portfolio, as_of)


def is_empty(table) -> bool:
    """Whether an Ibis table (or a DataFrame) has no rows."""
    if isinstance(table, pd.DataFrame):
        return table.empty
    return int(table.limit(1).count().to_pyarrow().as_py()) == 0


def example_segmentation(name: str = "consumer") -> Path:
    """A packaged example segmentation (``configs/segments/<name>.yaml``)."""
    from importlib import resources

    return Path(str(resources.files("collect_kit") / "configs" / "segments" / f"{name}.yaml"))


def display_names(language: str, rules=None) -> dict[str, str]:
    """Code -> display name in ``language`` for the segments and strategies of ``rules``
    (a :class:`~collect_kit.segmentation.Segmentation`), from their labels in the config
    (:func:`text.display_names`). An experiment's own names travel with its readout
    (``ExperimentReadout.labels``)."""
    from .text import display_names as names_of

    labels = {}
    if rules is not None:
        labels = {s.name: s.label for s in rules.segments if s.label} | dict(rules.strategy_labels)
    return names_of(labels, language)


def segments_at(portfolio: _sources.Portfolio, rules, snapshots: dict[str, str] | None = None):
    """A function month end -> ``customer_id``, ``segment`` (``rules`` applied to that
    month end's snapshot, computed once per date and kept on the engine), for the drivers
    of page 1's findings."""
    from .. import segmentation as sg

    done: dict[pd.Timestamp, pd.DataFrame] = {}

    def at(when) -> pd.DataFrame:
        when = pd.Timestamp(when).normalize()
        if when not in done:
            snap = snapshot_table(portfolio, when, snapshots, rules)
            # kept on the engine: each KPI by segment reads it (the cascade runs once)
            done[when] = engine.shared(sg.assign(rules, snap).select("customer_id", "segment"))
        return done[when]

    return at


def formatter(language: str, portfolio: _sources.Portfolio, rules=None):
    """The report's :class:`~collect_kit.reports.format.Formatter`: the language, the
    data's currency and the display names of the segmentation (``rules``)."""
    from .format import Formatter

    return Formatter(language, portfolio.currency, display_names(language, rules))
