"""Evaluating a curated subset: against baseline selections of the same size, random subsets of the
same size and the full pool, model-free and with the target LM fine-tuned on each.

- `model_free`: coverage, diversity and the held-out kNN utility of a subset
- `benchmarks`: bigbench multiple-choice tasks, their index and their items
- `lm_arms`: the LM arms (base, curated, baselines, random, full pool), fine-tuned and scored
- `arm_cache`: each arm's results kept under a hash of what they depend on
- `comparison`: each arm against the random arms (or another arm), paired, with bootstrap intervals
- `comparison_display`: how those comparisons are shown (a cell, the CLI's table, markdown, a plot)
- `report`: the evaluation report of a run that puts them together, and its lineage tables

The names below are the package's API; `comparison` and `comparison_display` are exported as modules
too, for the lineage rows (`comparison.lineage_rows`), the markdown table and the plot
(`comparison_display.markdown(...)`).
"""

from shed_pipeline.core.evaluation import comparison, comparison_display
from shed_pipeline.core.evaluation.benchmarks import (
    DEFAULT_TASKS,
    ChoiceItem,
    check_benchmarks,
    choice_index,
    load_choice_items,
)
from shed_pipeline.core.evaluation.comparison import BENCHMARKS_MEAN, compare, head_to_head
from shed_pipeline.core.evaluation.comparison_display import cell, summary_table
from shed_pipeline.core.evaluation.lm_arms import (
    Arm,
    TrainingPlan,
    evaluate_arms,
    plan_arms,
    random_rows,
    steps_for_epochs,
    summarize,
)
from shed_pipeline.core.evaluation.model_free import (
    arm_metrics,
    mean_pairwise_cosine_distance,
    selected_pool_indices,
    subset_report,
)
from shed_pipeline.core.evaluation.report import (
    arms_frame,
    baseline_selections,
    evaluation_report,
    lm_arms_report,
    metrics_frame,
)

__all__ = [
    "BENCHMARKS_MEAN",
    "DEFAULT_TASKS",
    "Arm",
    "ChoiceItem",
    "TrainingPlan",
    "arm_metrics",
    "arms_frame",
    "baseline_selections",
    "cell",
    "check_benchmarks",
    "choice_index",
    "compare",
    "comparison",
    "comparison_display",
    "evaluate_arms",
    "evaluation_report",
    "head_to_head",
    "lm_arms_report",
    "load_choice_items",
    "mean_pairwise_cosine_distance",
    "metrics_frame",
    "plan_arms",
    "random_rows",
    "selected_pool_indices",
    "steps_for_epochs",
    "subset_report",
    "summarize",
    "summary_table",
]
