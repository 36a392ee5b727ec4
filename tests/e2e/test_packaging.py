"""The package as users get it: a wheel and an sdist that ``twine check`` accepts, installed into
a fresh virtualenv, where the e2e stream-protocol and typed-subscription suites pass against the
installed copy (its templates and static files included), not this checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import strawberry_model_subs

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
#: The suites run against the installed package: the stream protocol over a real server, the
#: typed subscriptions through gql, the demo site's page (templates and static files).
SUITES = ["tests/e2e/test_stream_protocol.py", "tests/e2e/test_gql_client.py"]


def run(*args: str | Path, cwd: Path = ROOT, timeout: float = 600) -> str:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
    )
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "build", "--outdir", out, ROOT)
    return out


def test_the_wheel_and_sdist_pass_twine_check_and_hold_the_package_data(dist: Path) -> None:
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    assert (
        wheel.name == f"strawberry_model_subs-{strawberry_model_subs.__version__}-py3-none-any.whl"
    )
    assert "PASSED" in run(sys.executable, "-m", "twine", "check", "--strict", wheel, sdist)
    names = set(zipfile.ZipFile(wheel).namelist())
    for data in (
        "strawberry_model_subs/py.typed",
        "strawberry_model_subs/templates/strawberry_model_subs/client.html",
        "strawberry_model_subs/static/strawberry_model_subs/client.js",
        "strawberry_model_subs/static/strawberry_model_subs/client.css",
    ):
        assert data in names, f"the wheel lacks {data}"
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_the_e2e_suites_pass_against_the_installed_wheel(
    dist: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    (wheel,) = dist.glob("*.whl")
    venv = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", f"{wheel}[test]")
    # A copy of the tests, without the package's source beside them: only the wheel can answer.
    project = tmp_path_factory.mktemp("project")
    shutil.copytree(
        ROOT / "tests", project / "tests", ignore=shutil.ignore_patterns("node_modules")
    )
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    where = run(python, "-c", "import strawberry_model_subs as m; print(m.__file__)", cwd=project)
    assert where.startswith(str(venv)), f"imported from {where}, not the installed wheel"
    out = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *SUITES, cwd=project)
    assert " passed" in out, out
    assert "failed" not in out, out
    assert "skipped" not in out, out
