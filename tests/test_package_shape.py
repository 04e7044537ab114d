"""The package's shape, checked on its source: who imports whom, and what loads what.

- a component uses another only through its face (``jhub_af.<component>``, its
  ``__init__.py``), never through one of its modules;
- no component imports ``demo`` (the demo imports them; only the CLI runs it);
- importing a light face loads none of the heavy libraries it does not need
  (each import runs in a fresh interpreter).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "jhub_af"
COMPONENTS = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists())


def _component_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else ""  # "" for top-level modules such as cli.py


def _imports(path: Path):
    """Yield (line, dotted name) of every jhub_af module that ``path`` imports."""
    tree = ast.parse(path.read_text(), str(path))
    package = ".".join(("jhub_af", *path.relative_to(PACKAGE).parent.parts))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, node.module] if node.module else base)
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:  # ``from jhub_af.x import module``
                yield node.lineno, f"{module}.{alias.name}"


def _cross_imports():
    for path in sorted(PACKAGE.rglob("*.py")):
        own = _component_of(path)
        for line, name in _imports(path):
            parts = name.split(".")
            if parts[0] != "jhub_af" or len(parts) < 2 or parts[1] not in COMPONENTS:
                continue
            if parts[1] != own:
                yield path.relative_to(PACKAGE.parent), line, name


def test_components_use_each_other_only_through_their_faces():
    reached_in = []
    for path, line, name in _cross_imports():
        parts = name.split(".")
        face = f"jhub_af.{parts[1]}"
        module_of_face = len(parts) > 2 and (PACKAGE / parts[1] / f"{parts[2]}.py").exists()
        subpackage = len(parts) > 2 and (PACKAGE / parts[1] / parts[2]).is_dir()
        if module_of_face or subpackage:
            reached_in.append(f"{path}:{line} imports {name} (use {face})")
    assert reached_in == []


def test_only_the_cli_imports_the_demo():
    # the demo configures every component; no component may depend on it (spawner's
    # check-config used to, so that spawner and demo imported each other)
    found = [
        f"{path}:{line} imports {name}"
        for path, line, name in _cross_imports()
        if name.split(".")[1] == "demo" and _component_of(PACKAGE.parent / path) != ""
    ]
    assert found == []


LIGHT = {
    # a user's server and the gateway read these; neither needs the hub or a database
    "jhub_af.accounting": ["sqlalchemy", "jupyterhub"],
    "jhub_af.accounting.client": ["sqlalchemy", "jupyterhub"],
    "jhub_af.hub": ["jupyterhub", "tornado", "sqlalchemy"],
    "jhub_af.gateway": ["dask_gateway_server", "sqlalchemy", "jupyterhub", "kubernetes_asyncio"],
    # af-ssh runs beside the hub, not inside it
    "jhub_af.ssh": ["jupyterhub", "sqlalchemy", "batchspawner", "kubespawner"],
    # the panel's handlers load with the server extension, not with the face
    "jhub_af.lab": ["jupyterhub", "sqlalchemy", "dask_gateway_server", "asyncssh"],
}
CHILD = (
    "import json, sys; import {module}; "
    "print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))"
)


@pytest.mark.parametrize("module", sorted(LIGHT))
def test_light_faces_load_no_heavy_library(module):
    heavy = LIGHT[module]
    out = subprocess.run(
        [sys.executable, "-c", CHILD.format(module=module, heavy=heavy)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert json.loads(out) == []


def test_importing_the_package_patches_nothing_in_jupyterhub():
    code = (
        "from jupyterhub import apihandlers; before = list(apihandlers.default_handlers); "
        "import jhub_af.spawner, jhub_af.auth, jhub_af.accounting, jhub_af.gateway; "
        "print(before == list(apihandlers.default_handlers))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    assert out.strip() == "True"


ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"


def _documented_uses() -> dict[str, set[str]]:
    """The table under "## Who uses whom" in docs/architecture.md: component -> uses."""
    text = ARCHITECTURE.read_text()
    section = text.split("## Who uses whom", 1)[1].split("\n## ", 1)[0]
    uses = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        names = {n.strip("` ") for n in cells[1].split(",") if n.strip("` ") not in ("", "-")}
        uses[cells[0].strip("`")] = names
    return uses


def _actual_uses() -> dict[str, set[str]]:
    uses: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        own = _component_of(path) or path.name
        if own == "__init__.py" or own.startswith("_"):
            continue
        uses.setdefault(own, set())
    for path, _line, name in _cross_imports():
        own = _component_of(PACKAGE.parent / path) or path.name
        uses[own].add(name.split(".")[1])
    return uses


def test_the_architecture_page_says_who_uses_whom_as_the_imports_do():
    assert _documented_uses() == _actual_uses()


def _public_definitions_without_docstring():
    """(path:line, name) of every public function, method and class with no docstring."""
    for path in sorted(PACKAGE.rglob("*.py")):
        if "alembic" in path.parts:  # migrations are generated history
            continue
        stack = [("", ast.parse(path.read_text()).body)]
        while stack:
            prefix, body = stack.pop()
            for node in body:
                defines = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
                if not isinstance(node, defines) or node.name.startswith("_"):
                    continue
                if not ast.get_docstring(node):
                    yield f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {prefix}{node.name}"
                if isinstance(node, ast.ClassDef):
                    stack.append((f"{node.name}.", node.body))


def test_every_public_function_and_hook_says_what_it_does():
    # the contract lives on the function (what it takes, returns, raises, who calls it)
    assert list(_public_definitions_without_docstring()) == []
