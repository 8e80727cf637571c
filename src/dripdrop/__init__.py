"""DripDrop: a PostgreSQL-backed, multi-channel messaging sequence engine."""
