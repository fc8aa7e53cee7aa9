"""Commands of the verifier side: ``serve``, ``check``, ``revoke``, ``demo`` (the key commands: verifier.cli.keys)."""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

from verifier.cli.arguments import http_url, redis_url
from verifier.cli.settings_table import add_flags
from verifier.errors import UsageError

if TYPE_CHECKING:
    from verifier.core.catalogue import Catalogue
    from verifier.core.trust import TrustList
    from verifier.service.settings import JwksSource, Settings

DEFAULT_URL = "http://127.0.0.1:8080"  # where `verifier revoke` finds the service by default


def _read_token(value: str) -> str:
    token = sys.stdin.read() if value == "-" else value
    return token.strip()


def _check(args: argparse.Namespace) -> int:
    from verifier.adapters.catalogue_files import load_catalogue
    from verifier.cli.settings_table import settings_from
    from verifier.core.decide import decide
    from verifier.core.decision_view import decision_document, timestamp

    settings = settings_from(None, os.environ)  # the trust sources and the policy `verifier serve` would use
    cat = load_catalogue()
    counter = cat.counters.get(args.counter)
    if counter is None:
        raise UsageError(
            f"没有窗口 {args.counter!r}，窗口编号见 verifier counters"
            f" / unknown counter {args.counter!r}; see verifier counters for the ids"
        )
    if args.scenario not in cat.scenarios:
        handles = ", ".join(counter.scenarios) or "—"
        raise UsageError(
            f"没有业务场景 {args.scenario!r}，窗口 {counter.id} 办理：{handles}"
            f" / unknown scenario {args.scenario!r}; counter {counter.id} handles: {handles}"
        )
    token = _read_token(args.token)  # first: a minter piped in has published its keys once it is done
    trust = _trust_list(settings.jwks, cat)
    now = time.time()
    decision = decide(
        token,
        trust=trust,
        catalogue=cat,
        counter=counter,
        scenario=args.scenario,
        now=now,
        policy=settings.policy,
    )
    document = decision_document(decision, cat, scan_id=None, cached=False, checked_at=timestamp(now))
    if args.json:
        print(json.dumps(document, ensure_ascii=False, indent=2))
    else:
        print(_describe(document))
    return 0 if decision.accepted else 1


def _trust_list(sources: tuple[JwksSource, ...], cat: Catalogue) -> TrustList:
    """The trust list of ``sources`` (VERIFIER_JWKS), read once as the service reads them; without any, the
    jwks.json the local mock issuer publishes in the state folder."""
    from verifier.adapters.paths import state_dir
    from verifier.adapters.trust_source import JwksTrustSource, published_trust_list
    from verifier.errors import TrustNotLoadedError

    unit_provinces = {code: unit.province for code, unit in cat.units.items()}
    if not sources:
        return published_trust_list(state_dir() / "jwks.json", unit_provinces)
    import asyncio

    trust = JwksTrustSource(sources, unit_provinces=unit_provinces)
    if not asyncio.run(trust.refresh()):
        where = ", ".join(source.location for source in sources)
        raise TrustNotLoadedError(f"无法从 {where} 读取信任列表 / cannot load the trust list from {where}")
    return trust.current


def _describe(document: dict[str, Any]) -> str:
    """A decision in a few lines a clerk can read."""
    accepted = document["decision"] == "accepted"
    lines = ["通过 ACCEPTED" if accepted else "不通过 REJECTED"]
    licence = document.get("licence")
    if licence:
        lines.append(
            f"  {licence['name_zh']} ({licence['type']}) · 签发 {licence['issuing_province']} "
            f"{licence['issuing_unit']['name_zh']} · 持证人 {licence['holder']} · 编号 {licence['licence_no']}"
            f" · 有效期 {licence['valid_from']}–{licence['valid_until']}"
        )
    lines += [f"  {r['code']}: {r['message_zh']} / {r['message_en']}" for r in document["reasons"]]
    return "\n".join(lines)


