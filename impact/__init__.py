"""Impact: what a council reads across people. Cohort reports, gains by initiative, personas,
exports (CSV, XLSX, FLOIP, outcome flags, the sector benchmark) and the demo database.

Staff side: it reads through `storage` and scores through `scoring`; nothing in the pure core
imports it.
"""
