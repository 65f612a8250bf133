"""Persistence: tables, engines and the unit of work, migrations. Knows no business rules."""
