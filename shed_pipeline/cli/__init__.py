"""The `shed-pipeline` command: run the curation job, and query lineage.

`run` materializes the seven assets through the same Definitions the UI loads, recorded in
DAGSTER_HOME so `dagster dev` shows the run. Runs on one project folder take turns (a second one
waits, naming the run it waits for). Errors print one line and exit non-zero; an interrupt (Ctrl-C,
SIGTERM) says what was finished and kept, and exits 130.
"""

import sys
from typing import Sequence

from shed_pipeline.cli.catalog import all_registries, cmd_benchmarks, cmd_strategies, strategies_markdown
from shed_pipeline.cli.errors import CliError, Interrupted, error_message
from shed_pipeline.cli.events import failure_message
from shed_pipeline.cli.instance import DAGSTER_YAML, ensure_dagster_home
from shed_pipeline.cli.lineage import cmd_lineage
from shed_pipeline.cli.parser import build_parser, run_flags
from shed_pipeline.cli.run import cmd_run
from shed_pipeline.cli.run_config import run_config_from_args
from shed_pipeline.core.terminal_text import printable

__all__ = [
    "DAGSTER_YAML",
    "CliError",
    "Interrupted",
    "all_registries",
    "build_parser",
    "ensure_dagster_home",
    "failure_message",
    "main",
    "run_config_from_args",
    "run_flags",
    "strategies_markdown",
]

COMMANDS = {"run": cmd_run, "lineage": cmd_lineage, "benchmarks": cmd_benchmarks, "strategies": cmd_strategies}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (KeyboardInterrupt, Interrupted) as exc:
        print(f"shed-pipeline: {printable(exc) if isinstance(exc, Interrupted) else 'interrupted'}", file=sys.stderr)
        return 130
    except Exception as exc:  # one line, no traceback: the message names the file/flag and the reason
        print(f"shed-pipeline: error: {printable(error_message(exc))}", file=sys.stderr)
        return 1
