"""The plan command as a library call: a plan config and the portfolio -> :class:`StrategyPlan`.

Customers per segment are the segment's customers with an overdue balance at the plan's
month end (the stock the plan treats next month; an experiment's roll-out figure is its
monthly inflow instead). Effects come from experiment readouts (the ``collected_per_customer``
metric, CUPED where the readout uses it: challenger minus champion, per customer over the
outcome window) for the segments a readout read out, provided the experiment's
segmentation is the plan's (same rules: the parsed YAML's hash), the readout passed its
sample-ratio checks there; otherwise from ``assumed:``. A treatment without an effect for a
segment is not a candidate there.

A ``discount`` waives that share of what the treated customers pay. A measured effect is
cash already net of it; an assumed effect is stated before it, so the plan prices it:
``net = effect - discount x (collected per customer + effect)``, where collected per
customer is the segment's last month (payments in the plan's month by the customers
owing at the month end before). The discount granted is shown for both.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import ibis
import numpy as np
import pandas as pd

from .. import segmentation as sg
from ..engine import pull
from ..errors import ConfigError, NoResultsYetError
from ..experiments.config import load_experiment
from ..experiments.run import readout_experiment
from ..sources import Portfolio
from ..sources import load as load_sources
from ..yamlconfig import read_yaml
from .assign import export as export_files
from .assign import ranked
from .config import PlanConfig, dominates, load_plan
from .problem import Limit, Problem
from .robust import Robustness, robustness
from .solve import Solution, solve, today

#: the readout metric a plan reads: cash collected per customer
METRIC = "collected_per_customer"


@dataclass
class StrategyPlan:
    """A solved plan and what it is compared with; every table is aggregated.

    ``effects``: per segment x treatment where the effect comes from (``source``:
    ``champion``, ``measured``, ``assumed`` or ``none``, with the ``experiment`` and a
    ``reason`` when it is not a candidate), the effect and its standard error (currency per
    customer), the segment's ``collected`` per customer last month. ``chosen`` is the
    plan, ``today`` everyone on the champion, ``unconstrained`` the best per segment
    ignoring capacity; ``robustness`` is None when ``draws=0``.
    """

    config: PlanConfig
    as_of: pd.Timestamp
    currency: str
    problem: Problem
    effects: pd.DataFrame
    chosen: Solution
    today: Solution
    unconstrained: Solution
    robustness: Robustness | None
    #: per segment x treatment: customers planned, held out and exported (with ``export``)
    exported: pd.DataFrame | None = None
    #: code -> {language: name} of the plan, its treatments and the segmentation's segments
    labels: dict = field(default_factory=dict)


def make_plan(
    config_path,
    database=None,
    as_of=None,
    portfolio: Portfolio | None = None,
    sources: str | os.PathLike | None = None,
    draws: int | None = None,
    export: str | os.PathLike | None = None,
    snapshots: dict | None = None,
    readouts: dict | None = None,
) -> StrategyPlan:
    """Build and solve the plan of ``config_path`` (module docstring).

    ``as_of``: the month end whose customers are planned (default: the config's, itself
    ``latest``); ``portfolio``: an already loaded portfolio (a report run's); ``sources``:
    a sources YAML instead of the config's; ``draws``: robustness draws instead of the
    config's (0: none); ``export``: a folder for the customer lists of each treatment
    (:mod:`collect_kit.planning.assign`); ``snapshots``: month end -> an already computed
    snapshot table on the portfolio's engine (a report run's cache); ``readouts``: a
    report run's stored readouts (:mod:`collect_kit.experiments.stored`).
    """
    cfg, base = load_plan(config_path)
    if export is not None and not Path(export).is_dir():
        raise ConfigError(f"--export: '{export}' is not a folder")
    if portfolio is None:
        portfolio = load_sources(sources or _path(base, cfg.sources), database=database)
    when = portfolio.month_end(cfg.as_of if as_of is None else as_of, "as_of")
    rules = sg.load(_path(base, cfg.segmentation))
    snapshots = {pd.Timestamp(k): v for k, v in (snapshots or {}).items()}
    p, effects = build(cfg, base, config_path, portfolio, rules, when, snapshots, readouts)
    chosen = solve(p)
    n = cfg.robustness.draws if draws is None else draws
    rob = robustness(p, chosen, n, cfg.robustness.seed, cfg.robustness.cvar) if n > 0 else None
    labels = {s.name: dict(s.label) for s in rules.segments if s.label}
    labels |= {k: dict(t.label) for k, t in cfg.treatments.items() if t.label}
    for t in cfg.treatments.values():
        if t.measured is not None:
            exp, _ = load_experiment(_path(base, t.measured.experiment))
            if exp.label:
                labels[exp.experiment_id] = dict(exp.label)
    if cfg.label:
        labels[cfg.plan_id] = dict(cfg.label)
    exported = None
    if export is not None:
        customers = ranked(population(rules, portfolio, when, snapshots), cfg.salt or cfg.plan_id)
        exported = export_files(chosen, customers, cfg.holdout, export, cfg.plan_id)
    return StrategyPlan(
        cfg, when, portfolio.currency, p, effects, chosen, today(p), solve(p, limits=False), rob,
        exported, labels,
    )  # fmt: skip


def _path(base: Path, value: str) -> str:
    return value if os.path.isabs(value) else os.path.normpath(base / value)


def rules_hash(path: str | os.PathLike) -> str:
    """A segmentation's identity: sha256 of its parsed YAML (comments and layout aside)."""
    data, _, _ = read_yaml(path, "segmentation")
    text = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def population(rules, portfolio, when: pd.Timestamp, snapshots: dict | None = None):
    """customer_id and segment of the customers with an overdue balance at ``when`` (an
    Ibis table on the portfolio's engine); ``snapshots``: month end -> an already computed
    snapshot table (used when the rules do not read a risk model's ``p_pay``)."""
    given = (snapshots or {}).get(pd.Timestamp(when))
    use = given is not None and rules.risk_model is None
    snap = given if use else sg.portfolio_snapshot(rules, portfolio, when)
    t = sg.assign(rules, snap)
    return t.filter(t.overdue_balance > 0).select("customer_id", "segment")


