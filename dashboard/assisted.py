"""PLACEHOLDER: being built (issue #9)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint

from dashboard.accounts import StaffMember
from dashboard.site import Site


def register(pages: Blueprint, site: Site) -> None:
    @pages.get("/respondents/<int:respondent_id>/assisted", endpoint="assisted")
    @site.staff_page
    def placeholder(member: StaffMember, **_: Any) -> str:
        return "not built yet"
