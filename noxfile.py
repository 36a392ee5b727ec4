"""The versions users run: Python 3.10-3.13, Django 5.2 and 6.1, redis-py 7 and 8.

Sessions (``nox -l`` lists them; ``make matrix`` runs them all):

* ``tests(python, django)``: the default suite (SQLite, in-memory layer, e2e included) on each
  Python with Django 5.2, and with Django 6.1 where the Python supports it (Django 6.0 and 6.1
  require Python 3.12+). Arguments after ``--`` go to pytest instead of the whole suite. The
  sessions tagged ``newest`` (each Python with the newest Django it supports) are the fast slice
  that ``make test`` runs with ``-- -m "not e2e"``, less the one of its own interpreter and
  Django (``SMS_MATRIX_COVERED``, e.g. ``3.11-5.2``), whose whole suite it has just run.
* ``services(redis)``: the PostgreSQL + Redis configuration (``tests/run_services.py``: both
  channels_redis layers) with redis-py 7 and with redis-py 8, on the newest Python and Django.
  Arguments after ``--`` go to ``tests/run_services.py`` (and so to pytest).

Interpreters come from pyenv (the newest ``$(pyenv root)/versions/X.Y.*`` of each, put first on
PATH), else from ``pythonX.Y`` on PATH; nox never downloads one. A missing interpreter's
sessions are skipped, and fail when the ``CI`` environment variable is set.

Virtualenvs (in ``.nox``) are reused: a session installs again only when pyproject.toml or its
pins changed since the last install into that venv (``nox -N`` recreates the venvs).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import nox
from nox.logger import logger

ROOT = Path(__file__).resolve().parent


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


#: Python 3.10 gets older releases of a few dependencies (pyproject.toml's markers):
#: strawberry-graphql 0.334.4, whose view checks no websocket origin (the consumer's own check,
#: origins.py, is what every version runs), and websockets 16 for the tests.
PYTHONS = ("3.10", "3.11", "3.12", "3.13")
#: Django series tested -> the oldest Python it supports (Django 6.x requires Python 3.12+).
DJANGOS = {"5.2": "3.10", "6.1": "3.12"}
#: redis-py major versions tested under channels_redis.
REDIS_PYS = ("7", "8")
#: The services sessions run on the newest Python with the newest Django.
SERVICES_PYTHON = PYTHONS[-1]
SERVICES_DJANGO = max(DJANGOS, key=_key)

nox.options.reuse_venv = "yes"
nox.options.download_python = "never"
nox.options.sessions = ["tests", "services"]


def _pyenv_root() -> Path | None:
    root = os.environ.get("PYENV_ROOT")
    if root:
        return Path(root)
    if shutil.which("pyenv"):
        found = subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=False)
        if found.returncode == 0 and found.stdout.strip():
            return Path(found.stdout.strip())
    default = Path.home() / ".pyenv"
    return default if default.is_dir() else None


def _pyenv_bin_dirs() -> dict[str, Path]:
    """``{"3.12": .../versions/3.12.1/bin, ...}``: the newest pyenv patch release of each Python
    the matrix tests (CPython only: no ``-dev``, no free-threaded build)."""
    root = _pyenv_root()
    found: dict[str, tuple[tuple[int, ...], Path]] = {}
    if root is None or not (root / "versions").is_dir():
        return {}
    for entry in (root / "versions").iterdir():
        match = re.fullmatch(r"(3\.\d+)\.(\d+)", entry.name)
        if match is None or match.group(1) not in PYTHONS:
            continue
        minor = match.group(1)
        if not (entry / "bin" / f"python{minor}").exists():
            continue
        version = _key(entry.name)
        if minor not in found or version > found[minor][0]:
            found[minor] = (version, entry / "bin")
    return {minor: path for minor, (_, path) in found.items()}


# pyenv's shims run only the versions pyenv has activated: its interpreters themselves go first
# on PATH, where nox looks for python3.X.
_PYENV_BINS = _pyenv_bin_dirs()
os.environ["PATH"] = os.pathsep.join(
    [*(str(path) for path in _PYENV_BINS.values()), os.environ.get("PATH", "")]
)
for _missing in (minor for minor in PYTHONS if minor not in _PYENV_BINS):
    logger.warning(
        "Python %s: no pyenv version %s.* found; nox looks for python%s on PATH, and skips "
        "its sessions if there is none (they fail when CI is set)",
        _missing,
        _missing,
        _missing,
    )


def _tests_params() -> list[object]:
    params = []
    for python in PYTHONS:
        supported = [dj for dj, oldest in DJANGOS.items() if _key(python) >= _key(oldest)]
        newest = max(supported, key=_key)
        for django in supported:
            tags = ["newest"] if django == newest else []
            params.append(nox.param(python, django, tags=tags))
    return params


def _django_pin(series: str) -> str:
    return f"Django~={series}.0"


def _install(session: nox.Session, *pins: str) -> None:
    """Install the package with its test extra and ``pins``, unless this venv already has
    exactly that (same pyproject.toml, same pins)."""
    key = hashlib.sha256(
        "\n".join([(ROOT / "pyproject.toml").read_text(), *pins]).encode()
    ).hexdigest()
    location = getattr(session.virtualenv, "location", None)
    stamp = Path(location) / ".sms-installed" if location else None
    if stamp is not None and stamp.exists() and stamp.read_text() == key:
        session.log("up to date: pyproject.toml and the pins are those installed")
    else:
        session.install("-e", ".[test]", *pins)
        if stamp is not None:
            stamp.write_text(key)
    session.run(
        "python",
        "-c",
        "import sys, django, strawberry, channels, redis, importlib.metadata as m; "
        "print('Python', sys.version.split()[0], '| Django', django.get_version(), "
        "'| strawberry-graphql', m.version('strawberry-graphql'), '| channels', "
        "channels.__version__, '| channels-redis', m.version('channels-redis'), "
        "'| redis-py', redis.__version__)",
        silent=False,
    )


@nox.session(download_python="never")
@nox.parametrize("python,django", _tests_params())
def tests(session: nox.Session, django: str) -> None:
    """The default suite (SQLite, in-memory layer) on one Python and Django series."""
    # make test sets this to its own interpreter's "3.11-5.2": that suite has just run there.
    if os.environ.get("SMS_MATRIX_COVERED") == f"{session.python}-{django}":
        session.skip(
            f"Python {session.python} with Django {django} is the default interpreter's, "
            "whose run of the whole suite make test has just made"
        )
    _install(session, _django_pin(django))
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=SERVICES_PYTHON, download_python="never")
@nox.parametrize("redis", REDIS_PYS)
def services(session: nox.Session, redis: str) -> None:
    """The PostgreSQL + channels_redis configuration with one redis-py major version."""
    _install(session, _django_pin(SERVICES_DJANGO), f"redis>={redis},<{int(redis) + 1}")
    session.run("python", "tests/run_services.py", *session.posargs)