def collected_last_month(
    rules, portfolio, when: pd.Timestamp, snapshots: dict | None = None
) -> pd.Series:
    """Segment -> cash collected per customer in the month ending ``when`` by the customers
    owing at the month end before (currency); empty before the data's second month."""
    before = (when.to_period("M") - 1).to_timestamp(how="end").normalize()
    try:
        owing = population(rules, portfolio, before, snapshots)
    except ConfigError:
        return pd.Series(dtype=float)
    pay = portfolio.tables["payments"]
    pay = pay.filter(
        (pay.paid_at > ibis.date(before.date())) & (pay.paid_at <= ibis.date(when.date()))
    )
    paid = pay.group_by("customer_id").aggregate(paid=pay.amount.sum())
    j = owing.left_join(paid, "customer_id")
    out = pull(j.group_by("segment").aggregate(collected=j.paid.fill_null(0).mean()), "collected")
    return out.set_index("segment").collected.astype(float)


def build(
    cfg: PlanConfig,
    base: Path,
    where,
    portfolio,
    rules,
    when: pd.Timestamp,
    snapshots: dict | None = None,
    readouts: dict | None = None,
) -> tuple[Problem, pd.DataFrame]:
    """The :class:`Problem` of a plan config at ``when`` and its effects table
    (``snapshots``: see :func:`population`)."""
    segments = tuple(rules.names)
    treatments = tuple(cfg.treatments)
    experiments = check(cfg, base, where, segments)
    pop = population(rules, portfolio, when, snapshots)
    sizes = pull(pop.group_by("segment").aggregate(n=pop.count()), "segment sizes")
    customers = sizes.set_index("segment").n.reindex(segments).fillna(0).to_numpy(float)
    if customers.sum() == 0:
        raise NoResultsYetError(
            f"{where}: as_of: nobody owes money at {when.date()}: there is nothing to plan"
        )
    collected = (
        collected_last_month(rules, portfolio, when, snapshots).reindex(segments).fillna(0.0)
    )
    measured = _measured(cfg, experiments, portfolio, when, readouts)
    S, T = len(segments), len(treatments)
    effect = np.full((S, T), np.nan)
    se = np.zeros((S, T))
    assumed = np.zeros((S, T), bool)
    granted = np.zeros((S, T))
    records = []
    minimum = cfg.treatments.get(cfg.rules.minimum_treatment or "", None)
    for j, (name, t) in enumerate(cfg.treatments.items()):
        for i, seg in enumerate(segments):
            rec = {"segment": seg, "treatment": name, "experiment": None, "reason": ""}
            got = measured.get((name, seg))
            if name == cfg.champion:
                rec |= {"source": "champion", "effect": 0.0, "se": 0.0}
            elif seg in t.assumed:
                a = t.assumed[seg]
                net = a.effect - t.discount * (collected[seg] + a.effect)
                rec |= {"source": "assumed", "effect": net, "se": a.se}
            elif got is not None and got[0] is not None:
                rec |= {"source": "measured", "effect": got[0], "se": got[1],
                        "experiment": got[2]}  # fmt: skip
            else:
                reason = got[3] if got is not None else "no effect measured or assumed"
                rec |= {"source": "none", "effect": np.nan, "se": np.nan, "reason": reason}
            if minimum is not None and not dominates(t.actions, minimum.actions):
                rec |= {"source": "none", "effect": np.nan, "se": np.nan,
                        "reason": f"below the minimum treatment '{cfg.rules.minimum_treatment}'"}  # fmt: skip
            if rec["source"] != "none":
                effect[i, j], se[i, j] = rec["effect"], rec["se"]
                assumed[i, j] = rec["source"] == "assumed"
                gross = collected[seg] + (t.assumed[seg].effect if assumed[i, j] else rec["effect"])
                granted[i, j] = t.discount * max(gross, 0.0)
            rec["collected"] = float(collected[seg])
            records.append(rec)
    channels = tuple(cfg.channels)
    actions = np.array(
        [[t.actions.get(ch, 0.0) for ch in channels] for t in cfg.treatments.values()]
    )
    cost = np.array(list(cfg.cost_per_customer().values()))
    share = np.ones((S, T))
    for name, frac in cfg.rules.max_share.items():
        share[:, treatments.index(name)] = frac
    p = Problem(
        segments, treatments, cfg.champion, customers, effect, se, cost,
        _limits(cfg, actions, cost), assumed=assumed, max_share=share,
        keep_champion=np.array([s in cfg.rules.keep_champion for s in segments]),
        min_share=cfg.rules.min_share, max_treatments=cfg.rules.max_treatments_per_segment,
        channels=channels, actions=actions, discount_granted=granted,
        minimum_treatment=cfg.rules.minimum_treatment,
    )  # fmt: skip
    return p, pd.DataFrame(records)


