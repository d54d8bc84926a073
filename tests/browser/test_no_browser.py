"""Without Chromium the browser tests say so: skipped with the reason, or, when
REQUIRE_BROWSER_TESTS=1 (as CI runs them), failed, never passed unseen. Run as a separate
pytest on one browser test, with BROWSER_TESTS_CHROMIUM naming a browser that is not there."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.browser.support import CHROMIUM_VARIABLE, REQUIRE_BROWSER

ROOT = Path(__file__).resolve().parents[2]
ONE_TEST = "tests/browser/test_sign_in.py::test_the_login_page_passes_axe"


def run_without_chromium(tmp_path: Path, *, required: bool) -> subprocess.CompletedProcess[str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in (REQUIRE_BROWSER, "DIBOT_DATABASE_URL")
    }
    env[CHROMIUM_VARIABLE] = str(tmp_path / "no-such-chromium")
    if required:
        env[REQUIRE_BROWSER] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rsE", ONE_TEST],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("required", [False, True])
def test_no_chromium_skips_with_the_reason_or_fails_when_required(
    tmp_path: Path, required: bool
) -> None:
    run = run_without_chromium(tmp_path, required=required)
    assert f"no Chromium at {tmp_path / 'no-such-chromium'} or on PATH" in run.stdout, run.stdout
    if required:
        assert run.returncode == 1
        assert "1 error" in run.stdout
        assert f"{REQUIRE_BROWSER}=1 requires the browser tests" in run.stdout
    else:
        assert run.returncode == 0
        assert "1 skipped" in run.stdout
    assert "passed" not in run.stdout
