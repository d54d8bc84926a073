"""The staff dashboard: council outreach workers' web pages, behind a login.

The rule it keeps: every page but the login page needs a signed-in member of staff whose
account is enabled and whose password has not changed since they signed in; every form carries
a CSRF token (a POST without one is refused with 400); every login, failed login, logout and
password change is written to the audit log. `install` registers it on the web app.
"""

from dashboard.views import install

__all__ = ["install"]
