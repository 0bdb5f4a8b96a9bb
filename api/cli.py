"""The ``civic-ledger`` console script: the ledger's commands plus the voting commands.

It lives at the top layer because it composes both domains (``ledger`` must not import
``voting``)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ledger import cli as ledger_cli
from voting import cli as voting_cli


def main(argv: Sequence[str] | None = None) -> int:
    parser, sub = ledger_cli.build_parser()
    voting_cli.add_commands(sub)
    sub.add_parser(
        "writer",
        help="the writer process alone (every hot write, group-committed; `run` starts it)",
    )
    args = parser.parse_args(argv)
    ledger_cli.configure_logging(args.command)
    settings = ledger_cli.load_settings()
    if settings is None:
        return 2
    if args.command == "writer":
        from api import writer

        return writer.serve(settings)
    if args.command in voting_cli.COMMANDS:
        return voting_cli.run(args, settings)
    return ledger_cli.dispatch(args, settings)


if __name__ == "__main__":
    sys.exit(main())
