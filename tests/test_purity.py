"""The pure core (bot/, flows/, scoring/) imports no web, database, HTTP, clock or randomness."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE = ("bot", "flows", "scoring")
FORBIDDEN_MODULES = {
    "flask",
    "werkzeug",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "sqlite3",
    "requests",
    "httpx",
    "aiohttp",
    "urllib",
    "http",
    "socket",
    "telegram",
    "twilio",
    "time",
    "random",
    "secrets",
    "uuid",
    "os",
    "subprocess",
    "threading",
    "asyncio",
    "storage",
    "channels",
    "dibot",
}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter"}


def core_modules() -> list[Path]:
    return sorted(p for package in CORE for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", core_modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_imports_nothing_impure(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        for name in names:
            assert name.split(".")[0] not in FORBIDDEN_MODULES, f"{path.name} imports {name}"
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_CALLS:
            assert not isinstance(node.ctx, ast.Load) or not _is_call_target(tree, node), (
                f"{path.name} line {node.lineno} calls .{node.attr}() (a clock)"
            )


def _is_call_target(tree: ast.AST, attribute: ast.Attribute) -> bool:
    return any(isinstance(n, ast.Call) and n.func is attribute for n in ast.walk(tree))


def test_importing_the_core_loads_no_impure_module() -> None:
    """What the core pulls in at run time, transitively, in a fresh interpreter."""
    code = (
        "import sys; import bot.engine, bot.matching, flows.loader, scoring; "
        "print('\\n'.join(sorted(sys.modules)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    impure = {
        "flask",
        "sqlalchemy",
        "httpx",
        "requests",
        "aiohttp",
        "telegram",
        "twilio",
        "random",
        "psycopg",
        "sqlite3",
        "storage",
        "channels",
        "dibot",
    }
    assert sorted(m for m in loaded if m.split(".")[0] in impure) == []
