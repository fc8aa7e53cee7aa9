"""The API key commands: ``verifier counters key ID [--replace]``, ``verifier counters revoke-key ID``,
``verifier admin-key [--replace | --revoke]``, ``verifier apps key CHANNEL [--replace]``.

With ``--redis-url`` (or ``VERIFIER_REDIS_URL``) the key hashes go to the shared store, where every
instance on that Redis reads them within a second; without, to the state folder's key file, which only
a service on the embedded store reads. A new key is printed alone on standard output (for ``$(…)``);
what was done is said on standard error, in Chinese and English.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from verifier.adapters.api_keys import ADMIN, ApiKeys, app_principal
from verifier.cli.arguments import redis_url
from verifier.cli.failures import store_refused
from verifier.errors import KeyExistsError, StoreUnavailableError, UsageError

if TYPE_CHECKING:
    from verifier.adapters.redis_keys import RedisKeys

T = TypeVar("T")
ADMIN_ID = "admin"  # how the commands name the administrator's key


def _say(message: str) -> None:
    print(message, file=sys.stderr)


def _where(redis_url: str | None) -> tuple[str, str]:
    """Where the hashes went, in Chinese and in English."""
    if redis_url:
        return "Redis，各实例均已生效", "Redis, in effect on every instance"
    return (
        "本机状态目录的 api-keys.json，仅使用嵌入式存储的服务读取（使用 Redis 的服务请加 --redis-url）",
        "the state folder's api-keys.json, read by a service on the embedded store only"
        " (for a service on Redis give --redis-url)",
    )


def _on_redis(redis_url: str, act: Callable[[RedisKeys], Awaitable[T]]) -> T:
    """Run ``act`` on the shared store's keys, connected for this command only; return once every
    instance has seen the change, so a script may use (or count as dead) the key at once."""
    from verifier.adapters.redis_cluster import CLUSTER_SCHEMES
    from verifier.adapters.redis_keys import SEEN_WITHIN, RedisKeys
    from verifier.adapters.redis_store import RedisStore

    # A change counts once as many replicas hold it as the service asks of a claim (a cluster has no WAIT).
    try:
        acks = 0 if redis_url.startswith(CLUSTER_SCHEMES) else int(os.environ.get("VERIFIER_MIN_REPLICA_ACKS") or 0)
    except ValueError:
        raise UsageError(
            "VERIFIER_MIN_REPLICA_ACKS 须为整数 / VERIFIER_MIN_REPLICA_ACKS must be a whole number"
        ) from None

    async def run() -> T:
        store = RedisStore.from_url(redis_url, min_replica_acks=acks)
        try:
            result = await act(RedisKeys(store))
        finally:
            await store.close()
        await asyncio.sleep(SEEN_WITHIN)
        return result

    try:
        return asyncio.run(run())
    except StoreUnavailableError as exc:
        raise UsageError(store_refused(redis_url, exc, "密钥未改变", "no key changed")) from None


def _issued(principal: str, *, replace: bool, redis_url: str | None) -> str:
    if redis_url:
        return _on_redis(redis_url, lambda keys: keys.issue(principal, replace=replace))
    return ApiKeys().issue(principal, replace=replace)


def _revoked(principal: str, *, redis_url: str | None) -> bool:
    if redis_url:
        return _on_redis(redis_url, lambda keys: keys.revoke(principal))
    return ApiKeys().revoke(principal)


def _issue(principal: str, shown: str, args: argparse.Namespace) -> int:
    try:
        key = _issued(principal, replace=args.replace, redis_url=args.redis_url)
    except KeyExistsError:
        revoke = _revoke_command(shown)
        zh, en = (f"，如需作废请用 {revoke}", f", or {revoke} to revoke it") if revoke else ("", "")
        raise UsageError(
            f"{shown} 已有密钥，仍然有效；如需更换（旧密钥随即失效）请加 --replace{zh}"
            f" / {shown} already has a key, which stays valid; give --replace to replace it (the old key then"
            f" stops working){en}"
        ) from None
    print(key)
    zh, en = _where(args.redis_url)
    if args.replace:
        _say(f"{shown}: 新密钥已存入{zh}；旧密钥（如有）已失效 / new key stored in {en}; any old key no longer works")
    else:
        _say(f"{shown}: 新密钥已存入{zh} / new key stored in {en}")
    return 0


def _revoke(principal: str, shown: str, args: argparse.Namespace) -> int:
    zh, en = _where(args.redis_url)
    if _revoked(principal, redis_url=args.redis_url):
        _say(f"{shown}: 密钥已作废（{zh}）/ key revoked ({en})")
    else:
        _say(f"{shown}: 本无密钥，无需作废（{zh}）/ had no key; nothing to revoke ({en})")
    return 0


def _revoke_command(shown: str) -> str | None:
    """The command that revokes the key of ``shown``; None for an app's, which a new one replaces."""
    if shown.startswith("@"):
        return None
    return "verifier admin-key --revoke" if shown == ADMIN_ID else f"verifier counters revoke-key {shown}"


