"""Discovery configs (``configs/discovery/*.yaml``), validated."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from ..errors import ConfigError
from ..yamlconfig import VersionedConfig, folder_of, load_model

#: snapshot columns a discovery reads when the config lists none: behaviour, balance,
#: debt age, contactability, profile and the bureau score
DEFAULT_FEATURES = (
    "max_days_past_due", "overdue_balance", "balance", "open_receivables", "tenure_days",
    "avg_days_late", "late_payments", "days_since_last_payment", "contact_attempts",
    "right_party_contacts", "broken_promises", "has_valid_phone", "customer_type", "score",
)  # fmt: skip


class DiscoveryConfig(VersionedConfig):
    """Segments learned from the data (:mod:`collect_kit.discovery`). Paths are relative to
    the YAML file; dates are month ends or ``auto`` (the latest month ends with complete
    labels, :func:`collect_kit.risk.training_dates`: training first, evaluation later)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    discovery_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
    description: str = ""
    sources: str
    current: str  # the segmentation the proposal is compared with
    features: list[str] = list(DEFAULT_FEATURES)  # snapshot columns, canonical or your own
    horizon_days: int = Field(30, ge=1, le=365)  # the label: pays within this many days
    train_as_of: str = "auto"
    evaluate_as_of: str = "auto"
    max_depth: int = Field(3, ge=1, le=6)
    min_leaf_share: float = Field(0.02, gt=0, lt=0.5, allow_inf_nan=False)
    merge_alpha: float = Field(0.01, gt=0, lt=1, allow_inf_nan=False)
    min_rate_gap: float = Field(0.03, ge=0, lt=1, allow_inf_nan=False)
    sample_size: int = Field(200_000, ge=1_000, le=10_000_000)
    seed: int = 7
    #: ``propensity``: who pays (a tree of the label); ``uplift``: who answers to a past
    #: test's challenger (``experiment``, ``arm``: default its first challenger)
    method: Literal["propensity", "uplift"] = "propensity"
    experiment: str | None = None
    arm: str | None = None
    min_uplift_gap: float = Field(0.0, ge=0, lt=1, allow_inf_nan=False)  # off: see uplift.py

    @model_validator(mode="after")
    def _uplift(self) -> DiscoveryConfig:
        if self.method == "uplift" and self.experiment is None:
            raise ValueError("method: uplift needs experiment: the config of a past test")
        return self

    @field_validator("features")
    @classmethod
    def _features(cls, v: list[str]) -> list[str]:
        if not v or len(set(v)) < len(v):
            raise ValueError("list each feature (a snapshot column) once")
        return v


def load_discovery(path: str | os.PathLike) -> tuple[DiscoveryConfig, Path]:
    """The config and its folder; the files it names must exist."""
    cfg = load_model(path, DiscoveryConfig, "discovery config")
    base = folder_of(path)
    for field in ("sources", "current", "experiment"):
        value = getattr(cfg, field)
        if value is not None and not (base / value).is_file():
            raise ConfigError(
                f"{path}: {field}: '{value}' is not a file (paths are relative to the config)"
            )
    return cfg, base
