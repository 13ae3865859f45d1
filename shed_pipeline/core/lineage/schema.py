"""The lineage database's tables: their DDL, with the migrations older databases need inline (every
statement is idempotent and runs on each connection that writes), and the tables a run writes."""

from __future__ import annotations

import duckdb

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY, started_at TIMESTAMPTZ NOT NULL, code_version VARCHAR,
        source VARCHAR, source_fingerprint VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS asset_runs (
        run_id VARCHAR NOT NULL, asset VARCHAR NOT NULL, materialized_at TIMESTAMPTZ NOT NULL,
        code_version VARCHAR, config JSON, summary JSON, inputs JSON, PRIMARY KEY (run_id, asset))""",
    """CREATE TABLE IF NOT EXISTS rows (
        run_id VARCHAR NOT NULL, row_id VARCHAR NOT NULL, split VARCHAR NOT NULL, task VARCHAR,
        source_file VARCHAR, source_locator BIGINT)""",
    """CREATE TABLE IF NOT EXISTS quarantine (
        run_id VARCHAR NOT NULL, source_file VARCHAR, source_locator BIGINT, row_id VARCHAR,
        reason VARCHAR NOT NULL, detail VARCHAR, excerpt VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS clusters (
        run_id VARCHAR NOT NULL, cluster_id BIGINT NOT NULL, size BIGINT NOT NULL,
        proxy_row_id VARCHAR NOT NULL, inertia DOUBLE, affected BOOLEAN)""",
    # Databases written before incremental refresh lack the column.
    "ALTER TABLE clusters ADD COLUMN IF NOT EXISTS affected BOOLEAN",
    """CREATE TABLE IF NOT EXISTS row_changes (
        run_id VARCHAR NOT NULL, previous_run_id VARCHAR, row_id VARCHAR NOT NULL, change VARCHAR NOT NULL,
        source_file VARCHAR, source_locator BIGINT, counterpart VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS memberships (
        run_id VARCHAR NOT NULL, row_id VARCHAR NOT NULL, cluster_id BIGINT NOT NULL, sq_distance DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS scores (
        run_id VARCHAR NOT NULL, cluster_id BIGINT NOT NULL, proxy_row_id VARCHAR NOT NULL,
        score DOUBLE NOT NULL, stderr DOUBLE, rank BIGINT NOT NULL, estimator VARCHAR, utility VARCHAR)""",
    """CREATE TABLE IF NOT EXISTS selections (
        run_id VARCHAR NOT NULL, row_id VARCHAR NOT NULL, cluster_id BIGINT, method VARCHAR NOT NULL,
        draw_order BIGINT NOT NULL, score DOUBLE, reason VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS evaluations (
        run_id VARCHAR NOT NULL, metric VARCHAR NOT NULL, value DOUBLE, detail JSON)""",
    # One record per (evaluation arm, benchmark): the target LM fine-tuned on the arm's rows.
    """CREATE TABLE IF NOT EXISTS evaluation_arms (
        run_id VARCHAR NOT NULL, arm VARCHAR NOT NULL, replicate BIGINT NOT NULL, subset_size BIGINT NOT NULL,
        benchmark VARCHAR NOT NULL, metric VARCHAR NOT NULL, value DOUBLE, steps BIGINT)""",
    # The removal-index rule's curve: utility left after dropping the `removed` lowest-valued proxies.
    """CREATE TABLE IF NOT EXISTS removal_curve (
        run_id VARCHAR NOT NULL, removed BIGINT NOT NULL, utility DOUBLE NOT NULL, chosen BOOLEAN NOT NULL)""",
    # Databases written before the removal rule lack the column.
    "ALTER TABLE scores ADD COLUMN IF NOT EXISTS dropped_by_removal_rule BOOLEAN",
    # What source_change_sensor compares (s3:// sources: keys, sizes, ETags); older databases lack it.
    "ALTER TABLE runs ADD COLUMN IF NOT EXISTS source_version VARCHAR",
    # Chat rows: turns not used (after the last assistant turn, tool turns); older databases lack it.
    "ALTER TABLE rows ADD COLUMN IF NOT EXISTS turns_dropped BIGINT",
    # Near-duplicate removal before selection: each removed row, the twin kept in its place, and why.
    """CREATE TABLE IF NOT EXISTS near_duplicates (
        run_id VARCHAR NOT NULL, row_id VARCHAR NOT NULL, kept_row_id VARCHAR NOT NULL, cluster_id BIGINT,
        similarity DOUBLE NOT NULL)""",
    # Per-row values (e.g. knn_shapley, ifd) that selection methods order or weight rows by.
    """CREATE TABLE IF NOT EXISTS row_values (
        run_id VARCHAR NOT NULL, row_id VARCHAR NOT NULL, kind VARCHAR NOT NULL, value DOUBLE)""",
    # Each evaluated arm against the random arms, paired over the same test rows / items.
    """CREATE TABLE IF NOT EXISTS evaluation_comparisons (
        run_id VARCHAR NOT NULL, arm VARCHAR NOT NULL, benchmark VARCHAR NOT NULL, metric VARCHAR NOT NULL,
        arm_mean DOUBLE, random_mean DOUBLE, random_std DOUBLE, difference DOUBLE, ci_low DOUBLE, ci_high DOUBLE,
        z DOUBLE, n BIGINT)""",
]
# The tables holding a run's records (write_table replaces a run's records in one of them).
RUN_TABLES = (
    "rows",
    "row_changes",
    "quarantine",
    "clusters",
    "memberships",
    "scores",
    "selections",
    "evaluations",
    "evaluation_arms",
    "removal_curve",
    "near_duplicates",
    "row_values",
    "evaluation_comparisons",
)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create the tables that are missing and add the columns older databases lack."""
    for stmt in SCHEMA:
        con.execute(stmt)