def counter_key(args: argparse.Namespace, counters: Any) -> int:
    """``verifier counters key ID [--replace]``: a fresh key for a counter of the catalogue."""
    if args.id not in counters:
        raise UsageError(
            f"没有窗口 {args.id!r}，窗口编号见 verifier counters"
            f" / unknown counter {args.id!r}; see verifier counters for the ids"
        )
    return _issue(args.id, args.id, args)


def counter_revoke_key(args: argparse.Namespace) -> int:
    """``verifier counters revoke-key ID``: the counter's key stops working (a counter gone from the
    catalogue included)."""
    return _revoke(args.id, args.id, args)


def app_key(args: argparse.Namespace, channels: Any) -> int:
    """``verifier apps key CHANNEL [--replace]``: a fresh key for an app (亮证渠道) of the catalogue, for the
    holder's usage log (``GET /v1/uses``)."""
    if args.channel not in channels:
        allowed = ", ".join(channels)
        raise UsageError(
            f"没有亮证渠道 {args.channel!r}，可选：{allowed} / unknown channel {args.channel!r}; one of: {allowed}"
        )
    return _issue(app_principal(args.channel), app_principal(args.channel), args)


def _admin_key(args: argparse.Namespace) -> int:
    if args.revoke:
        return _revoke(ADMIN, ADMIN_ID, args)
    return _issue(ADMIN, ADMIN_ID, args)


def _redis_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redis-url",
        type=redis_url,
        default=os.environ.get("VERIFIER_REDIS_URL"),
        help="服务所用的 Redis（默认 VERIFIER_REDIS_URL）；不给则写本机状态目录的密钥文件"
        " / the service's Redis (default VERIFIER_REDIS_URL); without it, the state folder's key file",
    )


def _key_command(sub: Any, summary: str, argument: tuple[str, str], whose: tuple[str, str]) -> None:
    """A ``key`` command: ``argument`` (its name and help) says whose key; ``--replace`` and ``--redis-url``."""
    k = sub.add_parser("key", help=summary)
    k.add_argument(argument[0], help=argument[1])
    k.add_argument(
        "--replace",
        action="store_true",
        help=f"更换{whose[0]}的密钥（旧密钥随即失效） / replace {whose[1]} key (the old one stops working)",
    )
    _redis_option(k)


def add_counter_commands(csub: Any) -> None:
    """``counters key`` and ``counters revoke-key``."""
    _key_command(
        csub,
        "为窗口生成新的 API 密钥（仅存哈希） / print a fresh API key for a counter (stored hashed)",
        ("id", "窗口编号，见 verifier counters / counter id (see verifier counters)"),
        ("窗口", "the counter's"),
    )
    r = csub.add_parser("revoke-key", help="作废窗口的 API 密钥 / revoke a counter's API key")
    r.add_argument("id", help="窗口编号 / counter id")
    _redis_option(r)


def add_app_commands(asub: Any) -> None:
    """``apps key``."""
    _key_command(
        asub,
        "为亮证 APP 生成新的 API 密钥，用于持证人用证记录（仅存哈希）"
        " / print a fresh API key for an app, for the holder's usage log (stored hashed)",
        ("channel", "渠道代码，见 verifier catalogue / channel code (see verifier catalogue)"),
        ("该 APP ", "the app's"),
    )


def register(sub: Any) -> None:
    """``admin-key``."""
    p = sub.add_parser(
        "admin-key",
        help="生成新的管理员密钥（注销、统计、规则重载）"
        " / print a fresh administrator key (revocations, statistics, rule reload)",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument(
        "--replace",
        action="store_true",
        help="更换管理员密钥（旧密钥随即失效） / replace the administrator key (the old one stops)",
    )
    what.add_argument("--revoke", action="store_true", help="作废管理员密钥 / revoke the administrator key")
    _redis_option(p)
    p.set_defaults(func=_admin_key)
