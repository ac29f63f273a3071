"""Plan configs for tests: the packaged sample plan, changed and written elsewhere."""

from __future__ import annotations

from pathlib import Path

import yaml

from collect_kit.demo import sample_config

CONFIGS = sample_config().parent.parent  # the packaged configs/ folder
PLAN = CONFIGS / "plans" / "next_month.yaml"


def plan_yaml(folder: Path, sources: Path | None = None, **changes) -> Path:
    """The sample plan with its paths absolute, ``changes`` applied (None removes a key;
    dotted keys reach into blocks: ``{"rules.keep_champion": []}``), written to
    ``folder/plan.yaml``."""
    raw = yaml.safe_load(PLAN.read_text())
    raw["sources"] = str(sources or CONFIGS / "sources" / "sample.yaml")
    raw["segmentation"] = str(CONFIGS / "segments" / "bureau_risk.yaml")
    for t in raw["treatments"].values():
        if "measured" in t:
            t["measured"]["experiment"] = str(
                CONFIGS / "experiments" / Path(t["measured"]["experiment"]).name
            )
    for key, value in changes.items():
        *path, last = key.split(".")
        node = raw
        for part in path:
            node = node[part]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    out = folder / "plan.yaml"
    out.write_text(yaml.safe_dump(raw, allow_unicode=True, sort_keys=False))
    return out
