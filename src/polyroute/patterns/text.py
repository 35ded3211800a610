"""Reading models' short answers: a label out of a classification, PASS/FAIL out
of a check, and filling prompt templates.

Models do not answer with the bare word they were asked for ("Label: song.",
"**FAIL** - the kick is missing"), so parsing looks for the word, not the
whole answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache

_SEP = r"[\s_\-]+"
# A label counts when it stands alone: not glued to letters or digits on either side.
_EDGE_L = r"(?<![^\W_])"
_EDGE_R = r"(?![^\W_])"
_VERDICT = re.compile(rf"{_EDGE_L}(PASS(?:ED|ES)?|FAIL(?:ED|S|URE)?){_EDGE_R}")
_VERDICT_ANY_CASE = re.compile(_VERDICT.pattern, re.IGNORECASE)
_LEAD = re.compile(r"^[\s:.\-–—*]+")


@lru_cache(maxsize=256)
def _label_re(label: str) -> re.Pattern[str]:
    words = [w for w in re.split(_SEP, label.strip()) if w]
    if not words:
        raise ValueError("a label must not be empty")
    # "song_composition", "song-composition" and "Song composition" are the same label.
    return re.compile(_EDGE_L + _SEP.join(map(re.escape, words)) + _EDGE_R, re.IGNORECASE)


def parse_label(answer: str | None, labels: Iterable[str]) -> str | None:
    """The label mentioned first in ``answer`` (case and separators ignored), or None.

    When two labels start at the same place the longer one wins, so
    "song fill" is not read as "song"."""
    best: tuple[int, int, str] | None = None
    for label in labels:
        m = _label_re(label).search(answer or "")
        if m is None:
            continue
        key = (m.start(), -len(m.group()), label)
        if best is None or key[:2] < best[:2]:
            best = key
    return best[2] if best else None


def parse_verdict(answer: str | None) -> tuple[bool | None, str]:
    """``(passed, feedback)`` from a PASS/FAIL answer; ``passed`` is None when
    the answer holds neither word.  Upper-case verdicts are looked for first, so
    "this would not pass review. FAIL" reads as a failure."""
    text = answer or ""
    m = _VERDICT.search(text) or _VERDICT_ANY_CASE.search(text)
    if m is None:
        return None, text.strip()
    passed = m.group(1).upper().startswith("PASS")
    rest = _LEAD.sub("", text[m.end() :]).strip()
    return passed, rest or text.strip()


_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill(template: str, values: Mapping[str, str]) -> str:
    """Replace ``{name}`` for the given names only, in one pass: other braces
    (JSON examples in a prompt) stay as they are, and a value that itself
    contains ``{name}`` is not expanded again."""
    return _FIELD.sub(lambda m: values.get(m.group(1), m.group(0)), template)
