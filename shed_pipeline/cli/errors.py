"""What the CLI prints for an error: one line, the user's mistake in its own words, a full disk as such."""

import errno
import re
import shutil
from pathlib import Path

from shed_pipeline.settings import Settings


class CliError(Exception):
    pass


class Interrupted(Exception):
    """Ctrl-C or SIGTERM during a run; the message says what was finished and kept."""


# Exceptions whose message is the whole story for a user: printed without their class name.
USER_ERRORS = {
    "SourceError",
    "ValueError",
    "FileNotFoundError",
    "PermissionError",
    "AssetValueMismatch",
    "LineageError",
    "StoreLockedError",
    "ProjectBusy",
    "ProjectLockError",
    "CliError",
    "ObjectStoreError",
    "ObjectNotFound",
    "ObjectChanged",
    "RuntimeError",
}


INTERRUPTS = {"DagsterExecutionInterruptedError", "KeyboardInterrupt"}


def no_space_message(text: str, step: str | None, storage: Path | str = "DAGSTER_HOME") -> str | None:
    """ "no space left on device while writing PATH (step X)" for a message that says the disk is full:
    an OSError naming its file, DuckDB naming its file, or SQLite under Dagster's own storage (whose
    "disk I/O error" means a full disk only when the disk is full: else it says what SQLite said)."""
    at = f" (step {step})" if step else ""
    found = re.search(r"No space left on device: '([^']+)'", text) or re.search(
        r'file "([^"]+)": No space left on device', text
    )
    if found:
        return f"no space left on device while writing {found.group(1)}{at}"
    if "No space left on device" in text:
        return f"no space left on device{at}"
    if "database or disk is full" in text or "disk I/O error" in text:
        try:
            full = shutil.disk_usage(storage).free < (1 << 20)
        except OSError:
            full = "database or disk is full" in text
        if full or "database or disk is full" in text:
            return f"no space left on device while writing Dagster's run storage in {storage}{at}"
        return (
            f"cannot write Dagster's run storage in {storage} (SQLite: disk I/O error; a network filesystem's "
            f"locking, or permissions){at}"
        )
    return None


def error_line(err) -> str:
    """One line for a step's error (a SerializableErrorInfo): the innermost user error's message,
    without its Python class path; the class name stays only for what is not a user error."""
    while err.cause is not None and err.cls_name in (
        "DagsterExecutionStepExecutionError",
        "DagsterUserCodeExecutionError",
    ):
        err = err.cause
    # Dagster's message is the exception as Python prints it: "package.module.ClassName: message".
    prefix = re.match(rf"(?:[A-Za-z_]\w*\.)*{re.escape(err.cls_name)}: ", err.message)
    text = (err.message[prefix.end() :] if prefix else err.message).strip()
    line = next((part for part in text.splitlines() if part.strip()), "") or err.cls_name
    return line if err.cls_name in USER_ERRORS else f"{err.cls_name}: {line}"


def dagster_storage() -> Path | str:
    """The Dagster instance folder this command uses, for a message about its disk."""
    try:
        return Settings.from_env().dagster_home_dir
    except ValueError:  # the environment is what failed
        return "DAGSTER_HOME"


def error_message(exc: BaseException) -> str:
    """One line for an exception that reached the command: its message, or for a full disk what was
    being written; the class name only when the error is not one a user caused."""
    from shed_pipeline.loggers import StepTracker

    chain, seen = [], exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    for e in chain:
        if isinstance(e, OSError) and e.errno == errno.ENOSPC:
            where = f" while writing {e.filename}" if e.filename else ""
            return f"no space left on device{where}" + (
                f" (step {StepTracker.last_step})" if StepTracker.last_step else ""
            )
        full = no_space_message(str(e), StepTracker.last_step, dagster_storage())
        if full:
            return full
    text = str(exc).strip().splitlines()[-1] if str(exc).strip() else ""
    return (
        text
        if type(exc).__name__ in USER_ERRORS or isinstance(exc, (CliError, ValueError, FileNotFoundError))
        else f"{type(exc).__name__}: {text}"
    )
