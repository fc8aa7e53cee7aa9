"""The audit trail's commands: ``verifier report`` (the effectiveness report, read from the trail itself: a
table, or CSV) and ``verifier apps key CHANNEL`` (an app's key, for the holder's usage log; verifier.cli.keys).

``report`` reads the trail ``verifier serve`` writes: ``--audit-url`` (or ``VERIFIER_AUDIT_URL``), else SQLite in
the state folder (``--state-dir``, or ``VERIFIER_STATE_DIR``). A trail out of reach is said on one line, exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from verifier.cli import keys
from verifier.core.report import GROUPS
from verifier.errors import UsageError

if TYPE_CHECKING:
    from verifier.core.report import ReportRow


def _trail_url(args: argparse.Namespace) -> tuple[str, str]:
    """The trail's SQLAlchemy URL, and how to name it to the operator (a password masked)."""
    from sqlalchemy.engine import make_url

    from verifier.adapters.audit.trail import engine_url
    from verifier.adapters.paths import choose_folders, state_dir

    if args.state_dir:
        choose_folders(state=args.state_dir)
    try:
        url = engine_url(args.audit_url or None, state_dir())
    except ValueError:
        raise UsageError(
            f"--audit-url 须为 postgresql://… 或 sqlite:///路径，而不是 {args.audit_url!r}"
            f" / --audit-url takes postgresql://… or sqlite:///PATH, not {args.audit_url!r}"
        ) from None
    return url, make_url(url).render_as_string(hide_password=True).replace("+psycopg", "").replace("+aiosqlite", "")


async def _read(url: str, first: date, last: date, by: tuple[str, ...]) -> tuple[list[ReportRow], ReportRow]:
    from verifier.adapters.audit.trail import AuditTrail

    trail = AuditTrail(url)
    try:
        return await trail.report(first, last, by)
    finally:
        await trail.close()


def _unreadable(shown: str, exc: BaseException) -> UsageError:
    """The trail could not be read: where, why (the driver's first line), and what to check."""
    cause = getattr(exc, "orig", None) or exc
    why = (str(cause).strip().splitlines() or [type(cause).__name__])[0][:200]
    if shown.startswith("postgresql"):
        zh, en = "请检查 --audit-url 以及 PostgreSQL 是否在运行", "check --audit-url and that PostgreSQL runs"
    else:
        zh, en = "请检查 --state-dir 或 --audit-url 所指的文件", "check the file --state-dir or --audit-url names"
    return UsageError(f"无法读取审计记录库 {shown}，{zh} / cannot read the audit trail at {shown} ({why}); {en}")


def _report(args: argparse.Namespace) -> int:
    import asyncio

    from verifier.adapters.audit.trail import CHINA, TrailUnavailable
    from verifier.adapters.catalogue_files import load_catalogue
    from verifier.cli import report_table
    from verifier.core.report import as_csv, parse_by, parse_days

    by = parse_by(args.by)
    first, last = parse_days(args.from_, args.to, datetime.now(CHINA).date())
    url, shown = _trail_url(args)
    try:
        rows, total = asyncio.run(_read(url, first, last, by))
    except TrailUnavailable as exc:
        raise _unreadable(shown, exc) from None
    if args.csv:
        sys.stdout.write(as_csv(rows, by))
        return 0
    print(f"核验证照落地实效 {first} 至 {last}（中国时间）/ effectiveness report, {first} to {last} (China time)")
    print(f"审计记录 audit trail: {shown}\n")
    print(report_table.render(rows, total, by, load_catalogue()))
    return 0


def _apps(args: argparse.Namespace) -> int:
    from verifier.adapters.catalogue_files import load_catalogue

    return keys.app_key(args, load_catalogue().channels)


def register(sub: Any) -> None:
    """``report`` and ``apps key``."""
    p = sub.add_parser(
        "report",
        help="核验证照落地实效报表，读自审计记录 / the effectiveness report, read from the audit trail",
    )
    p.add_argument(
        "--from",
        dest="from_",
        metavar="DATE",
        help="首日 YYYY-MM-DD（中国时间，含；默认 --to 之前 29 天）"
        " / first day, China time, included (default: 29 days before --to)",
    )
    p.add_argument(
        "--to", metavar="DATE", help="末日 YYYY-MM-DD（含；默认今天） / last day, included (default: today in China)"
    )
    p.add_argument(
        "--by",
        metavar="FIELDS",
        help=f"逗号分隔的分组字段；不给则只有合计 / comma-separated fields to group by, of: {', '.join(GROUPS)};"
        " none gives the total only (default: none)",
    )
    p.add_argument("--csv", action="store_true", help="输出 CSV 而不是表格 / print CSV instead of a table")
    p.add_argument(
        "--audit-url",
        metavar="URL",
        default=os.environ.get("VERIFIER_AUDIT_URL"),
        help="审计记录所在的 PostgreSQL（默认 VERIFIER_AUDIT_URL）；不给则读状态目录中的 SQLite"
        " / the audit trail's PostgreSQL (default VERIFIER_AUDIT_URL); without it, SQLite in the state folder",
    )
    p.add_argument(
        "--state-dir",
        metavar="DIR",
        help="状态文件夹（默认 VERIFIER_STATE_DIR） / the state folder (default VERIFIER_STATE_DIR)",
    )
    p.set_defaults(func=_report)

    p = sub.add_parser(
        "apps", help="亮证 APP；apps key CHANNEL 生成密钥 / the apps; `apps key CHANNEL` issues an app's key"
    )
    keys.add_app_commands(p.add_subparsers(dest="apps_command", metavar="COMMAND", required=True))
    p.set_defaults(func=_apps)
