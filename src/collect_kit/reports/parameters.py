"""The notebooks' parameters: what each declares, and every ``-p`` value checked against it.

A notebook declares its parameters in its ``parameters`` cell (read with papermill's
``inspect_notebook``); a ``-p`` value must match the declared type (its annotation, else
its default's type), and a few parameters have a rule beyond their type (``language``, ``engine``,
``lgd``, ``report_title``, ``segmentation``, ``experiments``, ``plan``, ``discovery``). The
parameters the runner sets itself (:data:`RUNNER_PARAMETERS`) cannot be given with ``-p``. Every problem is a
:class:`~collect_kit.errors.ConfigError` naming the parameter, what it must be and what
was given.
"""

from __future__ import annotations

import ast
import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path

from ..errors import ConfigError
from .format import LANGUAGES

#: notebook parameters the runner sets itself, and what to use instead of ``-p``
RUNNER_PARAMETERS = {
    "as_of": "use --as-of (or the config's as_of)",
    "sources": "set sources: in the report config",
    "database": "use --database (or database: in the report config)",
    "run_id": "the runner sets it",
    "validated": "the runner sets it",
    "snapshots": "the runner sets it",
    "stored_readouts": "the runner sets it",
    "spark": "set spark: in the report config or the sources YAML",
}


def declared_parameters(notebooks: Mapping[str, Path]) -> dict[str, dict[str, dict]]:
    """Per notebook name: the parameters its file (``notebooks[name]``) declares, as
    papermill's ``inspect_notebook`` describes them (name -> default, type, help)."""
    import papermill as pm

    return {name: pm.inspect_notebook(str(path)) for name, path in notebooks.items()}


_TYPES = {"float": float, "int": int, "str": str, "bool": bool, "list": list, "dict": dict}
_TYPE_WORDS = {float: "a number", int: "a whole number", str: "text", bool: "true or false",
               list: "a list", dict: "a mapping"}  # fmt: skip


def _expected_type(info: Mapping) -> type | None:
    """The type a notebook parameter takes: its annotation, else its default's type."""
    annotated = _TYPES.get(str(info.get("inferred_type_name", "None")))
    if annotated is not None:
        return annotated
    try:
        default = ast.literal_eval(str(info.get("default")))
    except (ValueError, SyntaxError):
        return None
    return None if default is None else type(default)


def _quoted(value: object) -> str:
    """A value as a message quotes it: text in quotes, anything else as Python writes it."""
    return f"'{value}'" if isinstance(value, str) else repr(value)


def _kind(value: object) -> str:
    return "text" if isinstance(value, str) else type(value).__name__


def _number(name: str, value: object, low: float, high: float, what: str) -> float:
    """``value`` as a finite number in ``[low, high]``, else a ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(
            f"parameter {name}: must be a number between {low:g} and {high:g} ({what}), "
            f"got {_quoted(value)} ({_kind(value)})"
        )
    if not math.isfinite(value) or not low <= value <= high:
        raise ConfigError(
            f"parameter {name}: must be a number between {low:g} and {high:g} ({what}), "
            f"got {value!r}"
        )
    return float(value)


def _segmentation_parameter(name: str, value: object) -> str:
    """A segmentation YAML path (relative to the working folder), loaded to check it."""
    from .. import segmentation

    if not isinstance(value, str) or not value.strip():
        raise ConfigError(
            f"parameter {name}: must be the path of a segmentation YAML, got {_quoted(value)}"
        )
    path = os.path.abspath(value)
    segmentation.load(path)  # its errors name the file and the field
    return path


def _experiments_parameter(name: str, value: object) -> list[str]:
    """Experiment YAML paths or packaged example names, each loaded to check it."""
    from ..experiments.config import load_experiment
    from .context import experiment_configs

    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ConfigError(
            f"parameter {name}: must be a list of experiment YAML paths or packaged example "
            f"names, got {_quoted(value)}"
        )
    paths = [str(p.resolve()) for p in experiment_configs(items)]
    for path in paths:
        load_experiment(path)
    return paths


def _config_parameter(kind: str, load: str) -> Callable[[str, object], str]:
    """The rule of a parameter naming a config of ``kind`` (``plans``, ``discovery``): a
    YAML path or a packaged example name, loaded (by ``load``, a module:function) to check it."""

    def rule(name: str, value: object) -> str:
        import importlib

        from .context import packaged_config

        if not isinstance(value, str) or not value.strip():
            raise ConfigError(
                f"parameter {name}: must be a YAML path or a packaged example name, got "
                f"{_quoted(value)}"
            )
        path = str(packaged_config(kind, value, value).resolve())
        module, function = load.split(":")
        getattr(importlib.import_module(module), function)(path)
        return path

    return rule


def _title_parameter(name: str, value: object) -> str:
    """One line of 1 to 200 characters (a number is taken as its text)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > 200
        or any(ord(c) < 32 for c in value)
    ):
        raise ConfigError(
            f"parameter {name}: must be one line of 1 to 200 characters, got {_quoted(value)}"
        )
    return value


