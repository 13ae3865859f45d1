"""`python -m shed_pipeline.cli`: the same as the `shed-pipeline` command."""

import sys

from shed_pipeline.cli import main

sys.exit(main())
