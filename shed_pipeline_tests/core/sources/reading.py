"""What the tests of reading and checking share: a source's units, validated with the default mapping."""

from shed_pipeline.core.sources import FieldMapping
from shed_pipeline.core.sources.checks import validate_units
from shed_pipeline.core.sources.load import read_units

MAP = FieldMapping()


def read(path, max_chars=10_000):
    return validate_units(read_units(path), MAP, max_chars)
