"""printable: a terminal shows what the text holds, on one line, and nothing in it acts on the terminal."""

from shed_pipeline.core.terminal_text import printable


def test_controls_separators_and_lone_surrogates_become_visible_escapes():
    assert printable("a\x1b[31mred\x1b[0m\nb\tc") == "a\\x1b[31mred\\x1b[0m\\x0ab\\x09c"
    assert printable("del\x7f c1\x9b ls\u2028ps\u2029") == "del\\x7f c1\\x9b ls\\u2028ps\\u2029"
    assert printable("half \ud800 pair") == "half \\ud800 pair"
    printable("\ud800").encode("utf-8")  # encodable, so printing it cannot fail


def test_ordinary_text_is_left_as_it_is():
    text = 'naïve café — 数据 🙂 "quoted" back\\slash'
    assert printable(text) == text
    assert printable(3.5) == "3.5"
