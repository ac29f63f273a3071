"""The discover command as a library call: a discovery config and the portfolio -> a proposed
cascade (YAML text an analyst edits) and its out-of-time evidence against the current
segmentation.

The training month end's customers with an overdue balance are hash-sampled on the engine
(the experiments' salted MD5, at most ``sample_size``), their features and label ("paid
within the horizon", :func:`collect_kit.risk.labels`) pulled, and a shallow tree fitted
(:func:`collect_kit.discovery.tree.propose`). The evidence is computed on the engine for
every customer owing at the evaluation month end, a later month end whose labels are
complete; the training month is refused there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import ibis
import pandas as pd
import yaml

from .. import __version__, risk
from .. import segmentation as sg
from ..errors import ConfigError
from ..experiments.config import load_experiment
from ..hashing import hash_sample
from ..segmentation.rules import Segmentation, from_dict
from ..sources import Portfolio
from ..sources import load as load_sources
from .config import DiscoveryConfig, load_discovery
from .evidence import evaluate
from .tree import Proposal, cascade, propose
from .uplift import UpliftProposal, notes, propose_uplift


@dataclass
class Discovery:
    """A proposal and its evidence. ``rules``: the proposal as a :class:`Segmentation`;
    ``text``: its YAML with a header comment; ``evidence``: name -> :func:`evaluate`'s
    result for ``proposal`` and ``current``; ``migration``: customers at the evaluation
    month end from the current segments (rows) to the proposed ones (columns)."""

    config: DiscoveryConfig
    train_as_of: pd.Timestamp
    evaluate_as_of: pd.Timestamp
    sampled: int
    proposal: Proposal
    rules: Segmentation
    text: str
    evidence: dict
    migration: pd.DataFrame
    #: the uplift method's segments measured on the held-out half (None for propensity)
    uplift: UpliftProposal | None = None


def discover(
    config_path,
    database=None,
    portfolio: Portfolio | None = None,
    sources: str | os.PathLike | None = None,
    as_of=None,
    snapshots: dict | None = None,
) -> Discovery:
    """Learn a cascade from the data of ``config_path`` (module docstring). ``as_of``: use
    only what was known at that date (default: the extraction date): labels and outcome
    windows must have closed by then. ``snapshots``: month end -> an already computed
    snapshot table on the portfolio's engine (e.g. the report's cache), used instead of
    computing it (the current segmentation's ``p_pay`` is added when its rules read it)."""
    cfg, base = load_discovery(config_path)
    if portfolio is None:
        portfolio = load_sources(sources or _path(base, cfg.sources), database=database)
    known = portfolio.extraction_date if as_of is None else pd.Timestamp(as_of)
    known = min(known, portfolio.extraction_date)
    current = sg.load(_path(base, cfg.current))
    if cfg.method == "uplift":
        return _discover_uplift(cfg, base, config_path, portfolio, known)
    t0, t1 = dates(cfg, portfolio, config_path, known)
    given = {pd.Timestamp(k): v for k, v in (snapshots or {}).items()}

    def snapshot_at(d, rules=None):
        if d in given and (rules is None or rules.risk_model is None):
            return given[d]
        return sg.portfolio_snapshot(rules, portfolio, d)

    snap0 = snapshot_at(t0)
    missing = [c for c in cfg.features if c not in snap0.columns]
    if missing:
        raise ConfigError(
            f"{config_path}: features: {missing} are not snapshot columns "
            f"(docs/data-model.md; your own fields by their names)"
        )
    pay = portfolio.tables["payments"]
    # each month end's owing customers are read several times: computed once on the engine
    owing0 = _labelled(snap0, pay, t0, cfg.horizon_days).cache()
    frame, sampled = _sample(owing0, cfg)
    proposal = propose(frame, cfg.features, "paid", cfg.max_depth, cfg.min_leaf_share,
                       cfg.merge_alpha, cfg.min_rate_gap, cfg.seed)  # fmt: skip
    raw = cascade(proposal, cfg.discovery_id, cfg.description or "Learned from the data")
    rules = from_dict(raw, source=f"proposal of {config_path}")
    text = _header(cfg, t0, t1, sampled, proposal) + yaml.safe_dump(
        raw, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None
    )
    snap1 = snapshot_at(t1, current)
    owing1 = _labelled(snap1, pay, t1, cfg.horizon_days).cache()
    owing0c = owing0
    if current.risk_model is not None:  # the current rules read p_pay: their own snapshot
        snap0c = snapshot_at(t0, current)
        owing0c = _labelled(snap0c, pay, t0, cfg.horizon_days)
    evidence = {
        "proposal": evaluate(_rates(rules, owing0), _rates(rules, owing1)),
        "current": evaluate(_rates(current, owing0c), _rates(current, owing1)),
    }
    comparison = sg.compare(current, rules, owing1)
    return Discovery(cfg, t0, t1, sampled, proposal, rules, text, evidence, comparison.matrix())


def _discover_uplift(cfg: DiscoveryConfig, base: Path, where, portfolio, known) -> Discovery:
    """The uplift method: segments of a past test's customers by their answer to the
    challenger, measured on the held-out half."""
    exp, _ = load_experiment(_path(base, cfg.experiment))
    arms = exp.arm_names()
    arm = cfg.arm or arms[1]
    if arm not in arms[1:]:
        raise ConfigError(
            f"{where}: arm: '{arm}' is not a challenger of '{exp.experiment_id}' ({arms[1:]})"
        )
    frame, before, first = uplift_frame(portfolio, exp, arms[0], arm, cfg.features, where, known)
    try:
        u = propose_uplift(frame, cfg.features, "treated", "paid", cfg.max_depth,
                           cfg.min_leaf_share, cfg.min_uplift_gap, cfg.seed)  # fmt: skip
    except ValueError as exc:
        raise ConfigError(f"{where}: experiment '{exp.experiment_id}': {exc}") from None
    raw = cascade(u.proposal, cfg.discovery_id, cfg.description or "Uplift segments", notes(u))
    rules = from_dict(raw, source=f"proposal of {where}")
    header = _uplift_header(cfg, exp.experiment_id, arm, before, len(frame), u)
    text = header + yaml.safe_dump(
        raw, sort_keys=False, allow_unicode=True, width=100, default_flow_style=None
    )
    evidence = {"uplift": u.held_out, "qini": u.qini, "qini_coefficient": u.qini_coefficient}
    return Discovery(cfg, before, first, len(frame), u.proposal, rules, text, evidence,
                     pd.DataFrame(), u)  # fmt: skip


def uplift_frame(portfolio, exp, champion: str, arm: str, features: list[str], where, known=None):
    """One row per customer of the test's two arms whose outcome window has closed by
    ``known`` (default: the extraction date):
    ``treated`` (1: ``arm``), ``paid`` (a payment in the window after assignment) and the
    features at the month end before the first assignment (pre-treatment). Returns the
    frame in customer order, that month end and the first assignment date."""
    t = portfolio.tables
    if "assignments" not in t:
        raise ConfigError(f"{where}: the data has no assignments table: no test to learn from")
    a = t["assignments"]
    a = a.filter((a.experiment_id == exp.experiment_id) & a.arm.isin([champion, arm]))
    window = ibis.interval(days=exp.window_days)
    known = portfolio.extraction_date if known is None else known
    end = ibis.date(pd.Timestamp(known).date()) + ibis.interval(days=1)
    a = a.filter(a.assigned_at + window <= end)
    first = a.assigned_at.min().to_pyarrow().as_py()
    if first is None:
        raise ConfigError(
            f"{where}: experiment '{exp.experiment_id}' has no customer of {champion} or {arm} "
            "whose outcome window has closed"
        )
    first = pd.Timestamp(first)
    before = (first.to_period("M") - 1).to_timestamp(how="end").normalize()
    snap = sg.portfolio_snapshot(None, portfolio, before)
    missing = [c for c in features if c not in snap.columns]
    if missing:
        raise ConfigError(f"{where}: features: {missing} are not snapshot columns")
    p = t["payments"]
    j = a.join(p, "customer_id")
    hit = j.filter((j.paid_at >= j.assigned_at) & (j.paid_at < j.assigned_at + window))
    paid = hit.select("customer_id").distinct().mutate(paid=ibis.literal(1.0))
    rows = a.select("customer_id", treated=(a.arm == arm).cast("int8"))
    rows = rows.left_join(snap.select("customer_id", *features), "customer_id").drop(
        "customer_id_right"
    )
    rows = rows.left_join(paid, "customer_id").drop("customer_id_right")
    rows = rows.mutate(paid=rows.paid.fill_null(0.0))
    frame = rows.order_by("customer_id").to_pyarrow().to_pandas()
    return frame.drop(columns="customer_id"), before, first


def _uplift_header(cfg: DiscoveryConfig, exp_id: str, arm: str, before, n: int, u) -> str:
    lines = [
        f"Proposed by `collect-kit discover` ({__version__}) from {cfg.discovery_id}.",
        f"Data: {n} customers of experiment {exp_id} (champion and {arm}); features at",
        f"{before.date()}, before the assignment; outcome: paid in the test's window.",
        "Method: two gradient-boosted models (T-learner) on a random half predict each",
        f"customer's uplift; a tree of depth {cfg.max_depth} on the predictions gives the",
        f"segments (closer than {cfg.min_uplift_gap:.0%} merged). Each segment's uplift is",
        f"measured on the other half; Qini coefficient there {u.qini_coefficient:+.4f}.",
        "Edit freely, then run `collect-kit segment` on this file like any rule set.",
    ]
    return "".join(f"# {line}\n" for line in lines)


def _path(base: Path, value: str) -> str:
    return value if os.path.isabs(value) else os.path.normpath(base / value)


def dates(cfg: DiscoveryConfig, portfolio, where, known=None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(training month end, evaluation month end): ``auto`` takes the latest with labels
    complete by ``known`` (default: the extraction date); the evaluation must come after
    the training month (out of time) and its labels must be complete by then."""
    known = portfolio.extraction_date if known is None else pd.Timestamp(known)
    auto0, auto1 = risk.training_dates(known, cfg.horizon_days)
    t0 = auto0 if cfg.train_as_of == "auto" else portfolio.month_end(cfg.train_as_of, "train_as_of")
    t1 = (
        auto1
        if cfg.evaluate_as_of == "auto"
        else portfolio.month_end(cfg.evaluate_as_of, "evaluate_as_of")
    )
    if t1 <= t0:
        raise ConfigError(
            f"{where}: evaluate_as_of: {t1.date()} is not after train_as_of {t0.date()}: the "
            "evidence must come from a later month than the one the segments were learned on"
        )
    for name, d in (("train_as_of", t0), ("evaluate_as_of", t1)):
        end = d + pd.Timedelta(days=cfg.horizon_days)
        if end > known:
            raise ConfigError(
                f"{where}: {name}: {d.date()} + {cfg.horizon_days} days ends after "
                f"{known.date()}, the last date known: its labels are incomplete"
            )
    return t0, t1


def _labelled(snap, payments, as_of, horizon_days: int):
    """The customers owing at ``as_of`` with ``paid`` (1.0 / 0.0), on the engine."""
    return risk.with_paid(snap.filter(snap.overdue_balance > 0), payments, as_of, horizon_days)


def _sample(owing, cfg: DiscoveryConfig) -> tuple[pd.DataFrame, int]:
    """At most about ``sample_size`` customers by the salted hash, features and label only."""
    owing, n = hash_sample(owing, cfg.sample_size, f"discover-{cfg.seed}")
    if n == 0:
        raise ConfigError("no customer owes money at the training month end: nothing to learn")
    cols = [*cfg.features, "paid"]
    # in customer order: the engine's row order varies between runs, the tree's halves must not
    frame = owing.select("customer_id", *cols).order_by("customer_id").to_pyarrow().to_pandas()
    return frame.drop(columns="customer_id"), len(frame)


def _rates(rules: Segmentation, owing) -> pd.DataFrame:
    """Customers and payers per segment (engine aggregate), indexed by segment."""
    t = sg.assign(rules, owing)
    out = t.group_by("segment").aggregate(customers=t.count(), payers=t.paid.sum()).to_pandas()
    out = out.set_index("segment").astype(float)
    return out.reindex([s for s in rules.names if s in out.index])


def _header(cfg: DiscoveryConfig, t0, t1, sampled: int, p: Proposal) -> str:
    lines = [
        f"Proposed by `collect-kit discover` ({__version__}) from {cfg.discovery_id}.",
        f"Data: {sampled} customers with an overdue balance at {t0.date()} (a salted-hash",
        f"sample); label: paid within {cfg.horizon_days} days.",
        f"Method: a decision tree of depth {cfg.max_depth} with leaves of at least",
        f"{cfg.min_leaf_share:.0%} of the customers; leaves whose payer rates differ by less than",
        f"{cfg.min_rate_gap:.0%} or not at p < {cfg.merge_alpha} are one segment; thresholds rounded",
        f"(moving {p.moved:.2%} of the training customers).",
        f"Evidence: out of time at {t1.date()} (`collect-kit discover` prints it).",
        "Edit freely, then run `collect-kit segment` on this file like any rule set.",
    ]
    return "".join(f"# {line}\n" for line in lines)
