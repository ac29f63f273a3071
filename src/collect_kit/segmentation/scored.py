"""The snapshot a segmentation reads: with the ``p_pay`` of its ``risk_model``, if it has one.

A segmentation YAML may declare ``risk_model: {train_as_of: YYYY-MM-DD, horizon_days: 30,
features: [...], penalty: 0}``; its rules can then read ``p_pay`` (the probability of a
payment within the horizon, a fraction). :func:`with_p_pay` fits the model on the snapshot
of ``train_as_of`` (labels from the payments that followed it) and adds its score to the
snapshot being segmented; the training snapshot never gets a ``p_pay`` of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pandas as pd

from .. import risk
from ..engine import TableLike, inputs
from ..errors import InvalidParameterError
from .rules import RiskModel, Segmentation


def with_p_pay(
    segmentation: Segmentation,
    tables: Mapping[str, TableLike],
    snapshot: TableLike,
    as_of,
    snapshot_of: Callable[[pd.Timestamp], TableLike] | None = None,
    extraction_date=None,
):
    """``snapshot`` (of ``as_of``) with ``p_pay`` from ``segmentation.risk_model``;
    unchanged when the segmentation has none.

    ``tables``: the portfolio's tables (payments label the training snapshot).
    ``snapshot_of``: date -> snapshot, for the training snapshot (default: computed from
    ``tables``). ``extraction_date``: when given, the training labels must be complete by
    then. Returns the kind that came in (pandas, Arrow or Ibis).
    """
    spec = segmentation.risk_model
    if spec is None:
        return snapshot
    train_as_of = pd.Timestamp(spec.train_as_of)
    as_of = pd.Timestamp(as_of)
    where = f"{segmentation.source}: risk_model.train_as_of {train_as_of.date()}"
    if train_as_of > as_of:
        raise InvalidParameterError(
            f"{where} is after the snapshot being segmented ({as_of.date()}): a model cannot "
            "be trained on a later month"
        )
    labels_end = train_as_of + pd.Timedelta(days=spec.horizon_days)
    if extraction_date is not None and labels_end > pd.Timestamp(extraction_date):
        raise InvalidParameterError(
            f"{where}: its labels (payments up to {labels_end.date()}) are not complete by "
            f"the extraction date {pd.Timestamp(extraction_date).date()}; train on an earlier "
            "month end"
        )
    model = fit_model(spec, tables, snapshot_of)
    with inputs({"snapshot": snapshot}, required=["snapshot"]) as t:
        scores = model.score(t["snapshot"]).select("customer_id", "p_pay")
        snap = t["snapshot"]
        if "p_pay" in snap.columns:
            snap = snap.drop("p_pay")
        out = snap.left_join(scores, "customer_id").drop("customer_id_right")
        return t.as_given(out, order_by="customer_id")


def fit_model(
    spec: RiskModel,
    tables: Mapping[str, TableLike],
    snapshot_of: Callable[[pd.Timestamp], TableLike] | None = None,
) -> risk.PropensityModel:
    """The propensity model a segmentation's ``risk_model`` describes, fitted."""
    from ..snapshot import snapshot as build_snapshot

    train_as_of = pd.Timestamp(spec.train_as_of)
    train = snapshot_of(train_as_of) if snapshot_of else build_snapshot(tables, train_as_of)
    return risk.fit(
        train, tables["payments"], train_as_of, horizon_days=spec.horizon_days,
        features=list(spec.features) or None, penalty=spec.penalty,
    )  # fmt: skip


def portfolio_snapshot(segmentation: Segmentation | None, portfolio, as_of):
    """The snapshot of ``portfolio`` (a :class:`~collect_kit.sources.Portfolio`) at
    ``as_of`` as ``segmentation`` reads it: with ``p_pay`` when it has a ``risk_model`` and
    ``as_of`` is on or after its training date (earlier snapshots get none). An Ibis table
    on the portfolio's connection, kept there (:meth:`Portfolio.snapshot`)."""
    snap = portfolio.snapshot(as_of)
    spec = segmentation.risk_model if segmentation is not None else None
    if spec is None or pd.Timestamp(as_of) < pd.Timestamp(spec.train_as_of):
        return snap
    return with_p_pay(
        segmentation, portfolio.tables, snap, as_of,
        snapshot_of=portfolio.snapshot,
        extraction_date=portfolio.extraction_date,
    )  # fmt: skip
