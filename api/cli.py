"""``civic-ledger``: run the whole service, or one part of it.

    civic-ledger run        set up the data directory, chain, contract and database, then
                            supervise the API, the writer process, the anchoring worker and
                            the verifier service until Ctrl-C/SIGTERM
    civic-ledger api        the HTTP API alone
    civic-ledger writer     the writer process alone (every hot write, group-committed)
    civic-ledger worker     the anchoring worker alone
    civic-ledger migrate    bring the database schema up to date
    civic-ledger deploy     deploy AnchorRegistry and record its address
    civic-ledger users      add, list and disable accounts (tokens are shown once)
    civic-ledger redact     erase a record's content, keeping its proof (PROTOCOL §7)
    civic-ledger reanchor   after a chain reset: anchor every sealed batch again, same numbers
                            and roots, and record that in each log (ledger.reanchored)
    civic-ledger deputy | vote | simulation
                            deputies' ballot keys, signed ballots, budget simulations

It lives at the top layer because it composes both domains (``ledger`` must not import
``voting``) and the processes of the service (``api.supervisor``).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from api import supervisor
from ledger import cli as ledger_cli
from voting import cli as voting_cli


def main(argv: Sequence[str] | None = None) -> int:
    parser, sub = ledger_cli.build_parser(description=__doc__)
    for name, (_, help_text) in supervisor.COMMANDS.items():
        sub.add_parser(name, help=help_text)
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
    if args.command in supervisor.COMMANDS:
        return supervisor.COMMANDS[args.command][0](settings)
    if args.command in voting_cli.COMMANDS:
        return voting_cli.run(args, settings)
    return ledger_cli.dispatch(args, settings)


if __name__ == "__main__":
    sys.exit(main())
