"""A fresh clone installs exactly what the lock files say: requirements/run.txt for the service
(extras postgres) and requirements/dev.txt for development (postgres,dev) carry every package,
direct and indirect, at one version with the hashes of its files, agree with pyproject.toml's
pins and with each other, and the environment running these tests is the dev lock's."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = ROOT / "requirements"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


@dataclass(frozen=True)
class Locked:
    version: str
    hashes: tuple[str, ...]


def read_lock(name: str) -> dict[NormalizedName, Locked]:
    """Each requirement of a pip-compile lock file: `name==version` and its `--hash` options."""
    text = (REQUIREMENTS / name).read_text().replace("\\\n", " ")
    locked: dict[NormalizedName, Locked] = {}
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        assert not words[0].startswith("-"), f"{name}: an option line ties it to a machine: {line}"
        package, _, pinned = words[0].partition("==")
        assert pinned, f"{name}: not pinned to one version: {words[0]}"
        assert canonicalize_name(package) not in locked, f"{name}: {package} twice"
        hashes = tuple(word.removeprefix("--hash=") for word in words[1:])
        assert len(hashes) == len(words) - 1, f"{name}: {package} has options besides hashes"
        locked[canonicalize_name(package)] = Locked(pinned, hashes)
    return locked


RUN = read_lock("run.txt")
DEV = read_lock("dev.txt")
TOOLS = read_lock("tools.txt")


def pins(requirements: list[str]) -> dict[NormalizedName, str]:
    """pyproject.toml's direct requirements, each of which is pinned to one version."""
    pinned: dict[NormalizedName, str] = {}
    for text in requirements:
        requirement = Requirement(text)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"pyproject.toml pins each dependency: {text}"
        pinned[canonicalize_name(requirement.name)] = specifier.version
    return pinned


def extras(*names: str) -> list[str]:
    optional: dict[str, list[str]] = PYPROJECT["project"]["optional-dependencies"]
    return [text for name in names for text in optional[name]]


def disagreements(
    direct: dict[NormalizedName, str], lock: dict[NormalizedName, Locked]
) -> dict[str, tuple[str, str | None]]:
    return {
        name: (pinned, lock[name].version if name in lock else None)
        for name, pinned in direct.items()
        if name not in lock or lock[name].version != pinned
    }


def test_the_run_lock_has_every_direct_pin_of_the_service_at_its_version() -> None:
    direct = pins(PYPROJECT["project"]["dependencies"] + extras("postgres"))
    assert "psycopg" in direct
    assert disagreements(direct, RUN) == {}, "pyproject.toml changed: run `make lock`"


def test_the_dev_lock_has_every_direct_pin_of_the_service_and_the_dev_tools() -> None:
    direct = pins(PYPROJECT["project"]["dependencies"] + extras("postgres", "dev"))
    assert {"pytest", "mypy", "ruff"} <= set(direct)
    assert disagreements(direct, DEV) == {}, "pyproject.toml changed: run `make lock`"


def test_the_dev_lock_holds_the_run_lock_at_the_same_versions() -> None:
    differ = {
        name: (locked.version, DEV[name].version if name in DEV else None)
        for name, locked in RUN.items()
        if name not in DEV or DEV[name].version != locked.version
    }
    assert differ == {}
    assert len(DEV) > len(RUN)


@pytest.mark.parametrize("lock", [RUN, DEV, TOOLS], ids=["run", "dev", "tools"])
def test_every_locked_release_has_a_sha256_hash_of_its_files(
    lock: dict[NormalizedName, Locked],
) -> None:
    unhashed = [name for name, locked in lock.items() if not locked.hashes]
    assert unhashed == []
    assert all(h.startswith("sha256:") and len(h) == 71 for v in lock.values() for h in v.hashes)


@pytest.mark.parametrize("lock", [RUN, DEV], ids=["run", "dev"])
def test_the_build_backend_is_locked_too(lock: dict[NormalizedName, Locked]) -> None:
    for text in PYPROJECT["build-system"]["requires"]:
        requirement = Requirement(text)
        locked = lock[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(locked.version), (text, locked.version)


def test_the_lock_tool_is_the_one_requirements_tools_in_pins() -> None:
    wanted = (REQUIREMENTS / "tools.in").read_text().splitlines()
    direct = pins([line for line in wanted if line.strip() and not line.startswith("#")])
    assert "pip-tools" in direct
    assert disagreements(direct, TOOLS) == {}


@pytest.mark.parametrize("name", ["run.txt", "dev.txt", "tools.txt"])
def test_each_lock_says_which_python_and_platform_it_was_made_for(name: str) -> None:
    header = (REQUIREMENTS / name).read_text().splitlines()[0]
    assert "CPython 3.11 on Linux x86_64" in header


def installed_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def test_the_packages_these_tests_run_with_are_the_dev_locks() -> None:
    differ = {
        name: (locked.version, installed_version(name))
        for name, locked in DEV.items()
        if installed_version(name) != locked.version
    }
    assert differ == {}, "the environment is not the dev lock's: run `make install-dev`"
