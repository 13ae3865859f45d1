"""shed-pipeline: Shapley-based curation of instruction-tuning data as a Dagster asset pipeline."""

__version__ = "0.1.0"
