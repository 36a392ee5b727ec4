"""The layering of docs/architecture.md, as pyproject.toml's import-linter contract states it:
every module of the package has its place, and the document names each one."""

from __future__ import annotations

import pkgutil
import re
import sys
from pathlib import Path

import strawberry_model_subs

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent


def contract_layers() -> list[list[str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    contracts = config["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    return [[name.strip() for name in re.split(r"[|:]", line)] for line in layers]


def package_modules() -> set[str]:
    return {info.name for info in pkgutil.iter_modules(strawberry_model_subs.__path__)}


def test_every_module_of_the_package_has_a_layer() -> None:
    placed = [name for line in contract_layers() for name in line]
    assert sorted(placed) == sorted(set(placed)), "a module is in two layers"
    assert set(placed) == package_modules()


def test_the_architecture_document_names_every_module() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    missing = sorted(m for m in package_modules() if f"`{m}.py`" not in text)
    assert missing == []
