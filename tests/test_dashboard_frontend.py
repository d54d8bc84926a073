"""The dashboard is built on the GOV.UK Design System without GOV.UK's branding: the vendored
GOV.UK Frontend is the release govuk-frontend-jinja's pin is made for, its styles use no GOV.UK
typeface or crown, and the pages are served with them."""

from __future__ import annotations

import json
import re
from importlib.metadata import version
from pathlib import Path

from flask import Flask

from tests.dashboard_support import Staff, page_text, signed_in

DASHBOARD = Path(__file__).resolve().parent.parent / "dashboard"
STATIC = DASHBOARD / "static" / "govuk"

# govuk-frontend-jinja's compatibility table: the GOV.UK Frontend release each is made for.
JINJA_MACROS_FOR = {"4.1.0": "6.3.0", "4.0.0": "6.0.0"}


def test_the_vendored_release_is_the_one_the_jinja_macros_are_made_for() -> None:
    vendored = (STATIC / "VERSION").read_text().strip()
    pinned = json.loads((DASHBOARD / "frontend" / "package.json").read_text())
    assert pinned["dependencies"]["govuk-frontend"] == vendored
    assert JINJA_MACROS_FOR[version("govuk-frontend-jinja")] == vendored


def test_the_styles_carry_no_gov_uk_typeface_or_crown() -> None:
    css = (STATIC / "govuk-frontend.min.css").read_text()
    assert "GDS Transport" not in css
    assert "@font-face" not in css
    assert not list(STATIC.glob("**/*.woff*"))
    assert not list(STATIC.glob("**/*crown*"))
    assert not list(STATIC.glob("**/*crest*"))


def test_pages_use_gov_uk_frontend_with_no_crown_and_their_assets_are_served(
    dashboard: Flask, staff: Staff
) -> None:
    client = signed_in(dashboard, staff.north_worker)
    page = client.get("/password")
    html = page.get_data(as_text=True)
    assert 'class="govuk-template' in html
    assert "govuk-service-navigation" in html
    assert "govuk-header__logo" not in html
    assert "crown" not in html.lower()
    assert "GOV.UK" not in page_text(page)
    for asset in re.findall(r'(?:href|src)="(/dashboard-assets/[^"]+)"', html):
        served = client.get(asset)
        assert served.status_code == 200, asset
        served.close()


def test_styles_and_scripts_are_revalidated_not_downloaded_again(
    dashboard: Flask, staff: Staff
) -> None:
    client = signed_in(dashboard, staff.north_worker)
    asset = "/dashboard-assets/govuk/govuk-frontend.min.css"
    first = client.get(asset)
    again = client.get(asset, headers={"If-None-Match": first.headers["ETag"]})
    assert first.headers["Cache-Control"] == "no-cache"
    assert again.status_code == 304
    assert client.get("/respondents").headers["Cache-Control"] == "no-store"
    first.close()
    again.close()
