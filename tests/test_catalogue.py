"""The text catalogue: every key in every language that needs it, the same placeholders, a
third language by adding one file, and English fallback listed once."""

from __future__ import annotations

import re
import string

import pytest
import yaml

from collect_kit import catalogue
from collect_kit.errors import ConfigError
from collect_kit.reports.format import LANGUAGES, Formatter
from collect_kit.reports.text import heading, label

PLACEHOLDER = string.Formatter()


def placeholders(words) -> set[str]:
    if not isinstance(words, str):
        return set()
    return {name for _, name, _, _ in PLACEHOLDER.parse(words) if name}


def test_every_english_key_is_in_spanish_and_every_heading_in_each_language():
    assert set(LANGUAGES) >= {"en", "es", "pt"}
    assert catalogue.missing("es") == ()
    for language in LANGUAGES:
        lacking = [k for k in catalogue.missing(language) if k.startswith(("headings.", "format."))]
        assert lacking == [], language


def test_translations_keep_the_placeholders():
    english = catalogue.catalogue("en")
    for language in LANGUAGES:
        own = catalogue._flat(catalogue._raw(language))
        for key, words in own.items():
            assert placeholders(words) == placeholders(english[key]), (language, key)


def test_no_language_file_has_keys_english_lacks():
    english = set(catalogue.catalogue("en"))
    for language in LANGUAGES:
        extra = set(catalogue._flat(catalogue._raw(language))) - english
        assert extra == set(), language


def test_portuguese_formats_and_falls_back_to_english():
    pt = Formatter("pt", "BRL")
    assert pt.number(1234567.5, 1) == "1.234.567,5"
    assert pt.date("2026-10-31") == "31/10/2026"
    assert pt.short_money(18_243_423_927) == "BRL 18,2 bi"
    assert heading("findings", pt) == "<h2>O que aconteceu, o que fazer</h2>"
    assert "sentences.finding_nothing" in catalogue.missing("pt")
    assert label("light_red", "pt") == label("light_red", "en")  # not translated yet


@pytest.mark.parametrize(
    ("language", "amounts"),
    [
        ("en", ["CLP 18.2 bn", "CLP 243 M", "CLP 51.2 k", "CLP 999", "CLP -1.50 M"]),
        ("es", ["CLP 18.243 millones", "CLP 243 millones", "CLP 51,2 mil", "CLP 999",
                "CLP -1,50 millones"]),
    ],
)  # fmt: skip
def test_abbreviated_money_keeps_three_significant_digits(language, amounts):
    fmt = Formatter(language, "CLP")
    got = [fmt.short_money(x) for x in (18_243_423_927, 243_000_000, 51_234, 999, -1_500_000)]
    assert got == amounts
    assert "billón" not in " ".join(got) and fmt.short_money(float("nan")) == ""


def test_a_report_config_in_a_language_without_catalogue_is_refused(tmp_path):
    from collect_kit.reports.config import load_config

    config = tmp_path / "r.yaml"
    config.write_text(yaml.safe_dump({"name": "x", "title": "X", "language": "fr",
                                      "sources": "s.yaml", "segmentation": "g.yaml",
                                      "notebooks": ["segmentation"]}))  # fmt: skip
    with pytest.raises(
        ConfigError, match=r"language.*'fr' has no text catalogue; one of en, es, pt"
    ):
        load_config(config)


def test_labels_in_configs_name_known_languages(tmp_path):
    from collect_kit import segmentation as sg

    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "name: t\nsegments:\n  - name: A\n    label: {en: A words, sp: palabras}\n"
        "    when: {column: balance, op: '>', value: 0}\n"
    )
    with pytest.raises(Exception, match=re.escape("language 'sp' has no text catalogue")):
        sg.load(rules)
    rules.write_text(
        "name: t\nsegments:\n  - name: A\n    strategy: call\n"
        "    when: {column: balance, op: '>', value: 0}\n"
        "strategies:\n  call: {en: Call, es: Llamada}\n  sms: {en: SMS}\n"
    )
    with pytest.raises(Exception, match=r"strategies: \['sms'\] are not the strategy of any"):
        sg.load(rules)
