"""The packaged notebooks document their parameters: `papermill --help-notebook` prints a
type and a one-line description for each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import papermill as pm
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "src" / "collect_kit" / "notebooks"


@pytest.mark.parametrize(
    "name",
    [
        "segmentation",
        "portfolio_report",
        "experiment_readout",
        "strategy_plan",
        "segment_discovery",
    ],
)
def test_every_parameter_has_a_type_and_a_description(name):
    params = pm.inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb"))
    assert {"as_of", "language", "run_id"} <= set(params)
    for pname, info in params.items():
        assert info["inferred_type_name"] not in ("None", None), pname
        assert len(info["help"]) >= 8, pname
    shown = subprocess.run(
        [sys.executable, "-m", "papermill", "--help-notebook", str(NOTEBOOKS / f"{name}.ipynb")],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert "Unknown type" not in shown and "a text catalogue: en, es or pt" in shown