def _serve(args: argparse.Namespace) -> int:
    from verifier.adapters.paths import choose_folders
    from verifier.cli.settings_table import settings_from

    settings = settings_from(args, os.environ)
    if settings.redis_url is not None:
        check_redis_url_from(settings.redis_url, "--redis-url" if args.redis_url is not None else "VERIFIER_REDIS_URL")
    _refuse_acks_on_a_cluster(settings.redis_url, settings.min_replica_acks)
    from verifier.cli.audit import check_trail_url

    check_trail_url(settings, args)
    if settings.workers > 1 and settings.redis_url is None:
        raise UsageError(
            "多个工作进程须配置 --redis-url：进程内存储不能共享"
            " / --workers above 1 needs --redis-url: the embedded store is one process's memory"
        )
    from verifier.cli.serving import check_can_listen

    check_can_listen(settings.host, settings.port, reuse_port=settings.workers > 1)
    if settings.redis_url is not None:
        refuse_misconfigured_store(settings.redis_url)
    choose_folders(data=settings.data_dir, state=settings.state_dir)
    # SIGHUP reloads the rules (verifier.web.reload) once the service runs; until then it is ignored rather
    # than fatal, and spawned workers inherit the ignoring until their own handler is in place.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    if settings.workers == 1:
        _run_worker(settings, reuse_port=False)
        return 0
    from verifier.web.metrics import shared_across_workers

    with shared_across_workers():  # the workers count into one folder: one /metrics for the instance
        return _run_workers(settings)


def _run_workers(settings: Any) -> int:
    """``settings.workers`` worker processes sharing the port, until a signal stops them. A worker that cannot
    start (its port refused: it said why) stops the others, and the command exits 2."""
    from multiprocessing.connection import wait

    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_run_worker, args=(settings, True), kwargs={"master": os.getpid()})
        for _ in range(settings.workers)
    ]
    for worker in workers:
        worker.start()
    stopping = False

    def stop(signum: int, frame: object) -> None:
        # Workers stop with their master, so nothing is left holding the port.
        nonlocal stopping
        stopping = True
        for worker in workers:
            worker.terminate()

    def reload_all(signum: int, frame: object) -> None:
        for worker in workers:
            if worker.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGHUP)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGHUP, reload_all)
    refused = False
    while running := [worker.sentinel for worker in workers if worker.exitcode is None]:  # once: never wait([])
        wait(running)
        if not stopping and any(worker.exitcode == 2 for worker in workers):
            refused = True
            stop(signal.SIGTERM, None)
    for worker in workers:
        worker.join()
    return 2 if refused else 0


def refuse_misconfigured_store(url: str) -> None:
    """Refuse to start on a Redis that refuses the URL's set-up (a database it does not have) or its password.
    A Redis out of reach is not refused: the service starts and answers 503 until it is back."""
    import asyncio

    from redis.exceptions import AuthenticationError

    from verifier.adapters.redis_store import RedisStore
    from verifier.adapters.redis_urls import redacted
    from verifier.errors import StoreMisconfiguredError, StoreUnavailableError

    async def probe() -> None:
        store = RedisStore.from_url(url, op_timeout=2.0)
        try:
            await store.ping()
        except StoreMisconfiguredError as exc:
            raise UsageError(str(exc)) from None
        except StoreUnavailableError as exc:
            if isinstance(exc.__cause__, AuthenticationError):
                raise UsageError(
                    f"Redis {redacted(url)} 拒绝了登录（{exc.__cause__}），请检查 --redis-url 中的用户名和密码"
                    f" / Redis at {redacted(url)} refused to log in ({exc.__cause__}): check the user and password"
                    " in --redis-url"
                ) from None
        finally:
            await store.close()

    asyncio.run(probe())


def check_redis_url_from(url: str, source: str) -> None:
    """A Redis URL of no form the store reads is refused before anything connects, naming where it came from."""
    from verifier.adapters.redis_urls import check_redis_url

    try:
        check_redis_url(url)
    except ValueError as exc:
        raise UsageError(f"{source}: {exc}") from None


def jwks_sources(flags: list[str] | None) -> tuple[JwksSource, ...]:
    """The trust sources of ``serve``: the ``--jwks`` flags (repeatable), else ``VERIFIER_JWKS`` (the same forms,
    separated by spaces or commas), else none (the state folder's jwks.json)."""
    from verifier.cli.settings_table import settings_from

    return settings_from(argparse.Namespace(jwks=flags or None), os.environ).jwks


