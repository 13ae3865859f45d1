"""A console logger for the CLI: one line per progress message. Failures are left to the CLI's own
one-line error; stack traces stay in the run's event log, visible in the UI."""

import logging
import sys

import dagster as dg

from shed_pipeline.core.terminal_text import printable


class StepTracker(logging.Filter):
    """Remembers the asset of the latest message's step: the step a failure outside any step's own
    error handling (a full disk under Dagster's event log) is reported against. Drops Dagster's note
    on an op that opened no shard (no worker fan-out: nothing a user needs to read)."""

    last_step: str | None = None

    def filter(self, record: logging.LogRecord) -> bool:
        meta = getattr(record, "dagster_meta", None) or {}
        step = meta.get("step_key")
        if step:
            StepTracker.last_step = step.split(".", 1)[0]  # a graph-backed asset's steps are <asset>.<op>[<share>]
        if str(meta.get("orig_message") or "").startswith("Emitting implicit Nothing for output"):
            return False
        return record.levelno < logging.ERROR


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None) or {}
        step = meta.get("step_key") or "run"
        text = str(meta.get("orig_message") or record.getMessage()).strip()
        first = text.splitlines()[0] if text else ""
        # Messages quote file names and S3 keys from the user's data: never let them drive the terminal.
        return f"{self.formatTime(record, '%H:%M:%S')} {step}: {printable(first)}"


@dg.logger(
    config_schema={"log_level": dg.Field(str, default_value="INFO", is_required=False)},
    description="One line per progress message on stderr; failures are reported by the CLI.",
)
def concise_console_logger(init_context) -> logging.Logger:
    logger = logging.getLogger("shed_pipeline.cli_run")
    logger.setLevel(init_context.logger_config["log_level"])
    logger.propagate = False
    logger.handlers.clear()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    handler.addFilter(StepTracker())
    logger.addHandler(handler)
    return logger
