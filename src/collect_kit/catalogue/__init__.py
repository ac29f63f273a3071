"""The words of collect_kit: one YAML file per language in this folder.

``en.yaml`` is complete and the reference; every other language file holds the same
sections (``format``, ``labels``, ``sentences``, ``headings``, ``titles``, ``kpis``,
``states``, ``channels``) and may lack keys: those fall back to English and
:func:`missing` lists them (the report runner logs them once per run). Adding a language
is adding one file, ``<code>.yaml``; the test suite requires every key of ``en`` in
``es`` and every heading in each other language.

Words are plain text with ``{placeholders}`` (``str.format``); renderers escape them.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import yaml

REFERENCE = "en"


def _folder():
    return resources.files(__name__)


@cache
def languages() -> tuple[str, ...]:
    """The language codes with a catalogue file, English first."""
    codes = sorted(p.name[:-5] for p in _folder().iterdir() if p.name.endswith(".yaml"))
    return (REFERENCE, *[c for c in codes if c != REFERENCE])


@cache
def _raw(language: str) -> dict[str, Any]:
    with (_folder() / f"{language}.yaml").open(encoding="utf-8") as f:
        return yaml.safe_load(f) or {}


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out |= _flat(value, name + ".")
        else:
            out[name] = value
    return out


@cache
def catalogue(language: str) -> dict[str, Any]:
    """Every word of ``language`` by dotted key (``labels.segment``), English where the
    language file has none. Raises KeyError for a language without a file."""
    if language not in languages():
        raise KeyError(language)
    return _flat(_raw(REFERENCE)) | _flat(_raw(language))


@cache
def missing(language: str) -> tuple[str, ...]:
    """The dotted keys English has and ``language`` lacks (shown in English)."""
    own = _flat(_raw(language))
    return tuple(k for k in _flat(_raw(REFERENCE)) if k not in own)


def word(key: str, language: str) -> Any:
    """The catalogue entry ``key`` (dotted: ``headings.summary``) in ``language``."""
    return catalogue(language)[key]
