"""Question-answering metrics for the `outcome` component's QA modes: SQuAD exact match and token F1.

Retrieval-augmented QA (NQ, HotpotQA and the like, as in the MENTOR paper's search domain) is
scored the way its literature scores it: both sides are normalised as in the SQuAD evaluation
script (lower case; ASCII punctuation deleted; the words a/an/the removed; whitespace runs
collapsed), exact match compares the normalised strings and F1 compares their bags of words;
with several acceptable answers each metric takes its best value over them. Empty answers follow
SQuAD v2's script: two answers that both normalise to nothing agree (EM 1, F1 1), one empty side
scores 0. Before normalising, a LaTeX wrapper the model may put around a worded answer
(`\\boxed{}`, `\\text{}`, `\\textbf{}`...) is unwrapped on both sides, so `\\boxed{\\text{Paris}}`
reads as `Paris` rather than `textparis`; on plain text this step changes nothing.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence
from typing import Final, NamedTuple

__all__ = ["QAScores", "exact_match", "normalize_answer", "qa_scores", "token_f1", "unwrap_latex"]

# SQuAD deletes exactly `string.punctuation` (ASCII); unicode punctuation such as curly quotes
# stays, as in the script, so our numbers are comparable with published ones.
_DELETE_PUNCTUATION: Final = str.maketrans("", "", string.punctuation)
# `\b` is unicode-aware, as in the script: `the€` loses `the`, `thé` keeps it.
_ARTICLE: Final = re.compile(r"\b(?:a|an|the)\b")
_WRAPPER: Final = re.compile(
    r"\\(?:boxed|fbox|text|textbf|textit|textrm|mathrm|mathbf|mathit|mbox|operatorname)\s*\{([^{}]*)\}"
)
_MAX_UNWRAP: Final = 4  # nested wrappers such as \boxed{\text{\textbf{x}}}


def unwrap_latex(text: str) -> str:
    """`text` with LaTeX wrappers around words replaced by their content (plain text unchanged).

    Example:
        >>> unwrap_latex(r"\\boxed{\\text{Eiffel Tower}}")
        'Eiffel Tower'
    """
    if "\\" not in text:
        return text
    for _ in range(_MAX_UNWRAP):
        unwrapped = _WRAPPER.sub(r"\1", text)
        if unwrapped == text:
            break
        text = unwrapped
    return text


def normalize_answer(text: str) -> str:
    """The SQuAD normal form: lower case, no ASCII punctuation, no articles, single spaces.

    Example:
        >>> normalize_answer("The  Eiffel-Tower!")
        'eiffeltower'
    """
    lowered = text.lower().translate(_DELETE_PUNCTUATION)
    return " ".join(_ARTICLE.sub(" ", lowered).split())


def exact_match(prediction: str, gold: str) -> bool:
    """SQuAD exact match: equal after `normalize_answer`.

    Example:
        >>> exact_match("the Beatles.", "Beatles")
        True
    """
    return normalize_answer(prediction) == normalize_answer(gold)


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1 between the normalised words of the two answers (multiset overlap).

    Example:
        >>> round(token_f1("Barack Obama Jr", "Barack Obama"), 3)
        0.8
    """
    return _f1(normalize_answer(prediction).split(), normalize_answer(gold).split())


def _f1(predicted: list[str], expected: list[str]) -> float:
    if not predicted or not expected:
        return 1.0 if predicted == expected else 0.0
    common = sum((Counter(predicted) & Counter(expected)).values())
    # 2PR/(P+R) with P = c/|pred|, R = c/|gold| is 2c/(|pred|+|gold|): exactly 1.0 on equal bags.
    return 2.0 * common / (len(predicted) + len(expected))


class QAScores(NamedTuple):
    """The best exact match and the best F1 over the acceptable answers (each maximised on its own)."""

    exact_match: bool
    f1: float


def qa_scores(prediction: str, golds: Sequence[str]) -> QAScores:
    """EM and F1 of `prediction` against its best acceptable answer, LaTeX wrappers unwrapped.

    No acceptable answer gives (False, 0.0); callers decide before that whether an item has any.

    Example:
        >>> qa_scores(r"\\boxed{Paris, France}", ["Paris", "paris france"])
        QAScores(exact_match=True, f1=1.0)
    """
    predicted = normalize_answer(unwrap_latex(prediction))
    predicted_words = predicted.split()
    best_em = False
    best_f1 = 0.0
    for gold in golds:
        expected = normalize_answer(unwrap_latex(gold))
        best_em = best_em or predicted == expected
        best_f1 = max(best_f1, _f1(predicted_words, expected.split()))
        if best_em and best_f1 == 1.0:
            break
    return QAScores(best_em, best_f1)
