"""The Dagster instance `shed-pipeline run` runs in: its folder and dagster.yaml, opening it under a
lock, and its storage errors said in one line."""

import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from shed_pipeline.core.terminal_text import printable
from shed_pipeline.settings import Settings


@contextmanager
def dagster_instance(dagster_home: Path):
    """The instance in `dagster_home`, created under a lock on that folder: processes that create a
    new instance at the same moment race in its SQLite migrations ("more than one head present")."""
    import dagster as dg

    from shed_pipeline.core.files import folder_lock

    with folder_lock(dagster_home, ".shed-instance.lock"):
        instance = dg.DagsterInstance.from_config(str(dagster_home))
    with instance:
        yield instance


# The instance `shed-pipeline run` creates (and `dagster dev` then uses): no telemetry, and one run
# per project at a time in the run queue (runs started by the UI, a schedule or a sensor), so that a
# second run waits queued instead of in a run worker holding the project lock.
DAGSTER_YAML = """telemetry:
  enabled: false
concurrency:
  runs:
    tag_concurrency_limits:
      - key: shed/project
        value:
          applyLimitPerUniqueValue: true
        limit: 1
"""


def ensure_dagster_home(settings: Settings) -> Path:
    """The Dagster instance folder (DAGSTER_HOME, else <home>/dagster_home), made with DAGSTER_YAML
    when it is new."""
    path = settings.dagster_home_dir.resolve()
    path.mkdir(parents=True, exist_ok=True)
    cfg = path / "dagster.yaml"
    if not cfg.exists():
        cfg.write_text(DAGSTER_YAML)
    return path


class StorageErrorsInOneLine:
    """sys.stderr during a run, except that Dagster's own report of a failed event-log write (the
    SQLAlchemy error with its SQL and a dump of the event, many lines) becomes one line, said once:
    the run's final error line says what happened (a full disk, usually)."""

    PREFIX = "Exception while writing logger call to event log: "

    def __init__(self, stream):
        self.stream = stream
        self.said = False

    def write(self, text: str) -> int:
        if not text.startswith(self.PREFIX):
            return self.stream.write(text)
        if not self.said:
            self.said = True
            cause = (
                text[len(self.PREFIX) :].strip().splitlines()[0]
                if text[len(self.PREFIX) :].strip()
                else "unknown error"
            )
            self.stream.write(
                f"{time.strftime('%H:%M:%S')} run: Dagster could not write its event log ({printable(cause)})\n"
            )
        return len(text)

    def __getattr__(self, name):
        return getattr(self.stream, name)


@contextmanager
def quiet_storage_errors() -> Iterator[None]:
    previous = sys.stderr
    sys.stderr = StorageErrorsInOneLine(previous)
    try:
        yield
    finally:
        sys.stderr = previous
