"""How comparisons are shown: the CLI's table, one cell, the markdown table and the interval plot."""

from shed_pipeline.core.evaluation.comparison import compare
from shed_pipeline.core.evaluation.comparison_display import cell, interval_plot, markdown, summary_table
from shed_pipeline_tests.core.evaluation.test_comparison import rec


def two_seed_comparison() -> list[dict]:
    return compare(
        [
            rec("random", "test_split", [-1.0, -2.0], 0),
            rec("random", "test_split", [-1.5, -2.5], 1),
            rec("curated", "test_split", [-0.5, -1.5]),
        ],
        100,
    )


def test_summary_table_cell_and_markdown():
    rows = two_seed_comparison()
    header, table = summary_table(rows)
    assert header == ["arm", "test_split mean", "test_split vs random [95% CI]"]
    assert table[0] == ["random (2 seeds)", "-1.750 ± 0.354", ""] and table[1][:2] == ["curated", "-1.000"]
    assert table[1][2] == cell(rows[0]) and cell(rows[0]).startswith("+0.750 [+0.750, +0.750] z=+2.1")
    assert cell(None) == "-"
    assert (
        "| curated | test_split | -1.0000 | -1.7500 ± 0.3536 | +0.7500 | [+0.7500, +0.7500] | +2.12 | 2 |"
        in markdown(rows)
    )


def test_interval_plot_is_a_png():
    assert interval_plot(two_seed_comparison(), "arms").startswith(b"\x89PNG\r\n\x1a\n")