def _refuse_acks_on_a_cluster(redis_url: str | None, min_replica_acks: int) -> None:
    if min_replica_acks and (redis_url or "").startswith(("redis+cluster://", "rediss+cluster://")):
        raise UsageError(
            "Redis 集群不支持 --min-replica-acks，请为每个主节点开启 AOF"
            " / --min-replica-acks needs one Redis or Sentinel: on a cluster, give every primary its append-only file"
        )


def _exit_with(master: int) -> None:
    """A worker whose master is gone (even killed outright) exits too, freeing the shared port."""

    def watch() -> None:
        while os.getppid() == master:
            time.sleep(1)
        os._exit(0)

    threading.Thread(target=watch, name="master-watch", daemon=True).start()


def _run_worker(settings: Settings, reuse_port: bool, master: int | None = None) -> None:
    from verifier.adapters.paths import choose_folders
    from verifier.cli.serving import serve_app
    from verifier.web.app import create_app
    from verifier.web.logsink import configure
    from verifier.web.reload import reload_on_sighup

    if master is not None:
        _exit_with(master)
    choose_folders(data=settings.data_dir, state=settings.state_dir)  # a spawned worker starts afresh
    configure(settings.log_level)  # a JSON line per scan, written in batches rather than a write per line
    where = f"http://{settings.host}:{settings.port}"
    banner = f"核验服务已在 {where} 监听 / verifier listening on {where} (pid {os.getpid()})"
    app = create_app(settings)
    reload_on_sighup(app, master=master)
    if master is None:
        serve_app(app, settings.host, settings.port, banner=banner)
        return
    try:  # a worker process: its error said here, on one line, and its exit code tells the master
        serve_app(app, settings.host, settings.port, reuse_port=reuse_port, banner=banner)
    except UsageError as exc:
        from verifier.cli.failures import fail

        sys.exit(fail("verifier serve", str(exc)))


