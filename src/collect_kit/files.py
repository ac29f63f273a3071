"""Writing files the kit produces: whole or not at all, and clear errors when the disk refuses.

Every file the kit writes for a user (report HTML and PDF, executed notebooks, manifests,
exports for the dialer, cached snapshots, the sample database) goes through
:func:`write_atomic`: it is written under a temporary name in the same folder, flushed to
disk and renamed into place, so a reader (or a scheduler handing the file on) never sees
half a file, and a failed write leaves the previous file untouched. An ``OSError`` (a
read-only or full disk, a missing folder, no permission) becomes a
:class:`~collect_kit.errors.DataAccessError` naming the path and the reason.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from .errors import DataAccessError

_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOENT: "the folder does not exist",
    errno.ENOTDIR: "a file is in the way of the folder",
    errno.EISDIR: "a folder is in the way of the file",
}


def cache_root() -> Path:
    """The kit's cache folder: ``$COLLECT_KIT_CACHE`` (default ``~/.cache/collect_kit``);
    it may not exist yet. Snapshots and contact checks live in sub-folders."""
    return Path(os.environ.get("COLLECT_KIT_CACHE", Path.home() / ".cache" / "collect_kit"))


def reason(exc: OSError) -> str:
    """A short, plain reason for an OS error."""
    return _REASONS.get(exc.errno, exc.strerror or exc.__class__.__name__)


def access_error(exc: OSError, path: str | os.PathLike, what: str) -> DataAccessError:
    """The kit's error for an OS error met while writing or reading ``path``."""
    return DataAccessError(f"{what} '{path}': cannot be written: {reason(exc)}")


def temporary_name(path: str | os.PathLike) -> Path:
    """A hidden name next to ``path`` for a file being written (``.name.<random>.partial``)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")


def write_atomic(
    path: str | os.PathLike,
    content: str | bytes | Callable[[Path], object],
    what: str = "file",
) -> Path:
    """Write ``content`` to ``path`` whole or not at all (see the module docstring).

    ``content``: text (UTF-8), bytes, or a function that writes the file it is given (for
    writers such as Parquet or WeasyPrint that take a path). Raises
    :class:`DataAccessError` (``what`` names the file's kind) when the disk refuses.
    """
    path = Path(path)
    tmp = temporary_name(path)
    try:
        if callable(content):
            content(tmp)
        else:
            data = content.encode("utf-8") if isinstance(content, str) else content
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise access_error(exc, path, what) from None
    except Exception as exc:
        from .engine import backend_errors, backend_reason

        if not isinstance(exc, backend_errors()):
            raise
        raise DataAccessError(
            f"{what} '{path}': cannot be written: {backend_reason(exc)}"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    return path


def check_writable_folder(folder: str | os.PathLike, what: str = "output folder") -> Path:
    """Check that files can be written in ``folder`` (or, where it does not exist yet, in
    the nearest existing folder above it, where it would be created), without creating it.

    A probe file of 4 KiB is written, flushed and removed, so a read-only or full disk is
    found before any work is done. Raises :class:`DataAccessError` naming ``folder``.
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise DataAccessError(f"{what} '{folder}': '{existing}' is a file, expected a folder")
    try:
        probe = existing / f".write-test-{secrets.token_hex(4)}"
        try:
            with open(probe, "wb") as f:
                f.write(b"x" * 4096)
                f.flush()
                os.fsync(f.fileno())
        finally:
            with contextlib.suppress(OSError):
                probe.unlink(missing_ok=True)
    except OSError as exc:
        raise DataAccessError(f"{what} '{folder}': cannot be written: {reason(exc)}") from None
    return folder


def make_folder(folder: str | os.PathLike, what: str = "folder") -> Path:
    """Create ``folder`` (and its parents) if needed; OS errors become DataAccessError."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise DataAccessError(f"{what} '{folder}': a file is in the way") from None
    except OSError as exc:
        raise DataAccessError(f"{what} '{folder}': cannot be created: {reason(exc)}") from None
    return folder


#: first characters that make a spreadsheet read a text cell as a formula (CSV injection)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
FORMULA_PATTERN = r"^[=+\-@\t\r]"


def spreadsheet_safe(data):
    """``data`` with every text cell that starts like a formula prefixed with ``'``.

    A text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is
    run as a formula when a CSV or XLSX file is opened in a spreadsheet (OWASP "CSV
    injection"); the leading apostrophe makes it text. Numeric, date and boolean columns
    are left as they are (numbers are written as numbers, never prefixed). Takes and
    returns a pandas DataFrame or an Ibis table (computed on the engine).
    """
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        out = data.copy()
        for name in out.columns:
            col = out[name]
            if pd.api.types.is_string_dtype(col) or col.dtype == object:
                text = col.astype("string")
                formula = text.str.match(FORMULA_PATTERN).fillna(False).astype(bool)
                if formula.any():
                    out[name] = col.where(~formula, "'" + text).astype(col.dtype)
        return out
    import ibis

    exprs = {}
    for name, dtype in data.schema().items():
        if dtype.is_string():
            col = data[name]
            exprs[name] = ibis.cases(
                (col.substr(0, 1).isin(list(FORMULA_STARTS)), ibis.literal("'") + col),
                else_=col,
            )
    return data.mutate(**exprs) if exprs else data
