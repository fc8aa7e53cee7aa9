"""The ``verifier`` command. Each command group lives in its own module and registers itself here;
this module only parses arguments, maps errors to exit codes and prints."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any

from verifier.errors import CatalogueError, UsageError, VerifierError

Command = Callable[[argparse.Namespace], int]


def print_json(value: Any) -> None:
    """JSON for machines: UTF-8, Chinese as is, stable key order."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def _catalogue(args: argparse.Namespace) -> int:
    from verifier.catalogue_load import load_catalogue
    from verifier.catalogue_view import catalogue_document, catalogue_table

    cat = load_catalogue()
    if args.json:
        print_json(catalogue_document(cat))
    else:
        print(catalogue_table(cat))
    return 0


def _counters(args: argparse.Namespace) -> int:
    from verifier.catalogue_load import load_catalogue
    from verifier.catalogue_view import counters_document, counters_table

    cat = load_catalogue()
    if getattr(args, "counters_command", None) == "key":
        from verifier.counter_keys import issue_counter_key

        if args.id not in cat.counters:
            raise UsageError(f"unknown counter {args.id!r}; see `verifier counters`")
        print(issue_counter_key(args.id))
        return 0
    if args.json:
        print_json(counters_document(cat))
    else:
        print(counters_table(cat))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = argparse.ArgumentParser(prog="verifier", description="川渝电子证照亮证互认 verifier")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("catalogue", help="the licence catalogue (第一批川渝电子证照亮证互认实施清单)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_catalogue)

    p = sub.add_parser("counters", help="the counter registry; `counters key ID` issues an API key")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_counters)
    csub = p.add_subparsers(dest="counters_command")
    k = csub.add_parser("key", help="print a fresh API key for a counter (stored hashed)")
    k.add_argument("id", help="counter id")

    for register in _command_modules():
        register(sub)
    return parser


def _command_modules() -> list[Callable[[Any], None]]:
    """Command groups that live beside their own code."""
    from verifier import cli_commands

    return cli_commands.REGISTRARS


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit 0 on success, 1 for a rejected decision, 2 for a usage or data error."""
    args = build_parser().parse_args(argv)
    func: Command = args.func
    try:
        return func(args)
    except CatalogueError as exc:
        print("The catalogue in data/ is invalid / 证照目录数据有误:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except VerifierError as exc:
        print(f"error [{exc.code}]: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
