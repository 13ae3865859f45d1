"""Valuing the cluster proxies: a utility (core/utilities) and an estimator (core/estimators), both
chosen by name, run against the evaluation cache on a frozen snapshot of the validation rows.

- `rows`: the players' (the proxies') and the validation rows, with their vectors
- `validation_snapshot`: the validation rows frozen between full cluster fits
- `preparation`: the choices checked and the utility built (PreparedValuation)
- `shares`: one worker's share of a fanned-out estimation's coalitions, into the evaluation cache
- `estimation`: the values, their ranks and the removal-index rule (Valuation)
- `removal`: TS-DShapley's removal-index rule
"""

from shed_pipeline.core.valuation.estimation import SCORES_SCHEMA, Valuation, estimate, value_proxies
from shed_pipeline.core.valuation.preparation import (
    DEFAULT_UTILITY,
    PreparedValuation,
    can_fan_out,
    check_choice,
    default_estimator,
    prepare_valuation,
)
from shed_pipeline.core.valuation.removal import RemovalCurve, removal_curve, removal_order
from shed_pipeline.core.valuation.rows import proxy_rows, validation_rows
from shed_pipeline.core.valuation.shares import evaluate_share
from shed_pipeline.core.valuation.validation_snapshot import ValidationPin, pinned_validation

__all__ = [
    "DEFAULT_UTILITY",
    "default_estimator",
    "SCORES_SCHEMA",
    "PreparedValuation",
    "RemovalCurve",
    "ValidationPin",
    "Valuation",
    "can_fan_out",
    "check_choice",
    "estimate",
    "evaluate_share",
    "pinned_validation",
    "prepare_valuation",
    "proxy_rows",
    "removal_curve",
    "removal_order",
    "validation_rows",
    "value_proxies",
]
