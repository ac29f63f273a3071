"""Config files are read safely: size, aliases, depth, tags, versions, renamed fields."""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import ConfigDict

from collect_kit import sources
from collect_kit.errors import ConfigError, DataAccessError
from collect_kit.experiments.config import load_experiment
from collect_kit.reports.config import load_config
from collect_kit.segmentation import load as load_segmentation
from collect_kit.yamlconfig import MAX_BYTES, VersionedConfig, load_model, parse_yaml

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "collect_kit" / "configs"


def test_every_shipped_config_loads_unchanged():
    for path in sorted((CONFIGS / "sources").glob("*.yaml")):
        assert sources.read_config(path).version == 1
    for path in sorted((CONFIGS / "segments").glob("*.yaml")):
        assert load_segmentation(path).names[-1] == "Default"
    for path in sorted((CONFIGS / "experiments").glob("*.yaml")):
        assert load_experiment(path)[0].version == 1
    for path in sorted((CONFIGS / "reports").glob("*.yaml")):
        assert load_config(path)[0].version == 1


def test_aliases_that_expand_a_little_are_fine_but_a_bomb_is_refused_fast():
    data, _ = parse_yaml("a: &x [1, 2, 3]\nb: *x\nc: *x\n", "ok.yaml")
    assert data == {"a": [1, 2, 3], "b": [1, 2, 3], "c": [1, 2, 3]}
    levels = ["a: &a [" + ", ".join(["x"] * 10) + "]"]
    for i in range(1, 12):  # 10**12 leaves once expanded
        prev, name = chr(ord("a") + i - 1), chr(ord("a") + i)
        levels.append(f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]")
    started = time.perf_counter()
    with pytest.raises(ConfigError, match="alias bomb"):
        parse_yaml("\n".join(levels), "bomb.yaml")
    assert time.perf_counter() - started < 1.0


def test_recursive_alias_deep_nesting_tags_and_size_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="refers to itself"):
        parse_yaml("a: &a [*a]\n", "loop.yaml")
    with pytest.raises(ConfigError, match="nested more than"):
        parse_yaml("a: " + "[" * 150 + "]" * 150, "deep.yaml")
    with pytest.raises(ConfigError, match="nested too deeply|nested more than"):
        parse_yaml("a: " + "[" * 5000 + "]" * 5000, "deeper.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        parse_yaml("a: !!python/object/apply:os.system ['true']\n", "tag.yaml")
    big = tmp_path / "big.yaml"
    big.write_text("a: '" + "x" * (MAX_BYTES + 10) + "'\n")
    with pytest.raises(ConfigError, match="at most"):
        load_model(big, _Model, "test config")


def test_unreadable_files_name_the_path(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_model(tmp_path / "missing.yaml", _Model, "test config")
    with pytest.raises(ConfigError, match="is a folder"):
        load_model(tmp_path, _Model, "test config")
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: Peñalolén\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_model(latin, _Model, "test config")
    assert issubclass(DataAccessError, ValueError)


class _Model(VersionedConfig):
    model_config = ConfigDict(extra="forbid")
    name: str = ""
    threshold: float = 0.0
    renamed: ClassVar[dict[str, str]] = {"limit": "renamed to 'threshold' in version 1"}


def test_versions_and_renamed_fields(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: a\n")
    assert load_model(path, _Model, "test config").version == 1  # no version: read as 1
    path.write_text("version: 1\nname: a\n")
    assert load_model(path, _Model, "test config").name == "a"
    path.write_text("version: 2\nname: a\n")
    with pytest.raises(ConfigError, match="version.*got 2"):
        load_model(path, _Model, "test config")
    path.write_text("name: a\nlimit: 3\n")
    with pytest.raises(ConfigError, match="limit: renamed to 'threshold'"):
        load_model(path, _Model, "test config")
    path.write_text("name: a\nthreshhold: 3\n")
    with pytest.raises(ConfigError, match="threshhold: not a known field"):
        load_model(path, _Model, "test config")


def test_a_key_written_twice_is_refused_with_both_lines(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text(
        "experiment_id: pilot\nsources: s.yaml\narms: {champion: 1, challenger: 1}\n"
        "window_days: 31\nalpha: 0.05\nmde_amount: 10\nalpha: 0.2\n"
    )
    with pytest.raises(ConfigError, match=r"twice\.yaml: alpha: written twice .*lines 5 and 7"):
        load_experiment(path)
    with pytest.raises(ConfigError, match="x: written twice"):
        parse_yaml("a: {x: 1, x: 2}\n", "flow.yaml")
    # the same key in different mappings, and merge keys, are fine
    data, _ = parse_yaml("a: {x: 1}\nb: {x: 2}\nc: &c {y: 1}\nd: {<<: *c, x: 3}\n", "ok.yaml")
    assert data["d"] == {"y": 1, "x": 3}