def _limits(cfg: PlanConfig, actions: np.ndarray, cost: np.ndarray) -> tuple[Limit, ...]:
    channels = list(cfg.channels)
    cap = cfg.capacity
    out = []
    if cap.agent_hours is not None:
        minutes = np.array(list(cfg.agent_minutes_per_customer().values()))
        out.append(Limit("agent_hours", "hour", cap.agent_hours, minutes / 60.0))
    for ch, limit in cap.budget.items():
        j = channels.index(ch)
        out.append(Limit(f"budget:{ch}", "currency", limit, actions[:, j] * cfg.channels[ch].cost))
    for ch, limit in cap.actions.items():
        out.append(Limit(f"actions:{ch}", "action", limit, actions[:, channels.index(ch)]))
    if cap.total_cost is not None:
        out.append(Limit("total_cost", "currency", cap.total_cost, cost))
    return tuple(out)


def check(cfg: PlanConfig, base: Path, where, segments: tuple[str, ...]) -> dict:
    """Refuse what the config says about segments and experiments that cannot hold,
    before any data is read; returns treatment -> (experiment config path, its config)."""
    for name, t in cfg.treatments.items():
        unknown = sorted(set(t.assumed) - set(segments))
        if unknown:
            raise ConfigError(
                f"{where}: treatments.{name}.assumed: {unknown} are not segments of "
                f"{cfg.segmentation} ({list(segments)})"
            )
    unknown = sorted(set(cfg.rules.keep_champion) - set(segments))
    if unknown:
        raise ConfigError(
            f"{where}: rules.keep_champion: {unknown} are not segments {list(segments)}"
        )
    plan_rules = rules_hash(_path(base, cfg.segmentation))
    out = {}
    for name, t in cfg.treatments.items():
        if t.measured is None:
            continue
        path = _path(base, t.measured.experiment)
        exp, exp_base = load_experiment(path)
        field_ = f"treatments.{name}.measured"
        if t.measured.arm not in exp.arm_names()[1:]:
            raise ConfigError(
                f"{where}: {field_}.arm: '{t.measured.arm}' is not a challenger of experiment "
                f"'{exp.experiment_id}' ({exp.arm_names()[1:]})"
            )
        if exp.segmentation is None or rules_hash(_path(exp_base, exp.segmentation)) != plan_rules:
            raise ConfigError(
                f"{where}: {field_}: experiment '{exp.experiment_id}' was read out on the "
                f"segments of {exp.segmentation}, not on this plan's {cfg.segmentation} (their "
                "rules differ), so its effects cannot feed this plan; state them under "
                f"treatments.{name}.assumed instead"
            )
        both = sorted(set(t.assumed) & set(exp.test_segments() or segments))
        if both:
            raise ConfigError(
                f"{where}: treatments.{name}: segments {both} have a measured effect "
                f"(experiment '{exp.experiment_id}') and an assumed one; keep one"
            )
        out[name] = (path, exp)
    return out


def _measured(cfg: PlanConfig, experiments: dict, portfolio, when, stored=None) -> dict:
    """(treatment, segment) -> (effect, se, experiment_id, reason) from the readouts."""
    readouts: dict[str, object] = {}
    out: dict = {}
    for name, (path, exp) in experiments.items():
        t = cfg.treatments[name]
        if path not in readouts:
            try:
                readouts[path] = readout_experiment(
                    path, portfolio=portfolio, as_of=str(when.date()), stored=stored
                )
            except NoResultsYetError:
                readouts[path] = None
        r = readouts[path]
        if r is None:
            continue
        rows = r.results[(r.results.metric == METRIC) & r.results.used
                         & (r.results.challenger == t.measured.arm)]  # fmt: skip
        for row in rows.itertuples():
            if not row.trustworthy:
                out[(name, row.segment)] = (None, None, exp.experiment_id,
                                            f"{exp.experiment_id}: sample-ratio check failed")  # fmt: skip
            elif not np.isfinite(row.estimate) or not np.isfinite(row.se):
                out[(name, row.segment)] = (None, None, exp.experiment_id,
                                            f"{exp.experiment_id}: {row.reason or 'no estimate'}")  # fmt: skip
            else:
                out[(name, row.segment)] = (
                    float(row.estimate),
                    float(row.se),
                    exp.experiment_id,
                    "",
                )
    return out
