"""Light normalisation of answer strings and the numeric fast path: plain numbers (integers,
decimals, fractions, scientific notation, percentages) compared as exact ratios, without sympy."""

from __future__ import annotations

import re
from typing import Final, NamedTuple

# --------------------------------------------------------------------------------------------
# Normalisation
# --------------------------------------------------------------------------------------------

_DELIMITERS: Final = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_THIN_THOUSANDS = re.compile(r"(?<=\d)\\,(?=\d{3}(?!\d))")
_SPACING = re.compile(r"\\[,:;! ]|\\q?quad(?![a-zA-Z])|~")
_NOISE = re.compile(r"\\(?:left|right|bigl|bigr|Bigl|Bigr|big|Big|displaystyle|textstyle)(?![a-zA-Z])")
_SPACING_HINT = re.compile(r"\\[,:;! ]|quad|~")
_NOISE_HINT = re.compile(r"left|right|big|Big|style")
_WHITESPACE = re.compile(r"\s+")
# Keep a space only where it separates two word characters (`\pi r`, `2 3`).
_LOOSE_SPACE = re.compile(r" (?!\w)|(?<!\w) ")
_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|textit|textrm|mathrm|mathbf|mathit|mbox|operatorname)\s*\{([^{}]*)\}")


def _canonical(s: str) -> str:
    """Light normalisation that never changes a value: delimiters, spacing commands, `\\left`,
    `\\dfrac`, whitespace runs, unicode minus and a final full stop. Spaces are kept (collapsed)."""
    s = s.strip()
    for left, right in _DELIMITERS:
        if len(s) > len(left) + len(right) and s.startswith(left) and s.endswith(right):
            s = s[len(left) : -len(right)].strip()
            break
    # Substring tests first: most answers need none of these substitutions.
    if "\\" in s:
        if "\\," in s:
            s = _THIN_THOUSANDS.sub(",", s)
        if _SPACING_HINT.search(s):
            s = _SPACING.sub(" ", s)
        if _NOISE_HINT.search(s):
            s = _NOISE.sub("", s)
        if "frac" in s:
            s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    elif "~" in s:
        s = s.replace("~", " ")
    if "{," in s:
        s = s.replace("{,}", ",")
    if "\u2212" in s:
        s = s.replace("\u2212", "-")
    if " " in s or "\t" in s or "\n" in s or "\r" in s:
        s = _WHITESPACE.sub(" ", s).strip()
    if s.endswith(".") and not s.endswith(".."):
        s = s[:-1].rstrip()
    return s


_ARTICLES: Final = frozenset({"a", "an", "the"})
_SENTENCE_PUNCTUATION: Final = frozenset(".,;:!?'\"`")
_TEXT_TOKEN = re.compile(r"\d+(?:[.,]\d+)*|[^\W\d_]+|[^\w\s]")


def _text_tokens(s: str) -> tuple[str, ...]:
    """Word-level form for worded answers: `\\text{}` unwrapped, lower case, sentence punctuation
    and articles dropped. Math symbols stay tokens, so `x-1` and `x1` remain different."""
    for _ in range(3):  # nested wrappers such as \text{\textbf{x}}
        unwrapped = _TEXT_WRAPPER.sub(r"\1", s)
        if unwrapped == s:
            break
        s = unwrapped
    tokens = [t for t in _TEXT_TOKEN.findall(s.lower()) if t not in _SENTENCE_PUNCTUATION]
    content = [t for t in tokens if t not in _ARTICLES]
    # "A" (a choice) must not vanish entirely.
    return tuple(content if content else tokens)


# --------------------------------------------------------------------------------------------
# Numeric fast path
# --------------------------------------------------------------------------------------------

