"""`mentor-train`: the training stack's command line, one subcommand per step of the pipeline.

Subcommands live in a registry (`registry.register_command`), so later steps (`teach`, `demo`) slot in by
registering themselves in `mentor_trainer.commands` without touching the parser. Each command
declares its arguments, a one-line help, and the examples its `--help` prints. Heavy libraries
(torch, transformers, TRL) are imported by the commands that use them, never at parse time, so
`mentor-train --help` is instant and the offline switches are set before any of them loads.

Run it under accelerate unchanged: `accelerate launch -m mentor_trainer.cli grpo ...`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .registry import COMMANDS, Command, register_command

__all__ = ["COMMANDS", "Command", "build_parser", "main", "register_command"]


def _epilog(examples: Sequence[str]) -> str:
    return "examples:\n" + "\n".join(f"  {e}" for e in examples)


def build_parser() -> argparse.ArgumentParser:
    from . import commands  # noqa: F401  (registers the built-in commands)

    parser = argparse.ArgumentParser(
        prog="mentor-train",
        description="Train small tool-using models with MENTOR rewards: benchmark data, tiny models, SFT, "
        "GRPO, evaluation.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_epilog([e for c in COMMANDS.values() for e in c.examples[:1]]),
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for cmd in COMMANDS.values():
        p = sub.add_parser(
            cmd.name,
            help=cmd.help,
            description=cmd.description,
            epilog=_epilog(cmd.examples),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.configure(p)
        p.set_defaults(_run=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from mentor_client.exceptions import MentorClientError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args._run(args))
    except (FileNotFoundError, ValueError, MentorClientError) as exc:
        # Bad paths, bad settings, a rejected spec or an unreachable service are the user's to
        # fix: one line naming the problem, no traceback.
        print(f"mentor-train {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # Run as `python -m mentor_trainer.cli` (accelerate launch -m ...): the commands register into
    # `mentor_trainer.registry`, which both this `__main__` and an imported `cli` share.
    sys.exit(main())