def _engine_parameter(name: str, value: object) -> str:
    """One of the query engines."""
    from ..engine import ENGINES

    if value not in ENGINES:
        raise ConfigError(
            f"parameter {name}: must be one of {', '.join(ENGINES)}, got {_quoted(value)}"
        )
    return str(value)


def _language_parameter(name: str, value: object) -> str:
    """One of the report languages of the report config."""
    if value not in LANGUAGES:
        raise ConfigError(
            f"parameter {name}: must be one of {', '.join(LANGUAGES)}, got {_quoted(value)}"
        )
    return str(value)


#: parameters with a rule beyond their type
_RULES: dict[str, Callable[[str, object], object]] = {
    "language": _language_parameter,
    "engine": _engine_parameter,
    "lgd": lambda n, v: _number(n, v, 0.0, 1.0, "loss given default, a fraction"),
    "report_title": _title_parameter,
    "segmentation": _segmentation_parameter,
    "experiments": _experiments_parameter,
    "plan": _config_parameter("plans", "collect_kit.planning.config:load_plan"),
    "discovery": _config_parameter("discovery", "collect_kit.discovery.config:load_discovery"),
}


def check_parameter(name: str, value: object, info: Mapping) -> object:
    """``value`` checked against the notebook parameter ``name`` (declared as ``info``).

    Returns the value to inject (paths made absolute, numbers as floats). Except for the
    parameters with a rule (``language``, ``lgd``, ``report_title``, ``segmentation``,
    ``experiments``, ``plan``, ``discovery``), None passes as it is, and so does any value of a parameter whose
    type cannot be told (no annotation; a default that is None or not a literal). Raises
    :class:`ConfigError` naming the parameter, what was given and what is expected.
    """
    rule = _RULES.get(name)
    if rule is not None:
        return rule(name, value)
    expected = _expected_type(info)
    if expected is None or value is None:
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if expected is float and isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"parameter {name}: must be a finite number, got {value!r}")
        return value
    if expected is str and isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, expected) and not (expected is int and isinstance(value, bool)):
        return value
    raise ConfigError(
        f"parameter {name}: must be {_TYPE_WORDS.get(expected, expected.__name__)} "
        f"(default {info.get('default')}), got {_quoted(value)} ({_kind(value)})"
    )


def check_parameters(
    parameters: Mapping[str, object], declared: Mapping[str, Mapping[str, dict]], report: str
) -> dict[str, object]:
    """Every ``-p`` value checked before anything runs (see :func:`check_parameter`);
    returns name -> the value to inject.

    ``declared`` is :func:`declared_parameters` of the report's notebooks. A name no
    notebook declares, or one the runner sets itself, is a :class:`ConfigError`.
    """
    known = {n: info for params in declared.values() for n, info in params.items()}
    settable = sorted(set(known) - set(RUNNER_PARAMETERS))
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ConfigError(
            f"parameter {', '.join(unknown)}: no notebook of report '{report}' takes it "
            f"(they take: {', '.join(settable)})"
        )
    for name in parameters:
        if name in RUNNER_PARAMETERS:
            raise ConfigError(f"parameter {name}: cannot be set with -p; {RUNNER_PARAMETERS[name]}")
    return {name: check_parameter(name, v, known[name]) for name, v in parameters.items()}
