"""Fault probes: each feeds the SDK and store something that once lost calls or memory, on
SQLite and PostgreSQL, and asserts the exact accounting identity (see ``_accounting``)."""
