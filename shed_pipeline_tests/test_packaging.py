"""Every package the code, its tests and its benchmarks import is declared in pyproject.toml (not only
pulled in by another): the package's in its dependencies, the tests' and benchmarks' in an extra."""

import ast
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

import shed_pipeline

PACKAGE = Path(shed_pipeline.__file__).parent
ROOT = PACKAGE.parent
PYPROJECT = ROOT / "pyproject.toml"
SOURCES = [PACKAGE, ROOT / "shed_pipeline_tests", ROOT / "bench"]
LOCAL = {"shed_pipeline", "shed_pipeline_tests"} | {p.stem for p in (ROOT / "bench").glob("*.py")}
# Runs in a virtual environment of its own (pyDVL pins numpy < 2), installed as its docstring says.
OWN_ENVIRONMENT = {ROOT / "bench" / "bench_pydvl.py"}


def imported_top_level_modules() -> set[str]:
    found = set()
    for path in (p for folder in SOURCES for p in folder.rglob("*.py") if p not in OWN_ENVIRONMENT):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - LOCAL


def declared_distributions() -> set[str]:
    tomllib = pytest.importorskip("tomllib")  # the standard library's from Python 3.11
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    specs = project["dependencies"] + [s for extra in project["optional-dependencies"].values() for s in extra]
    return {re.split(r"[\s<>=!~\[;]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in specs}


def test_every_imported_package_is_declared():
    by_module = packages_distributions()
    declared = declared_distributions()
    undeclared = {
        module: dists
        for module in sorted(imported_top_level_modules())
        for dists in [[d.lower().replace("_", "-") for d in by_module.get(module, [module])]]
        if not set(dists) & declared
    }
    assert undeclared == {}
