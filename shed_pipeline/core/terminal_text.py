"""Text that is safe to print on a terminal.

File names, S3 keys and record excerpts come from users' data and may hold escape sequences (ANSI
colour codes, cursor movement, a terminal title), newlines or lone surrogates. Printed raw they
recolour or rewrite the user's terminal, split a one-line error in two, or crash the print. Every
such piece of text goes through `printable` before it reaches a terminal.
"""

from __future__ import annotations

import re

# C0 controls (tab included, so a line stays one cell per character), DEL, C1 controls, lone
# surrogates, and the Unicode line and paragraph separators.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: object) -> str:
    """`text` as one line, with every control character (newlines and ESC included) and lone
    surrogate written as a visible escape such as `\\x1b`: what a terminal shows is what the text
    holds, and nothing in it can move the cursor or recolour the screen."""
    return _UNSAFE.sub(_escape, str(text))
