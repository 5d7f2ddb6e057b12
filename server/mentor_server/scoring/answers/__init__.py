"""Answer judging for the `outcome` component: is a predicted final answer one of the acceptable ones?

`extract_boxed` pulls the final answer (the last `\\boxed{}` / `\\fbox{}`) out of a completion and
`AnswerJudge.judge` compares it with a list of acceptable ground truths, cheapest check first:
(1) exact equality after a light LaTeX/whitespace normalisation; (2) a numeric fast path, which
decides every pair of plain numbers (integers, decimals, `a/b`, `\\frac{a}{b}`, `\\dfrac`,
scientific notation, thousands separators, percentages) with exact integer ratios and never
imports sympy; (3) a normalised text comparison for worded answers; (4) a symbolic check with HF
math-verify only when the fast paths cannot decide. Gold answers are prepared once and kept in an
LRU cache (the `num_generations` rollouts of a prompt share one gold), and verdicts are cached per
(prediction, gold) pair.

With `mode="qa_em"` or `"qa_f1"` the judge scores worded answers instead, with SQuAD's exact
match or token F1 (`mentor_server.scoring.qa`); the verdict then carries the metric as `score`.

Time limit. math-verify's own timeout uses `signal.alarm`: whole seconds only, it replaces the
process's SIGALRM handler, and off the main thread it raises `ValueError` (the reward service may
score in worker threads). We call it with its timeouts disabled and enforce the per-item limit
ourselves, in any thread: inputs whose evaluation could sit inside one uninterruptible C call
(power towers, huge exponents or factorials, very long digit runs, deep nesting, long strings)
never reach sympy, and the rest runs under a deadline that a watchdog thread enforces by raising
an exception in the judging thread (see `_time_limit`). A timed-out judgement is not a verdict:
it carries `error="judge_timeout"` (an exception inside judging, `"judge_error"`), and the engine
reports the item as an error rather than as a wrong answer. The caller's time limit covers one
`judge` call, all its ground truths together.

Parity with the MENTOR authors' judge (math-verify metric, math-verify parse/verify and mathruler,
any one saying equal): every one of the 150 public parity cases gets the authors' verdict (see the
tests). Where this judge deliberately differs, it is the more accurate one:
- their judge rejects `x+1` vs `1+x`. A bare string given to math-verify's `parse` is read as a
  plain expression (`1+x` gives `1`, `x+1` nothing); we hand it the answer as LaTeX
  (`\\boxed{...}`), so algebraically equal expressions are accepted;
- likewise `1e5` (bare-string parse: `1`) is 100000 here; `\\frac12`, `1{,}000` and `1\\,000`
  are numbers;
- escaped braces `\\{ \\}` do not count when matching the braces of `\\boxed{...}`, so
  `\\boxed{\\left\\{ x>1 \\right.}` is extracted whole, where a raw brace count finds no answer;
- a percentage `p%` equals `p` or `p/100` (math-verify accepts `9% = 9` only for integers,
  mathruler drops the sign); a decimal agrees with a value when both round to the same
  `float_rounding` (6) decimals, as in math-verify.
"""

from __future__ import annotations

from .boxed import extract_boxed, strip_boxed
from .judge import JUDGE_MODES, AnswerJudge, AnswerVerdict

__all__ = ["JUDGE_MODES", "AnswerJudge", "AnswerVerdict", "extract_boxed", "strip_boxed"]