def _revoke(args: argparse.Namespace) -> int:
    from verifier.cli.settings_table import settings_from

    settings = settings_from(None, os.environ)  # the store as `verifier serve` finds it: VERIFIER_REDIS_URL, …
    body = {
        "type": args.type,
        "province": args.province,
        "licence_no": args.licence_no,
        "reason": args.reason,
        "restore": args.restore,
    }
    redis_url = args.redis_url or (None if args.url else settings.redis_url)  # a --url given names the service
    if redis_url:
        return _revoke_in_store(redis_url, settings, body)
    url = args.url or DEFAULT_URL
    key = args.admin_key or os.environ.get("VERIFIER_ADMIN_KEY")
    if not key:
        raise UsageError(
            "请给出 --admin-key 或设置 VERIFIER_ADMIN_KEY（见 verifier admin-key），或用 --redis-url"
            " / give --admin-key or set VERIFIER_ADMIN_KEY (see verifier admin-key), or --redis-url"
        )
    request = urllib.request.Request(  # noqa: S310 - the operator names the service URL, http(s) only (http_url)
        url.rstrip("/") + "/v1/revocations",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - scheme checked by http_url
            print(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        raise UsageError(_refused(exc)) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UsageError(
            f"无法连接服务 {url}（{reason}），请检查 --url 和服务是否在运行"
            f" / cannot reach the service at {url} ({reason}); check --url and that the service runs"
        ) from None
    return 0


def _refused(exc: urllib.error.HTTPError) -> str:
    """The service's problem+json answer to a revocation, on one line, with what to do about a key it refused."""
    try:
        detail = str(json.loads(exc.read().decode("utf-8", "replace"))["detail"])
    except (ValueError, KeyError, TypeError):
        detail = exc.reason
    said = f"服务拒绝了撤销（HTTP {exc.code}） / the service refused the revocation (HTTP {exc.code}): {detail}"
    if exc.code in (401, 403):
        said += "；请检查 --admin-key（见 verifier admin-key） / check --admin-key (see verifier admin-key)"
    return said


def _revoke_in_store(redis_url: str, settings: Settings, body: dict[str, Any]) -> int:
    import asyncio

    from verifier.adapters.catalogue_files import load_catalogue
    from verifier.adapters.redis_store import RedisStore
    from verifier.adapters.secret import load_secret
    from verifier.cli.failures import store_refused
    from verifier.core.identity import Identities
    from verifier.errors import StoreUnavailableError

    check_redis_url_from(redis_url, "--redis-url / VERIFIER_REDIS_URL")
    if body["type"] not in load_catalogue().licences:
        raise UsageError(
            f"没有证照类型 {body['type']!r}，类型代码见 verifier catalogue"
            f" / unknown licence type {body['type']!r}; see verifier catalogue for the codes"
        )
    _refuse_acks_on_a_cluster(redis_url, settings.min_replica_acks)

    async def run() -> None:
        # As the service writes one: bounded by the store timeout, held by as many replicas as it requires.
        store = RedisStore.from_url(
            redis_url, op_timeout=settings.store_timeout, min_replica_acks=settings.min_replica_acks
        )
        try:
            # The same keyed identity the service derives: this host must hold the deployment's secret.
            identities = Identities(load_secret(settings.secret_file))
            licence_id = identities.licence(body["type"], body["province"], body["licence_no"])
            ttl = settings.revocation_days * 86400 or None  # as `verifier serve --revocation-days`
            await store.set_revoked(licence_id, not body["restore"], body["reason"][:200], ttl)
        finally:
            await store.close()

    try:
        asyncio.run(run())
    except StoreUnavailableError as exc:
        raise UsageError(store_refused(redis_url, exc, "未撤销", "nothing revoked")) from None
    print(json.dumps({**body, "revoked": not body["restore"]}, ensure_ascii=False))
    return 0


def _demo(args: argparse.Namespace) -> int:
    from verifier.cli.demo import run_demo

    return run_demo(as_json=args.json)


def register(sub: Any) -> None:
    """Add the verifier's commands."""
    p = sub.add_parser(
        "check",
        help="离线核验，同服务的判断（不含一次一验和注销）"
        " / decide offline, as the service would (minus one-time use and revocation)",
    )
    p.add_argument("token", help="亮证码，或 - 从标准输入读取 / the token, or - to read it from standard input")
    p.add_argument(
        "--counter", required=True, help="窗口编号，见 verifier counters / counter id (see verifier counters)"
    )
    p.add_argument("--scenario", required=True, help="办理的业务场景代码 / the business the counter is doing")
    p.add_argument("--json", action="store_true", help="输出核验结果对象 / print the decision object")
    p.set_defaults(func=_check)

    p = sub.add_parser(
        "serve",
        help="运行核验服务 / run the verifier service",
        description="运行核验服务 / run the verifier service. Every setting is a flag or the environment variable"
        " VERIFIER_<FLAG> (the flag wins).",
    )
    add_flags(p)
    p.set_defaults(func=_serve)

    p = sub.add_parser(
        "revoke",
        help="在运行中的服务上注销（或 --restore 恢复）证照 / revoke (or --restore) a licence on the running service",
    )
    p.add_argument(
        "--type", required=True, help="证照类型代码，见 verifier catalogue / licence type code (see verifier catalogue)"
    )
    p.add_argument("--province", required=True, choices=["SC", "CQ"], help="签发省份 / issuing province")
    p.add_argument("--licence-no", required=True, help="证照编号 / licence number")
    p.add_argument("--reason", default="", help="注销原因 / why")
    p.add_argument("--restore", action="store_true", help="撤销注销 / undo a revocation")
    p.add_argument(
        "--url",
        type=http_url,
        help=f"服务地址（其 /v1/revocations；默认 {DEFAULT_URL}）"
        f" / the service (its /v1/revocations; default {DEFAULT_URL})",
    )
    p.add_argument(
        "--admin-key", help="管理员密钥（或 VERIFIER_ADMIN_KEY） / administrator key (or VERIFIER_ADMIN_KEY)"
    )
    p.add_argument(
        "--redis-url",
        type=redis_url,
        help="直接写入共享的 Redis，不经服务（或 VERIFIER_REDIS_URL，除非给了 --url）"
        " / write to the shared store directly instead of the service (or VERIFIER_REDIS_URL, unless --url is given)",
    )
    p.set_defaults(func=_revoke)

    p = sub.add_parser(
        "demo", help="内置存储上的完整演示 / the whole story on the embedded store: apps present, counters scan"
    )
    p.add_argument("--json", action="store_true", help="以 JSON 输出核验结果 / print the decisions as JSON")
    p.set_defaults(func=_demo)
