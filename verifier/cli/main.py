"""The ``verifier`` command. Each command group lives in its own module and registers itself here;
this module only parses arguments, maps errors to exit codes and prints. Command modules import what
they run only when it runs, so ``verifier --help`` stays fast."""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Callable, Sequence

from verifier.bench import run as bench
from verifier.cli import audit, issuer, keys, report, service
from verifier.cli.arguments import Parser
from verifier.cli.failures import fail, file_refused, says_chinese
from verifier.cli.output import print_json
from verifier.errors import CatalogueError, UsageError, VerifierError

Command = Callable[[argparse.Namespace], int]


def _catalogue(args: argparse.Namespace) -> int:
    from verifier.adapters.catalogue_files import load_catalogue
    from verifier.cli.catalogue_tables import catalogue_table
    from verifier.core.catalogue_view import catalogue_document

    cat = load_catalogue()
    if args.json:
        print_json(catalogue_document(cat))
    else:
        print(catalogue_table(cat, wide=args.wide))
    return 0


def _counters(args: argparse.Namespace) -> int:
    from verifier.adapters.catalogue_files import load_catalogue
    from verifier.cli.catalogue_tables import counters_table
    from verifier.core.catalogue_view import counters_document

    command = getattr(args, "counters_command", None)
    if command == "revoke-key":
        return keys.counter_revoke_key(args)
    cat = load_catalogue()
    if command == "key":
        return keys.counter_key(args, cat.counters)
    if args.json:
        print_json(counters_document(cat))
    else:
        print(counters_table(cat))
    return 0


def _version() -> str:
    """The installed package's version (its metadata, so a wheel and an editable install both know it)."""
    try:
        return importlib.metadata.version("cy-licence-verifier")
    except importlib.metadata.PackageNotFoundError:  # imported from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    """The whole command line."""
    parser = Parser(prog="verifier", description="川渝电子证照亮证互认 verifier")
    parser.add_argument(
        "--version",
        action="version",
        version=f"%(prog)s {_version()}",
        help="显示版本并退出 / show the version and exit",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("catalogue", help="证照目录 / the licence catalogue (第一批川渝电子证照亮证互认实施清单)")
    p.add_argument("--json", action="store_true", help="输出 JSON 而不是表格 / print JSON instead of a table")
    p.add_argument(
        "--wide",
        action="store_true",
        help="加上签发单位和试点范围，每行一条 / add issuing units and pilot scope, a row a line",
    )
    p.set_defaults(func=_catalogue)

    p = sub.add_parser(
        "counters", help="窗口登记表；counters key ID 生成密钥 / the counter registry; `counters key ID` issues a key"
    )
    p.add_argument("--json", action="store_true", help="输出 JSON 而不是表格 / print JSON instead of a table")
    p.set_defaults(func=_counters)
    keys.add_counter_commands(p.add_subparsers(dest="counters_command", metavar="COMMAND"))

    for register in (service.register, keys.register, report.register, audit.register, issuer.register, bench.register):
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; exit 0 on success, 1 for a rejected decision, 2 for a usage or data error. Errors are
    one line in Chinese and English (a broken catalogue: one line for each problem), never a traceback."""
    args = build_parser().parse_args(argv)
    func: Command = args.func
    prog: str = args.prog
    try:
        return func(args)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except CatalogueError as exc:
        print("证照目录数据有误 / The catalogue in data/ is invalid:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return 2
    except (VerifierError, OSError) as exc:
        return fail(prog, _message(exc))


def _message(exc: VerifierError | OSError) -> str:
    """What an error says to the operator, in Chinese and English."""
    if isinstance(exc, OSError):  # a file or folder the command was told to use (missing, no permission, disk full)
        return file_refused(exc)
    said = str(exc)
    if isinstance(exc, UsageError):
        return said
    if says_chinese(said):
        return f"[{exc.code}] {said}"
    return f"未能完成（{exc.code}） / [{exc.code}] {said}"
