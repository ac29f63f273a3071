"""The experiment commands as library calls: design, assign and read out from a config."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import ibis
import pandas as pd

from .. import segmentation as sg
from .. import sources
from ..demo import latest_month_end
from ..errors import ConfigError
from ..snapshot import snapshot
from .assign import assign_arms
from .config import ExperimentConfig, load_experiment
from .design import design
from .readout import (
    heterogeneity,
    outcome_stats,
    readout,
    recommend,
    survival_counts,
    survival_readout,
)


@dataclass
class ExperimentReadout:
    """Everything a readout shows; every table is aggregated (no customer rows)."""

    config: ExperimentConfig
    statistics: pd.DataFrame  # sufficient statistics per segment x arm
    results: pd.DataFrame  # per segment x challenger x metric
    survival: pd.DataFrame  # Kaplan-Meier curves per segment x arm
    logrank: pd.DataFrame
    heterogeneity: pd.DataFrame
    recommendations: pd.DataFrame


def _open(config_path, database) -> tuple[ExperimentConfig, Path, sources.Portfolio]:
    cfg, base = load_experiment(config_path)
    path = cfg.sources if os.path.isabs(cfg.sources) else os.path.normpath(base / cfg.sources)
    return cfg, base, sources.load(path, database=database)


def _segments(cfg: ExperimentConfig, base: Path, portfolio, as_of) -> pd.DataFrame:
    if cfg.segmentation is None:
        raise ConfigError(
            f"experiment '{cfg.experiment_id}': design and assign need a segmentation in the config"
        )
    path = (
        cfg.segmentation
        if os.path.isabs(cfg.segmentation)
        else os.path.normpath(base / cfg.segmentation)
    )
    snap = snapshot(portfolio.tables, as_of)
    return (
        sg.assign(sg.load(path), snap)
        .select("customer_id", "segment", "overdue_balance")
        .to_pandas()
    )


def design_experiment(config_path, database=None, as_of=None) -> pd.DataFrame:
    """Per segment (customers with an overdue balance at ``as_of``): sample size and MDE.

    The champion's expected payer rate is the segment's share of those customers who paid
    anything in the 30 days up to ``as_of``; the amount's standard deviation is that of
    their payments in the same window (currency).
    """
    cfg, base, portfolio = _open(config_path, database)
    when = pd.Timestamp(as_of) if as_of else latest_month_end(portfolio.extraction_date)
    seg = _segments(cfg, base, portfolio, when)
    seg = seg[seg.overdue_balance > 0]
    p = portfolio.tables["payments"]
    lo, hi = ibis.date((when - pd.Timedelta(days=30)).date()), ibis.date(when.date())
    recent = (
        p.filter((p.paid_at > lo) & (p.paid_at <= hi))
        .group_by("customer_id")
        .aggregate(paid=p.amount.sum())
    )
    paid = recent.to_pandas().set_index("customer_id")["paid"]
    seg["paid"] = paid.reindex(seg.customer_id).fillna(0.0).to_numpy()
    baseline = seg.groupby("segment").agg(
        customers=("customer_id", "size"),
        payer_rate=("paid", lambda s: (s > 0).mean()),
        amount_sd=("paid", "std"),
    )
    weights = (
        cfg.arms
        if not all(isinstance(v, dict) for v in cfg.arms.values())
        else next(iter(cfg.arms.values()))
    )
    return design(
        baseline.reset_index(), weights, cfg.mde_payer_rate, cfg.mde_amount, cfg.alpha, cfg.power
    )


def assign_experiment(
    config_path, export: str | os.PathLike, database=None, as_of=None
) -> pd.DataFrame:
    """Assign the customers owing at ``as_of`` to arms and write customer_id, segment, arm
    (CSV or Parquet by extension, atomically); returns the counts per segment x arm."""
    cfg, base, portfolio = _open(config_path, database)
    when = pd.Timestamp(as_of) if as_of else latest_month_end(portfolio.extraction_date)
    seg = _segments(cfg, base, portfolio, when)
    seg = seg[seg.overdue_balance > 0][["customer_id", "segment"]]
    out = assign_arms(seg, cfg.salt or cfg.experiment_id, cfg.arms)[
        ["customer_id", "segment", "arm"]
    ]
    export = Path(export)
    if export.suffix.lower() not in (".csv", ".parquet"):
        raise ConfigError(f"--export: '{export}' must end in .csv or .parquet")
    tmp = export.with_name(f".{export.name}.partial")
    (out.to_csv if export.suffix.lower() == ".csv" else out.to_parquet)(tmp, index=False)
    os.replace(tmp, export)
    return out.groupby(["segment", "arm"]).size().rename("customers").reset_index()


def readout_experiment(config_path, database=None) -> ExperimentReadout:
    """Read out the experiment of the config from the portfolio's ``assignments``.

    Money per month if rolled out uses the experiment's own intake as the segment's monthly
    inflow: customers assigned to the segment per month of assignment.
    """
    cfg, _, portfolio = _open(config_path, database)
    t, end = portfolio.tables, portfolio.extraction_date
    try:
        stats = outcome_stats(
            t, cfg.experiment_id, end, cfg.window_days, cfg.pre_days, cfg.winsorize
        )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    results = readout(stats, cfg.arms, cfg.alpha, aa=cfg.aa)
    curves, tests = survival_readout(
        survival_counts(t, cfg.experiment_id, end, cfg.window_days), cfg.arms
    )
    a = t["assignments"].filter(t["assignments"].experiment_id == cfg.experiment_id)
    intake = (
        a.group_by("segment")
        .aggregate(customers=a.count(), months=a.assigned_at.truncate("M").nunique())
        .to_pandas()
    )
    monthly = dict(zip(intake.segment, intake.customers / intake.months.clip(lower=1), strict=True))
    rec = recommend(results, monthly, cfg.cost_per_customer, cfg.alpha, cfg.power)
    return ExperimentReadout(
        cfg, stats, results, curves, tests, heterogeneity(results, cfg.alpha), rec
    )
