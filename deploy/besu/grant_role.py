#!/usr/bin/env python3
"""Grant an AnchorRegistry role, signed with an admin's encrypted keystore.

Usage (from the repository root):

    set -a; . deploy/besu/network/accounts/anchor.env; set +a
    CIVIC_CONTRACT=0x… .venv/bin/python deploy/besu/grant_role.py WITNESS_ROLE 0xWitness…

The key, its password file, the RPC endpoint and the fee policy come from the same CIVIC_*
variables the service reads (CIVIC_KEY_FILE, CIVIC_KEY_PASSWORD_FILE, CIVIC_CHAIN_RPC,
CIVIC_CONTRACT, CIVIC_TX_TYPE, CIVIC_GAS_PRICE_WEI), or from the options. The signing account
must hold DEFAULT_ADMIN_ROLE: after ``civic-ledger deploy`` that is the anchoring account.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from contracts.keys import KeyFileError, load_or_create_key  # noqa: E402
from contracts.registry import ROLES  # noqa: E402
from ledger.chain import ChainClient, ChainError  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    env = os.environ.get
    parser = argparse.ArgumentParser(description="Grant an AnchorRegistry role.")
    parser.add_argument("role", choices=ROLES)
    parser.add_argument("account", help="the address that receives the role")
    parser.add_argument("--rpc", default=env("CIVIC_CHAIN_RPC"), help="$CIVIC_CHAIN_RPC")
    parser.add_argument("--contract", default=env("CIVIC_CONTRACT"), help="$CIVIC_CONTRACT")
    parser.add_argument("--key-file", default=env("CIVIC_KEY_FILE"), help="$CIVIC_KEY_FILE")
    parser.add_argument(
        "--password-file", default=env("CIVIC_KEY_PASSWORD_FILE"), help="$CIVIC_KEY_PASSWORD_FILE"
    )
    parser.add_argument("--tx-type", default=env("CIVIC_TX_TYPE", "auto"))
    parser.add_argument("--gas-price-wei", type=int, default=env("CIVIC_GAS_PRICE_WEI"))
    args = parser.parse_args(argv)
    missing = [n for n in ("rpc", "contract", "key_file", "password_file") if not getattr(args, n)]
    if missing:
        parser.error("missing: " + ", ".join("--" + n.replace("_", "-") for n in missing))
    key_file = Path(args.key_file)
    if not key_file.is_file():  # load_or_create_key would create one: never here
        parser.error(f"{key_file} does not exist")
    try:
        password = Path(args.password_file).read_text(encoding="utf-8").rstrip("\n")
        key = load_or_create_key(key_file, password)
        client = ChainClient(
            args.rpc,
            key,
            tx_type=args.tx_type,
            gas_price_wei=None if args.gas_price_wei is None else int(args.gas_price_wei),
        )
        receipt = client.grant_role(args.contract, args.role, args.account)
    except (OSError, KeyFileError, ChainError) as exc:
        print(f"grant_role: {exc}", file=sys.stderr)
        return 1
    print(
        f"{args.role} granted to {args.account} in block {receipt.block_number} ({receipt.tx_hash})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
