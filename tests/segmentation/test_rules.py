"""The rule language: parsing, and every kind of bad input named by file, segment and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from collect_kit.segmentation import DEFAULT, SegmentationError, load
from collect_kit.segmentation.rules import All, AnyOf, Leaf, Not, leaves

GOOD = """\
name: demo
description: two segments
segments:
  - name: High risk
    strategy: call
    when:
      all:
        - {column: score, op: "<", value: 550}
        - any:
            - {column: broken_promises, op: ">=", value: 1}
            - not: {column: has_valid_phone, op: "==", value: true}
  - name: Mid balance
    when: {column: balance, op: between, value: [1000, 50000]}
default:
  description: everyone else
  strategy: sms
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    return path


def test_parse_into_typed_tree(tmp_path):
    seg = load(write(tmp_path, GOOD))
    assert seg.names == ["High risk", "Mid balance", DEFAULT]
    high = seg.segments[0]
    assert isinstance(high.condition, All)
    assert isinstance(high.condition.items[1], AnyOf)
    assert isinstance(high.condition.items[1].items[1], Not)
    assert high.condition.items[0] == Leaf("score", "<", 550)
    assert high.strategy == "call" and high.line == 4
    assert seg.segments[1].condition == Leaf("balance", "between", (1000, 50000))
    assert seg.default.strategy == "sms" and seg.default.condition is None
    assert seg.columns == ["balance", "broken_promises", "has_valid_phone", "score"]
    paths = [p for p, _ in leaves(high.condition)]
    assert paths == ["all[0]", "all[1].any[0]", "all[1].any[1].not"]


def bad(tmp_path, text: str) -> str:
    with pytest.raises(SegmentationError) as info:
        load(write(tmp_path, text))
    return str(info.value)


def test_yaml_syntax_error(tmp_path):
    msg = bad(tmp_path, "name: x\nsegments:\n  - name: [unclosed\n")
    assert "rules.yaml: not valid YAML (line" in msg


def test_unknown_op_suggests(tmp_path):
    msg = bad(tmp_path, GOOD.replace("op: between", "op: betwen"))
    assert (
        "rules.yaml: segment 'Mid balance', line 12: when: when.op: 'betwen' is not one of" in msg
    )
    assert "(did you mean 'between'?)" in msg


def test_between_needs_two_bounds(tmp_path):
    msg = bad(tmp_path, GOOD.replace("value: [1000, 50000]", "value: [1000]"))
    assert "segment 'Mid balance'" in msg and "'between' needs a list of two bounds" in msg


def test_wrong_value_shape(tmp_path):
    msg = bad(tmp_path, GOOD.replace('op: "<", value: 550', 'op: "<", value: [550]'))
    assert "segment 'High risk'" in msg and "when.all[0].value" in msg


def test_segment_named_default_is_rejected(tmp_path):
    msg = bad(tmp_path, GOOD.replace("name: Mid balance", "name: Default"))
    assert "'Default' is implicit" in msg


def test_duplicated_names_are_rejected(tmp_path):
    msg = bad(tmp_path, GOOD.replace("name: Mid balance", "name: High risk"))
    assert "'High risk' is used twice" in msg


def test_missing_condition_and_unknown_keys(tmp_path):
    assert "when: Field required" in bad(
        tmp_path, GOOD.replace("    when: {column: balance", "    whn: {column: balance")
    )
    assert "unknown key(s) ['colum']" in bad(
        tmp_path, GOOD.replace("{column: balance", "{colum: balance")
    )


def test_default_cannot_have_a_condition(tmp_path):
    msg = bad(
        tmp_path,
        GOOD.replace("  strategy: sms", "  strategy: sms\n  when: {column: x, op: is_null}"),
    )
    assert "default.when" in msg


def test_injection_text_is_kept_as_a_value(tmp_path):
    text = GOOD.replace('op: "<", value: 550', 'op: "==", value: "0; DROP TABLE customers"')
    seg = load(write(tmp_path, text))
    assert seg.segments[0].condition.items[0].value == "0; DROP TABLE customers"


def test_missing_file(tmp_path):
    with pytest.raises(SegmentationError, match="does not exist"):
        load(tmp_path / "nope.yaml")
