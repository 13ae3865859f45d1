"""Row ids: content hashes."""

from shed_pipeline.core.sources import row_id_for


def test_row_ids_are_content_hashes_independent_of_position_and_task_text():
    a = row_id_for("Summarise.", "text one", "sum")
    assert a == row_id_for("Summarise.", "text one", "sum")
    assert a != row_id_for("Summarise.", "text two", "sum")  # same instruction, different row
    # Field boundaries matter: no collision by concatenation.
    assert row_id_for("ab", "c", "d") != row_id_for("a", "bc", "d")
