"""Reading YAML configs safely into pydantic models, with errors that name the file and field.

Every config kind (sources, segmentation, experiment, report) is read by :func:`read_yaml`:
PyYAML's safe loader (no Python tags), documents over :data:`MAX_BYTES` refused, and the
node graph checked before anything is built from it: aliases expanding to more than
:data:`MAX_NODES` nodes beyond those written (a "billion laughs" bomb), a recursive alias or nesting deeper
than :data:`MAX_DEPTH` is refused in milliseconds instead of hanging the run, and a key
written twice in one mapping is refused (loaders keep the last one silently).

Every config may say ``version: 1``; a config without it is read as version 1. A field a
later version renames or removes is listed in the model's ``renamed`` (old -> message), so
an old config gets an error naming the replacement instead of "extra field".
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar

import yaml
from pydantic import AfterValidator, BaseModel, StringConstraints, ValidationError

from .errors import ConfigError, DataAccessError

MAX_BYTES = 1024 * 1024
MAX_NODES = 10_000
MAX_DEPTH = 100  # YAML levels; a rule tree of 32 levels takes about 70
VERSIONS = (1,)

Model = TypeVar("Model", bound=BaseModel)


def _languages(label: dict[str, str]) -> dict[str, str]:
    from .catalogue import languages

    unknown = sorted(set(label) - set(languages()))
    if unknown:
        raise ValueError(
            f"language {unknown[0]!r} has no text catalogue (one of {', '.join(languages())})"
        )
    return label


#: a display name by language, as configs write it: ``label: {en: Other, es: Otros}``
Label = Annotated[
    dict[
        str, Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    ],
    AfterValidator(_languages),
]


def display(label: Mapping[str, str], language: str, fallback: str) -> str:
    """A config item's name in ``language``: its label there, else in English, else
    ``fallback`` (its code)."""
    return label.get(language) or label.get("en") or fallback


class VersionedConfig(BaseModel):
    """Base of every config model: the optional ``version`` and the renamed-field table."""

    version: int = 1
    #: fields of earlier versions -> what replaces them (shown to the user)
    renamed: ClassVar[dict[str, str]] = {}


def read_text(path: str | os.PathLike, what: str) -> str:
    """The text of a config file; errors name ``what`` and the path."""
    path = Path(path)
    try:
        if path.is_dir():
            raise ConfigError(f"{what} '{path}' is a folder, expected a YAML file")
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ConfigError(
                f"{what} '{path}': {size:,} bytes; a config must be at most {MAX_BYTES:,} bytes"
            )
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{what} '{path}' does not exist") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} '{path}': not UTF-8 text (byte {exc.start}); save it as UTF-8"
        ) from None
    except PermissionError:
        raise DataAccessError(f"{what} '{path}': permission denied") from None
    except OSError as exc:
        raise DataAccessError(f"{what} '{path}': cannot be read ({exc.strerror})") from None


def _check_graph(root: yaml.Node, where: str) -> None:
    """Refuse alias bombs, recursive aliases and deep nesting, before construction."""
    sizes: dict[int, int] = {}
    active: set[int] = set()

    def size(node: yaml.Node, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise ConfigError(
                f"{where}: nested more than {MAX_DEPTH} levels deep (line "
                f"{node.start_mark.line + 1}); a rule tree may be at most 32 levels deep"
            )
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in active:
            raise ConfigError(f"{where}: an alias refers to itself (recursive YAML)")
        active.add(key)
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(item, depth + 1) for item in node.value)
        elif isinstance(node, yaml.MappingNode):
            _refuse_duplicate_keys(node, where)
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        active.discard(key)
        sizes[key] = total
        return total

    expanded = size(root, 0)
    if expanded - len(sizes) > MAX_NODES:
        raise ConfigError(
            f"{where}: aliases expand to {expanded:,} values, more than {MAX_NODES:,} beyond "
            f"the {len(sizes):,} written; a config this large is refused (a YAML alias bomb?)"
        )


def _refuse_duplicate_keys(node: yaml.MappingNode, where: str) -> None:
    """A key written twice in one mapping: YAML loaders keep the last silently, so a
    setting the user believes is in force may not be."""
    seen: dict[tuple[str, str], int] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode) or key.value == "<<":
            continue
        line = key.start_mark.line + 1
        first = seen.get((key.tag, key.value))
        seen[(key.tag, key.value)] = line
        if first is not None:
            raise ConfigError(
                f"{where}: {key.value}: written twice in the same mapping (lines {first} and "
                f"{line}); keep one"
            )


def parse_yaml(text: str, where: str) -> tuple[Any, yaml.Node | None]:
    """Parse YAML text safely (see the module docstring); returns (data, root node)."""
    if len(text.encode("utf-8")) > MAX_BYTES:
        raise ConfigError(f"{where}: a config must be at most {MAX_BYTES:,} bytes")
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        _check_graph(node, where)
        return loader.construct_document(node), node
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" (line {mark.line + 1})" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{where}: not valid YAML{line}: {problem}") from None
    except RecursionError:
        raise ConfigError(f"{where}: nested too deeply to be a config") from None
    finally:
        loader.dispose()


def read_yaml(path: str | os.PathLike, what: str) -> tuple[Any, str, yaml.Node | None]:
    """(data, text, root node) of a YAML config file, read safely."""
    text = read_text(path, what)
    data, node = parse_yaml(text, str(path))
    return data, text, node


def check_version(raw: dict, model: type[BaseModel], where: str) -> None:
    """Refuse unknown versions and fields an earlier version used (naming the replacement)."""
    version = raw.get("version", 1)
    if version not in VERSIONS:
        raise ConfigError(
            f"{where}: version: this collect_kit reads config version "
            f"{', '.join(map(str, VERSIONS))}, got {version!r}"
        )
    renamed = getattr(model, "renamed", {})
    old = [f"{where}: {k}: {renamed[k]}" for k in raw if k in renamed]
    if old:
        raise ConfigError("\n".join(old))


#: pydantic's names of the alternatives of a union type in an error's location
_TYPE_TAG = re.compile(r"^([a-z-]+\[.*\]|int|float|str|bool|list|dict|none|is-instance\[.*\])$")


def validation_lines(exc: ValidationError, where: str) -> list[str]:
    """One line per field in error: ``file: field.path: message (got ...)``; the
    alternatives of a union (``at_least: float | 'balance'``) are one line, with no type
    names in the path."""
    by_field: dict[str, list[str]] = {}
    for e in exc.errors():
        field = ".".join(str(p) for p in e["loc"] if not _TYPE_TAG.match(str(p))) or "(top)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] in ("model_type", "model_attributes_type", "dict_type"):
            msg = "expected a mapping of settings"
        got = ""
        if e["type"] not in ("value_error", "missing", "extra_forbidden") and "input" in e:
            shown = e["input"] if isinstance(e["input"], int | float) else str(e["input"])[:80]
            got = f" (got {shown!r})"
        if e["type"] == "extra_forbidden":
            msg = "not a known field (check the spelling)"
        said = by_field.setdefault(field, [])
        if f"{msg}{got}" not in said:
            said.append(f"{msg}{got}")
    return [
        f"{where}: {'' if field == '(top)' else field + ': '}{'; or '.join(msgs)}"
        for field, msgs in by_field.items()
    ]


def load_model(path: str | os.PathLike, model: type[Model], what: str) -> Model:
    """Parse ``path`` as YAML and validate it as ``model``; ``what`` names the file's kind.

    Raises :class:`ConfigError` for a missing file, invalid or oversized YAML, a
    non-mapping document, an unknown version or invalid fields (one line per field:
    ``file: field.path: message``).
    """
    raw, _, _ = read_yaml(path, what)
    return validate_model(raw, model, str(path))


def validate_model(raw: Any, model: type[Model], where: str) -> Model:
    """Validate parsed YAML as ``model`` (see :func:`load_model`)."""
    if raw is None:
        raise ConfigError(f"{where}: the file is empty; expected a mapping of settings")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: expected a mapping of settings, got {type(raw).__name__}")
    check_version(raw, model, where)
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError("\n".join(validation_lines(exc, where))) from None


def folder_of(path: str | os.PathLike) -> Path:
    """The folder relative paths in a config are resolved against (symlinks not resolved)."""
    return Path(os.path.abspath(path)).parent
