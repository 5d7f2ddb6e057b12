"""Imported once by the scoring pool's forkserver so that every forked worker starts warm.

math-verify (and the sympy/ANTLR machinery behind it) takes about a second to import and warm;
doing it here, in the forkserver, means no worker pays it inside its first symbolic answer,
and a replacement worker after a timeout is ready in milliseconds.
"""

from __future__ import annotations

from ..scoring.answers import AnswerJudge

AnswerJudge().warm_up()