_N = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+"
_NUMBER = re.compile(
    rf"(?P<sign>[-+]?) ?(?:"
    rf"(?P<dec>{_N})(?:[eE](?P<e1>[-+]?\d{{1,4}})"
    rf"| ?\\(?:times|cdot) ?10 ?\^ ?(?:\{{ ?(?P<e2>[-+]?\d{{1,4}}) ?\}}|(?P<e3>\d)))?"
    rf"|\\frac(?:\{{ ?(?P<fn>[-+]?(?:{_N})) ?\}}\{{ ?(?P<fd>[-+]?(?:{_N})) ?\}}| ?(?P<fn1>\d) ?(?P<fd1>\d))"
    rf"|(?P<sn>{_N}) ?/ ?(?P<sd>[-+]?(?:{_N}))"
    rf") ?(?P<pct>\\?%)?"
)
_MAX_NUMBER_CHARS: Final = 320  # longer "numbers" are left to exact/text comparison
_MAX_EXPONENT: Final = 400
# Plain words (after `\text{}` unwrapping) that contain a letter other than e or i cannot be a
# number in any reading (math-verify would read `five` as the product E*f*i*v).
_PLAIN_WORDS = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
_NON_CONSTANT_LETTER = re.compile(r"[a-df-hj-zA-DF-HJ-Z]")


# The common case (`42`, `-3.0`) without the general pattern's cost.
_SIMPLE_NUMBER = re.compile(r"([-+]?)(\d+)(?:\.(\d+))?")


class _Number(NamedTuple):
    """An exact value num/den (den > 0, not reduced): integer arithmetic is several times faster
    than `Fraction` for the equality tests that decide almost every item."""

    num: int
    den: int
    is_decimal: bool  # written with a decimal point or exponent: compared after rounding
    is_percent: bool


def _decimal(text: str) -> tuple[int, int]:
    digits = text.replace(",", "")
    if "." not in digits:
        return int(digits), 1
    whole, frac = digits.split(".")
    scale = 10 ** len(frac)
    return int(whole or "0") * scale + int(frac or "0"), scale


def _signed(text: str) -> tuple[int, int]:
    if text[0] in "+-":
        num, den = _decimal(text[1:])
        return (-num if text[0] == "-" else num), den
    return _decimal(text)


def _parse_number(s: str) -> _Number | None:
    if len(s) > _MAX_NUMBER_CHARS or not s:
        return None
    simple = _SIMPLE_NUMBER.fullmatch(s)
    if simple is not None:
        sign, whole, frac = simple.groups()
        if frac is None:
            num, den = int(whole), 1
        else:
            den = 10 ** len(frac)
            num = int(whole) * den + int(frac)
        return _Number(-num if sign == "-" else num, den, frac is not None, False)
    m = _NUMBER.fullmatch(s)
    if m is None:
        return None
    g = m.groupdict()
    try:
        if g["dec"] is not None:
            num, den = _decimal(g["dec"])
            exponent = g["e1"] or g["e2"] or g["e3"]
            is_decimal = "." in g["dec"] or exponent is not None
            if exponent is not None:
                power = int(exponent)
                if abs(power) > _MAX_EXPONENT:
                    return None
                num, den = (num * 10**power, den) if power >= 0 else (num, den * 10**-power)
        else:
            if g["fn"] is not None:
                top, bottom = g["fn"], g["fd"]
            elif g["fn1"] is not None:
                top, bottom = g["fn1"], g["fd1"]
            else:
                top, bottom = g["sn"], g["sd"]
            (a, b), (c, d) = _signed(top), _signed(bottom)
            if c == 0:
                return None
            num, den = (a * d, b * c) if c > 0 else (-a * d, -b * c)
            is_decimal = "." in top or "." in bottom
    except ValueError:  # digits over Python's int-string limit
        return None
    return _Number(-num if g["sign"] == "-" else num, den, is_decimal, g["pct"] is not None)


def _round_half_even(num: int, den: int, places: int) -> int:
    """round(num/den, places) * 10**places, ties to even (as `round` does)."""
    scale: int = 10**places
    q, r = divmod(num * scale, den)
    if 2 * r > den or (2 * r == den and q % 2 == 1):
        q += 1
    return q
