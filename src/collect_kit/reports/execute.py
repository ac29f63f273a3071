"""One notebook of a run: executed with papermill into a whole file, then exported to HTML
and PDF. Each file is written under a temporary name and renamed when complete
(:func:`collect_kit.files.write_atomic`).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import files
from .processes import recording_kernel_manager
from .runs import one_line


@dataclass
class Failure:
    """Where and why a notebook failed: the cell's index (None when unknown: the kernel
    died or timed out), its execution count (``In [n]``) and the exception's message."""

    cell: int | None
    exec_count: int | None
    message: str


def execute_notebook(
    source: Path,
    out: Path,
    parameters: dict,
    cwd: Path,
    kernel_name: str,
    on_kernel_start: Callable[[int], None],
    km=None,
) -> Failure | None:
    """Run the notebook ``source`` with papermill (``parameters`` injected, ``cwd`` its
    working folder) into a temporary file renamed to ``out`` when done, also when a cell
    failed: the executed notebook is the evidence. ``on_kernel_start(pid)`` is called for
    the kernel it starts. ``km``: the manager of a kernel already started in ``cwd``
    (:mod:`.kernels`; the caller stops it), else papermill starts one. Returns the failure,
    or None when every cell ran."""
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    failures: list[Failure] = []

    def execute(tmp: Path) -> None:
        try:
            with warnings.catch_warnings():  # the temporary name does not end in .ipynb
                warnings.filterwarnings("ignore", "The specified file", UserWarning)
                pm.execute_notebook(
                    str(source), str(tmp), parameters=parameters,
                    kernel_name=kernel_name, progress_bar=False, cwd=str(cwd),
                    **({"km": km} if km is not None else
                       {"kernel_manager_class": recording_kernel_manager(on_kernel_start)}),
                )  # fmt: skip
        except pm.PapermillExecutionError as exc:
            failures.append(
                Failure(exc.cell_index, exc.exec_count, f"{exc.ename}: {one_line(exc.evalue)}")
            )
        except (DeadKernelError, CellTimeoutError) as exc:
            if not Path(tmp).exists():
                raise
            failures.append(Failure(None, None, f"{exc.__class__.__name__}: {one_line(exc)}"))

    files.write_atomic(out, execute, "executed notebook")
    return failures[0] if failures else None


def cells_seconds(executed: Path) -> float:
    """The seconds spent in the cells of an executed notebook (papermill records each
    cell's duration; a cell without one counts 0)."""
    cells = json.loads(executed.read_text(encoding="utf-8"))["cells"]
    return float(sum(c["metadata"].get("papermill", {}).get("duration") or 0.0 for c in cells))


def export_notebook(
    executed: Path, folder: Path, name: str, header: str, language: str, page_size: str
) -> list[str]:
    """``<folder>/<name>.html`` and ``.pdf`` of an executed notebook, and its tables as
    ``<name>.xlsx`` and ``<name>-tables/*.csv`` (:mod:`.spreadsheet`), each written whole
    or not at all; ``header`` is the page title and the PDF's running header. Returns the
    table files (relative to ``folder``)."""
    from . import export, spreadsheet

    document = export.html_document(
        export.notebook_body(executed), header, header, language, page_size
    )
    files.write_atomic(folder / f"{name}.html", document, "report HTML")
    files.write_atomic(
        folder / f"{name}.pdf", lambda tmp: export.write_pdf(document, tmp), "report PDF"
    )
    return spreadsheet.write_tables(document, folder, name)
