"""The pure core: algorithms with no Dagster imports, unit-tested directly."""
