"""Shared test helpers: one batch helper, one manifest builder, factories of state rows.

Imported as `tests.support...`; no test imports helpers from a conftest file.
"""
