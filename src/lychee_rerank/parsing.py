"""Read a 0-10 relevance number out of free text (``scoring="generate"``).

Chat models answer "8.2", "Score: 8.2/10", "得分：7.9", "final score=9.1" or "9分"; we take
the number that follows the last score keyword, else the first number. Unparsable or
out-of-range answers score 0 and the caller keeps the raw text.
"""

from __future__ import annotations

import re
import unicodedata

_NUMBER = r"[-+]?\d+(?:\.\d+)?"
# One whitespace run per gap: three adjacent optional ``\s*`` made a run of spaces after a
# keyword take cubic time ("score" + 2,000 spaces: 111 s); this form accepts the same strings.
_KEYWORD = re.compile(r"(?:score|rating|relevance|得分|评分|分数|打分)\s*(?:(?:is|为|是)\s*)?(?:[:=：]\s*)?(" + _NUMBER + ")", re.I)
_ANY = re.compile(_NUMBER)


def parse_score(text: str | None, low: float = 0.0, high: float = 10.0) -> float | None:
    """Return the score in ``[low, high]`` or ``None`` when there is none to be read."""
    if not text:
        return None
    normalised = unicodedata.normalize("NFKC", text)  # full-width digits and colons
    keyed = _KEYWORD.findall(normalised)
    if keyed:
        candidate = keyed[-1]
    else:
        match = _ANY.search(normalised)
        if match is None:
            return None
        candidate = match.group(0)
    value = float(candidate)
    if not (low <= value <= high):
        return None
    return value
