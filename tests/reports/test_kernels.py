"""Kernels started ahead of their notebooks (:mod:`collect_kit.reports.kernels`): the
notebook's own imports are loaded before its first cell, the executed notebook reads as a
cold kernel's would, and every kernel started is stopped."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat

from collect_kit.reports.execute import execute_notebook
from collect_kit.reports.kernels import KernelStarter, imported_modules
from collect_kit.reports.processes import is_kernel
from collect_kit.reports.runner import KERNEL

#: a module no other test or the kernel's start-up imports
LATE_MODULE = "xml.dom.minidom"


def _notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


def test_imported_modules_are_those_of_the_top_level_imports_of_the_code_cells(tmp_path):
    nb = _notebook(
        tmp_path / "n.ipynb",
        "import os.path\nfrom collections import (\n    OrderedDict,\n    abc,\n)\nx = 1",
        "%matplotlib inline\nimport json",  # a magic: Python cannot parse the cell
        "def f():\n    import csv\n    return csv\nimport os.path\nfrom . import y",
    )
    assert imported_modules(nb) == [
        "os.path", "collections", "collections.OrderedDict", "collections.abc"
    ]  # fmt: skip


def test_a_kernel_started_ahead_has_the_notebooks_imports_before_its_first_cell(tmp_path):
    """The first cell sees the module a later cell imports already loaded when the kernel
    was started ahead, and not loaded in a kernel papermill starts, without its name
    bound in either; the execution counts and outputs are otherwise a cold kernel's; the
    kernel is gone once the starter is."""
    nb = _notebook(
        tmp_path / "warm.ipynb",
        f"import sys\nprint('{LATE_MODULE}' in sys.modules, 'xml' in globals())",
        f"import {LATE_MODULE}",
    )
    pids: list[int] = []
    outputs = {}
    with KernelStarter(KERNEL, pids.append) as kernels:
        km = kernels.take(kernels.start(tmp_path, nb))
        assert km is not None and len(pids) == 1 and is_kernel(pids[0])
        for name, given in (("warm", km), ("cold", None)):
            out = tmp_path / f"{name}-out.ipynb"
            assert execute_notebook(nb, out, {}, tmp_path, KERNEL, pids.append, given) is None
            cells = json.loads(out.read_text())["cells"]
            outputs[name] = [
                (c["execution_count"], "".join("".join(o.get("text", "")) for o in c["outputs"]))
                for c in cells
            ]
        kernels.stop(km)
    assert outputs["warm"] == [(1, "True False\n"), (2, "")]
    assert outputs["cold"] == [(1, "False False\n"), (2, "")]
    assert len(pids) == 2 and not any(is_kernel(pid) for pid in pids)


def test_kernels_started_and_never_used_are_stopped(tmp_path):
    nb = _notebook(tmp_path / "n.ipynb", "import json")
    pids: list[int] = []
    with KernelStarter(KERNEL, pids.append) as kernels:
        kernels.start(tmp_path, nb)
        kernels.start(tmp_path, nb)
    assert len(pids) == 2 and not any(is_kernel(pid) for pid in pids)
