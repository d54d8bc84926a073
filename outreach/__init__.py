"""Outreach: the pure rules behind contacting a resident first, and checking in later.

Nothing here does I/O or reads the clock: a time arrives as an argument, so schedules,
quiet hours and check-in dates can be tested at any date. `phone` reads the numbers an
outreach worker types; `quiet_hours` says when a text may go; `timing` reads `--after 3m`
and `--at 2027-03-01`.
"""
