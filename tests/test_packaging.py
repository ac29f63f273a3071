"""The kit as users install it: a wheel built from this tree, in a fresh virtual environment.

The wheel must carry the packaged configs and notebooks, so that `collect-kit demo` and
`collect-kit report run monthly` work from an empty folder, with nothing of this checkout
on the path. The fresh environment gets the wheel itself; its dependencies come from the
test environment's site-packages (a path entry, not an install), so the test needs no
network and checks what the wheel contains, not what PyPI serves (the dependencies' data
files, such as nbconvert's templates, are found through ``JUPYTER_PATH``).
"""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(args: list, cwd: Path, env: dict | None = None, timeout: int = 600):
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env=env,
    )  # fmt: skip


@pytest.mark.slow
def test_wheel_installs_and_runs_the_demo_and_the_report_from_an_empty_folder(tmp_path):
    source = tmp_path / "source"  # build from a copy: the checkout gets no build/ folder
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info", "__pycache__")
    )
    dist = tmp_path / "dist"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                  "-w", dist, source], cwd=tmp_path)  # fmt: skip
    assert built.returncode == 0, built.stderr
    wheel = next(dist.glob("collect_kit-*.whl"))

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    python = env_dir / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   cwd=tmp_path).stdout.strip()  # fmt: skip
    # dependencies: the test environment's site-packages, after the fresh one (a plain path
    # entry: its .pth files, such as the editable install of this checkout, are not run)
    (Path(purelib) / "zz_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    installed = _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps",
                      "--no-index", wheel], cwd=tmp_path)  # fmt: skip
    assert installed.returncode == 0, installed.stderr

    work = tmp_path / "empty"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PATH=f"{env_dir / 'bin'}:{env['PATH']}", COLLECT_KIT_CACHE=str(tmp_path / "cache"))
    # the dependencies' data files (nbconvert's templates) live under their prefix
    env["JUPYTER_PATH"] = str(Path(sys.prefix) / "share" / "jupyter")
    where = _run([python, "-c", "import collect_kit; print(collect_kit.__file__)"], work, env)
    assert where.stdout.strip().startswith(str(env_dir)), where.stdout + where.stderr

    cli = env_dir / "bin" / "collect-kit"
    demo = _run([cli, "demo", "--customers", "3000"], work, env)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert (work / "data" / "sample.duckdb").is_file()
    report = _run([cli, "report", "run", "monthly", "--quiet"], work, env, timeout=900)
    assert report.returncode == 0, report.stdout + report.stderr
    latest = work / "reports" / "monthly" / "latest"
    names = {p.name for p in latest.iterdir()}
    for notebook in ("portfolio_report", "segmentation", "experiment_readout", "strategy_plan"):
        assert {f"{notebook}.html", f"{notebook}.pdf"} <= names
        assert (latest / f"{notebook}.pdf").read_bytes().startswith(b"%PDF")
