"""``verifier audit migrate`` brings the audit trail's schema to its newest version; ``verifier audit writer``
is a process that only writes the trail from the Redis streams, for deployments whose instances run
``verifier serve --separate-audit-writer``. Every writer (a separate one or an instance's own) is a consumer
of the streams' one group, so each event goes to one writer, and what a dead writer took is taken over by
the others after ``--audit-claim-idle``. Both read serve's flags and ``VERIFIER_…`` variables for what they
share with it."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from verifier.cli.settings_table import add_flags, settings_from
from verifier.errors import CatalogueError, StoreUnavailableError, UsageError

if TYPE_CHECKING:
    from verifier.adapters.audit.trail import AuditTrail
    from verifier.adapters.audit.writer import TrailWriter
    from verifier.adapters.redis_audit import RedisAuditFeed
    from verifier.core.catalogue import Catalogue
    from verifier.service.settings import Settings

log = logging.getLogger("verifier.audit")
PROGRESS_SECONDS = 10.0  # between the writer's progress lines
MIGRATE_FLAGS = ("--audit-url", "--state-dir")
WRITER_FLAGS = (
    "--audit-url", "--audit-retention-days", "--audit-claim-idle", "--data-dir", "--state-dir", "--log-level",
)  # fmt: skip


def check_trail_url(settings: Settings, args: argparse.Namespace) -> None:
    """A UsageError naming where it came from if ``--audit-url`` (or ``VERIFIER_AUDIT_URL``) is of no form the
    trail takes, before anything connects."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    from verifier.adapters.audit.trail import engine_url
    from verifier.adapters.redis_urls import redacted

    if settings.audit_url is None:
        return
    try:
        make_url(engine_url(settings.audit_url, Path()))  # the port too: a port that is not a number is refused
    except (ValueError, ArgumentError):
        source = "--audit-url" if getattr(args, "audit_url", None) is not None else "VERIFIER_AUDIT_URL"
        shown = redacted(settings.audit_url)
        raise UsageError(
            f"{source} 不是审计记录库的地址（{shown}），须为 postgresql://用户@主机:端口/库名 或 sqlite:///路径"
            f" / {source} is not an audit trail URL ({shown}): give postgresql://USER@HOST:PORT/DATABASE"
            " or sqlite:///PATH"
        ) from None


def open_trail(settings: Settings, args: argparse.Namespace) -> AuditTrail:
    """The trail ``--audit-url`` (or ``VERIFIER_AUDIT_URL``) names, else SQLite in the state folder; nothing
    connects yet."""
    from verifier.web.app import build_trail

    check_trail_url(settings, args)
    return build_trail(settings)


def _shown(trail: AuditTrail) -> str:
    """The trail's database as messages and logs name it: its URL, password masked, or SQLite's file."""
    url = trail.engine.url
    if not trail.postgres:
        return str(url.database)
    return url.set(drivername="postgresql").render_as_string(hide_password=True)


def _migrate(args: argparse.Namespace) -> int:
    from verifier.adapters.audit.trail import TrailUnavailable

    trail = open_trail(settings_from(args, os.environ), args)

    async def run() -> str:
        try:
            await trail.migrate()
            return await trail.version()
        finally:
            await trail.close()

    try:
        version = asyncio.run(run())
    except TrailUnavailable as exc:
        said = str(getattr(exc, "orig", None) or exc)  # the driver's own words, without SQLAlchemy's wrapping
        reason = said.splitlines()[0][:300] if said else type(exc).__name__
        raise UsageError(
            f"无法连接审计记录库 {_shown(trail)}，结构未更新，请检查 --audit-url 和数据库是否在运行"
            f" / cannot reach the audit trail at {_shown(trail)}, its schema unchanged; check --audit-url and that"
            f" the database runs ({reason})"
        ) from None
    print(version)
    print(
        f"审计记录库 {_shown(trail)} 的结构已是版本 {version} / the audit trail at {_shown(trail)} has its schema"
        f" at version {version}",
        file=sys.stderr,
    )
    return 0


def _event(name: str, **fields: Any) -> None:
    log.info(json.dumps({"event": name, "pid": os.getpid(), **fields}, ensure_ascii=False))


def _writer(args: argparse.Namespace) -> int:
    from verifier.adapters.catalogue_files import load_catalogue
    from verifier.adapters.paths import choose_folders
    from verifier.cli.service import check_redis_url_from, refuse_misconfigured_store
    from verifier.web.logsink import configure

    settings = settings_from(args, os.environ)
    if settings.redis_url is None:
        raise UsageError(
            "须给出 --redis-url（或 VERIFIER_REDIS_URL）：审计事件在各实例共享的 Redis 中等待写入；"
            "使用进程内存储的服务自己写审计记录"
            " / give --redis-url (or VERIFIER_REDIS_URL): the audit events wait in the instances' shared Redis;"
            " a service on the embedded store writes its own trail"
        )
    check_redis_url_from(settings.redis_url, "--redis-url" if args.redis_url is not None else "VERIFIER_REDIS_URL")
    trail = open_trail(settings, args)
    refuse_misconfigured_store(settings.redis_url)
    choose_folders(data=settings.data_dir, state=settings.state_dir)
    catalogue = load_catalogue()  # the counters' institutions and divisions, copied into each row
    configure(settings.log_level)
    asyncio.run(_write(settings, trail, catalogue))
    return 0


