"""A console logger for the CLI: one line per progress message. Failures are left to the CLI's own
one-line error; stack traces stay in the run's event log, visible in the UI."""

import logging
import sys

import dagster as dg


class _OneLine(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None) or {}
        step = meta.get("step_key") or "run"
        text = str(meta.get("orig_message") or record.getMessage()).strip()
        first = text.splitlines()[0] if text else ""
        return f"{self.formatTime(record, '%H:%M:%S')} {step}: {first}"


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
    handler.addFilter(lambda record: record.levelno < logging.ERROR)
    logger.addHandler(handler)
    return logger
