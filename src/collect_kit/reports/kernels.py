"""Kernels started one notebook ahead: while a run's notebook executes, the kernel of the
next one starts and loads the modules that notebook imports, so the notebook begins with
them loaded.

A kernel and the package's imports take about 4 s of one core per notebook (1.5-2 s to
start, 2.5-3.5 s to import pandas, Ibis, matplotlib, seaborn and scipy). Started ahead,
that work overlaps the previous notebook's queries instead of adding to the run.

The kernels are managed on a thread of their own with its own event loop: started,
warmed and stopped there. Papermill receives a started kernel's manager (nbclient then
only opens its own client to it). The modules load silently (no output, no history, the
execution count stays at 0) and bind no name in the kernel's namespace; the notebook's
own import statements then find them loaded. So the executed notebook is what a cold
kernel would have produced.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import threading
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path

from .processes import recording_kernel_manager

#: seconds a kernel may take to start and run its imports before it is given up
#: (the notebook then starts its own kernel, as papermill does)
WARM_UP_SECONDS = 120.0


def imported_modules(notebook: Path) -> list[str]:
    """The modules the top-level ``import`` and ``from ... import`` statements of the code
    cells of ``notebook`` load, in order: ``import a.b`` gives ``a.b``; ``from a import b``
    gives ``a`` and ``a.b`` (``b`` may be a submodule; when it is not, importing it fails
    and is skipped). A cell Python cannot parse (e.g. with a magic) and relative imports
    are skipped."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    names = []
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        try:
            tree = ast.parse("".join(cell.get("source", "")))
        except SyntaxError:
            continue
        for node in tree.body:
            if isinstance(node, ast.Import):
                names += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names += [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
    return list(dict.fromkeys(names))


def warm_up_code(modules: list[str]) -> str:
    """Code that imports ``modules`` (skipping any that fails) and leaves the kernel's
    namespace as it found it: the notebook's own statements bind its names."""
    return (
        "def __collect_kit_warm_up(names):\n"
        "    import importlib\n"
        "    for name in names:\n"
        "        try:\n"
        "            importlib.import_module(name)\n"
        "        except Exception:\n"
        "            pass\n"
        f"__collect_kit_warm_up({modules!r})\n"
        "del __collect_kit_warm_up\n"
    )


class KernelStarter:
    """Starts kernels ahead of the notebooks that use them (module docstring).

    ``kernel_name``: the Jupyter kernel; ``on_start(pid)``: called for each kernel launched,
    as papermill's kernels are (the run records it and stops it if the run is stopped).
    Use as a context manager: on exit every kernel it started is stopped.
    """

    def __init__(self, kernel_name: str, on_start: Callable[[int], None]):
        self.kernel_name = kernel_name
        self.manager_class = recording_kernel_manager(on_start)
        self.started: list = []  # the kernel managers, to stop on exit
        self.tasks: list[asyncio.Task] = []  # the starts, to cancel on exit
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="collect-kit-kernels", daemon=True
        )
        self.thread.start()

    def start(self, cwd: Path, notebook: Path) -> Future:
        """A kernel started in ``cwd`` with the modules ``notebook`` imports loaded
        (:func:`imported_modules`): a future of its kernel manager (for papermill's ``km``)."""
        code = warm_up_code(imported_modules(notebook))
        return asyncio.run_coroutine_threadsafe(self._start(cwd, code), self.loop)

    async def _start(self, cwd: Path, code: str):
        self.tasks.append(asyncio.current_task())
        km = self.manager_class(kernel_name=self.kernel_name)
        self.started.append(km)
        # nbclient starts its kernels with the history in memory: no history file written
        await km.start_kernel(cwd=str(cwd), extra_arguments=["--HistoryManager.hist_file=:memory:"])
        kc = km.client()
        kc.start_channels()
        try:
            await kc.wait_for_ready(timeout=WARM_UP_SECONDS)
            if code:
                await kc.execute(
                    code, silent=True, store_history=False, reply=True, timeout=WARM_UP_SECONDS
                )
        finally:
            kc.stop_channels()
        return km

    def take(self, ahead: Future):
        """The kernel manager of a :meth:`start`, once ready; None when it could not start
        in :data:`WARM_UP_SECONDS` (the notebook then starts its own)."""
        try:
            return ahead.result(timeout=WARM_UP_SECONDS)
        except Exception:  # noqa: BLE001 - papermill then starts a kernel and reports its error
            return None

    def stop(self, km) -> None:
        """Stop the kernel of ``km`` (None: nothing) and remove its connection file."""
        if km is None:
            return
        done = asyncio.run_coroutine_threadsafe(self._stop(km), self.loop)
        with contextlib.suppress(Exception):  # the run's supervision stops what is left
            done.result(timeout=30)

    @staticmethod
    async def _stop(km) -> None:
        if km.has_kernel:
            await km.shutdown_kernel(now=True)

    def __enter__(self) -> KernelStarter:
        return self

    async def _close(self) -> None:
        """Cancel the starts still going (a run stopped meanwhile), then stop every kernel
        started."""
        going = [t for t in self.tasks if not t.done()]
        for task in going:
            task.cancel()
        await asyncio.gather(*going, return_exceptions=True)
        for km in self.started:
            with contextlib.suppress(Exception):
                await self._stop(km)

    def __exit__(self, *exc) -> None:
        done = asyncio.run_coroutine_threadsafe(self._close(), self.loop)
        with contextlib.suppress(Exception):  # the run's supervision stops what is left
            done.result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()