async def _write(settings: Settings, trail: AuditTrail, catalogue: Catalogue) -> None:
    """Write the trail until SIGTERM or SIGINT; the batch under way is finished (or left to the others)."""
    from verifier.adapters.audit.writer import TrailWriter
    from verifier.adapters.redis_audit import RedisAuditFeed
    from verifier.adapters.redis_store import RedisStore
    from verifier.adapters.redis_urls import redacted

    assert settings.redis_url is not None  # noqa: S101 - checked by _writer
    store = RedisStore.from_url(settings.redis_url)
    feed = RedisAuditFeed(store, claim_idle=settings.audit_claim_idle)
    rules = [catalogue]
    writer = TrailWriter(feed, trail, lambda: rules[0])
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    # SIGHUP reloads the rules, as it does for `verifier serve` (an operator may send it to every process).
    loop.add_signal_handler(signal.SIGHUP, _reload, rules)
    _event(
        "audit_writer_started",
        consumer=feed.consumer,
        redis=redacted(settings.redis_url),
        trail=_shown(trail),
        claim_idle=settings.audit_claim_idle,
    )
    writer.start()
    try:
        await _progress(writer, feed, stopping)
    finally:
        await writer.stop()
        await trail.close()
        await store.close()
    _event("audit_writer_stopped", batches=writer.state.batches, events=writer.state.written)


def _reload(rules: list[Catalogue]) -> None:
    """The catalogue read again (counters and their institutions may have changed); a broken one is said, and
    the rules in use stay."""
    from verifier.adapters.catalogue_files import load_catalogue

    try:
        rules[0] = load_catalogue()
    except CatalogueError as exc:
        _event("audit_writer_rules_kept", problems=exc.problems[:5])
        return
    _event("audit_writer_rules_reloaded", counters=len(rules[0].counters))


async def _progress(writer: TrailWriter, feed: RedisAuditFeed, stopping: asyncio.Event) -> None:
    """Every PROGRESS_SECONDS until stopped: what was written since the last line, and the backlog left (a
    line only when there is something to say)."""
    said = (0, 0)  # batches and events at the last line
    unreachable = False
    while True:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), PROGRESS_SECONDS)
        if stopping.is_set():
            return
        try:
            backlog: int | None = await feed.backlog()
        except StoreUnavailableError as exc:
            if not unreachable:
                log.warning("无法连接 Redis，稍后重试 / Redis cannot be reached; trying again: %s", exc)
            backlog, unreachable = None, True
        else:
            unreachable = False
        done = (writer.state.batches, writer.state.written)
        if done != said or backlog:
            failing = writer.state.failing_since is not None
            _event("audit_writer_progress", batches=done[0] - said[0], events=done[1] - said[1], backlog=backlog,
                   trail_failing=failing, total_events=done[1])  # fmt: skip
            said = done


def register(sub: Any) -> None:
    """``audit migrate`` and ``audit writer``."""
    p = sub.add_parser(
        "audit", help="审计记录：结构迁移与单独的写入进程 / the audit trail: its schema migrations, a separate writer"
    )
    asub = p.add_subparsers(dest="audit_command", metavar="COMMAND", required=True)
    m = asub.add_parser(
        "migrate",
        help="将审计记录库结构更新到最新版本并输出版本号 / bring the audit trail's schema to its newest version"
        " and print that version",
    )
    add_flags(m, MIGRATE_FLAGS)
    m.set_defaults(func=_migrate)
    w = asub.add_parser(
        "writer",
        help="只从 Redis 写入审计记录的进程（配合 verifier serve --separate-audit-writer）"
        " / a process that only writes the audit trail from Redis (beside verifier serve --separate-audit-writer)",
        description="只从 Redis 写入审计记录，直到 SIGTERM 或 SIGINT / write the audit trail from Redis until"
        " SIGTERM or SIGINT. Each flag may be its VERIFIER_<FLAG> variable instead, as for verifier serve.",
    )
    w.add_argument(
        "--redis-url",
        metavar="URL",
        help="各实例共享的 Redis，审计事件在其中等待写入（必需） / the instances' shared Redis, where the audit events"
        " wait (required; $VERIFIER_REDIS_URL)",
    )
    add_flags(w, WRITER_FLAGS)
    w.set_defaults(func=_writer)
