"""API keys in the shared store: two real service instances on one real redis-server know the same keys —
a key issued, replaced or revoked works, or stops, on both within a second; the key commands refuse to
replace a key unless asked; Redis holds hashes only; every URL form carries them; and an instance that
has not read the keys yet answers 503, never 401."""

from __future__ import annotations

import asyncio
import datetime
import hashlib
import ipaddress
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from redis.asyncio import Redis

from tests.helpers import ClientFactory, wait_ready
from tests.redis_cluster import Cluster
from tests.redis_sentinel import Deployment, SentinelProcess
from tests.redis_server import RedisServer, free_port
from tests.scenes import Scene
from verifier.adapters.api_keys import ADMIN
from verifier.adapters.redis_keys import RedisKeys
from verifier.adapters.redis_store import RedisStore
from verifier.adapters.trust_source import JwksTrustSource
from verifier.cli.main import main
from verifier.errors import KeyExistsError
from verifier.service.settings import Settings
from verifier.web.app import create_app

pytestmark = pytest.mark.redis

T = TypeVar("T")
NOTARY = "cq-notary-zhixin-01"
WITHIN = 1.0  # seconds: a change is in effect on every instance by then


# --- two real service instances on one real redis-server ----------------------------------------------


@pytest.fixture(scope="module")
def instances(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer) -> Iterator[list[int]]:
    """Two ``verifier serve`` processes on ``redis_server``, each on its own port: their ports."""
    env = {**os.environ, "VERIFIER_STATE_DIR": str(tmp_path_factory.mktemp("keys-state"))}
    # The mock issuer publishes its keys first: the verifier reads them, it never makes one.
    subprocess.run([sys.executable, "-m", "verifier", "issuer", "keys"], env=env, check=True, capture_output=True)
    ports = [free_port(), free_port()]
    logs = [Path(env["VERIFIER_STATE_DIR"]) / f"serve-{port}.log" for port in ports]
    processes = []
    for port, log in zip(ports, logs, strict=True):
        with log.open("w") as out:
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "verifier", "serve", "--port", str(port), "--redis-url", redis_server.url],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )
    try:
        for port, process, log in zip(ports, processes, logs, strict=True):
            try:
                wait_ready(port, process=process)
            except AssertionError as exc:  # say why: the service's own words
                raise AssertionError(f"{exc}\n{log.read_text()[-3000:]}") from None
        yield ports
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)


def _status(port: int, path: str, key: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310 - loopback test service
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return exc.code


async def _until(ports: list[int], path: str, key: str, status: int) -> float:
    """Seconds until every instance answers ``path`` with ``key`` as ``status`` (polled every 20 ms)."""
    started = time.monotonic()
    waiting = set(ports)
    while waiting and time.monotonic() - started < 5:
        answers = {port: await asyncio.to_thread(_status, port, path, key) for port in waiting}
        waiting = {port for port, answer in answers.items() if answer != status}
        if waiting:
            await asyncio.sleep(0.02)
    assert not waiting, f"{path} did not answer {status} on {sorted(waiting)} within 5 s"
    return time.monotonic() - started


async def _on_store(url: str, act: Callable[[RedisKeys], Awaitable[T]]) -> T:
    """``act`` on the keys in the Redis at ``url``, as the key commands reach them (without their wait)."""
    store = RedisStore.from_url(url)
    try:
        return await act(RedisKeys(store))
    finally:
        await store.close()


async def _issue(url: str, principal: str, *, replace: bool = True) -> str:
    return await _on_store(url, lambda keys: keys.issue(principal, replace=replace))


async def _revoke(url: str, principal: str) -> bool:
    return await _on_store(url, lambda keys: keys.revoke(principal))


async def test_a_key_issued_replaced_or_revoked_takes_effect_on_both_instances_within_a_second(
    instances: list[int], redis_server: RedisServer
) -> None:
    """A counter's and the administrator's keys, written straight into Redis (as the commands do, minus
    their wait): each works on both instances within a second, a replaced one stops there within a second
    while its successor works, and a revoked one stops within a second."""
    url = redis_server.url
    for principal, path in ((NOTARY, "/v1/counters/me"), (ADMIN, "/v1/stats")):
        first = await _issue(url, principal)
        assert await _until(instances, path, first, 200) < WITHIN
        second = await _issue(url, principal)
        assert await _until(instances, path, first, 401) < WITHIN
        assert await _until(instances, path, second, 200) < WITHIN
        assert await _revoke(url, principal) is True
        assert await _until(instances, path, second, 401) < WITHIN


async def test_the_key_commands_refuse_a_replacement_unless_asked_and_take_effect_when_they_return(
    instances: list[int], redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """`verifier counters key ID --redis-url`, run again, exits 2 saying so in both languages and the key
    keeps working; with --replace the old key is refused by both instances as the command returns;
    `counters revoke-key` and `admin-key --revoke` likewise."""
    redis = ["--redis-url", redis_server.url]

    async def run(*args: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(main, [*args, *redis])
        out, err = capsys.readouterr()
        return code, out.strip(), err

    await run("counters", "revoke-key", NOTARY)
    await run("admin-key", "--revoke")
    for issue, revoke, path in (
        (("counters", "key", NOTARY), ("counters", "revoke-key", NOTARY), "/v1/counters/me"),
        (("admin-key",), ("admin-key", "--revoke"), "/v1/stats"),
    ):
        code, key, _ = await run(*issue)
        assert code == 0
        assert [_status(port, path, key) for port in instances] == [200, 200]
        code, printed, said = await run(*issue)
        assert (code, printed) == (2, "")
        assert "--replace" in said
        assert "已有密钥" in said
        assert "already has a key" in said
        assert [_status(port, path, key) for port in instances] == [200, 200]
        code, new, _ = await run(*issue, "--replace")
        assert code == 0
        assert [_status(port, path, key) for port in instances] == [401, 401]
        assert [_status(port, path, new) for port in instances] == [200, 200]
        code, _, said = await run(*revoke)
        assert code == 0
        assert "key revoked" in said
        assert [_status(port, path, new) for port in instances] == [401, 401]
        code, _, said = await run(*revoke)
        assert (code, "had no key" in said) == (0, True)


async def test_redis_holds_the_hashes_only(redis_server: RedisServer) -> None:
    """Every key and value in Redis after issuing keys: no secret part of a key anywhere, its SHA-256 only."""
    issued = [await _issue(redis_server.url, principal) for principal in (NOTARY, ADMIN)]
    client = Redis.from_url(redis_server.url, decode_responses=True)
    try:
        everything = []
        async for name in client.scan_iter():
            kind = await client.type(name)
            value = await client.hgetall(name) if kind == "hash" else await client.get(name) if kind == "string" else ""
            everything.append(f"{name} {value!r}")
        hashed = await client.hgetall("cy:api-keys")
    finally:
        await client.aclose()
    dump = "\n".join(everything)
    for key in issued:
        principal, _, secret = key.partition(".")
        assert secret not in dump
        assert hashed[principal] == hashlib.sha256(key.encode()).hexdigest()


async def test_a_replacement_the_store_refuses_leaves_the_key_as_it_was(redis_server: RedisServer) -> None:
    """RedisKeys.issue without replace raises KeyExistsError and the stored hash does not change."""
    key = await _issue(redis_server.url, NOTARY)
    with pytest.raises(KeyExistsError):
        await _issue(redis_server.url, NOTARY, replace=False)
    store = RedisStore.from_url(redis_server.url)
    keys = RedisKeys(store)
    try:
        await keys.refresh()
        assert keys.principal(key) == NOTARY
    finally:
        await store.close()


# --- every URL form ----------------------------------------------------------------------------------------


def _tls_files(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "redis.crt", folder / "redis.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@pytest.fixture(params=["unix", "rediss", "sentinel", "cluster"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A running Redis of each form but plain redis:// (the instances above use that), as its URL."""
    form = request.param
    if form == "unix":
        socket_path = tmp_path / "redis.sock"
        server = RedisServer(tmp_path, extra_args=("--unixsocket", str(socket_path), "--unixsocketperm", "700"))
        server.start()
        yield f"unix://{socket_path}?db=1"
        server.stop()
    elif form == "rediss":
        cert, key = _tls_files(tmp_path)
        tls_port = free_port()
        tls = ("--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
               "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no")  # fmt: skip
        server = RedisServer(tmp_path, extra_args=tls)
        server.start()
        yield f"rediss://127.0.0.1:{tls_port}/0?ssl_ca_certs={cert}"
        server.stop()
    elif form == "sentinel":
        (tmp_path / "primary").mkdir()
        primary = RedisServer(tmp_path / "primary")
        primary.start()
        deployment = Deployment(primary, [])
        deployment.sentinels = [SentinelProcess(tmp_path / f"sentinel-{i}", primary.port) for i in range(3)]
        try:
            yield deployment.url
        finally:
            for sentinel in deployment.sentinels:
                sentinel.stop()
            primary.stop()
    else:
        cluster = Cluster(tmp_path)
        try:
            cluster.start()
            yield cluster.url
        finally:
            cluster.stop()


async def test_every_url_form_carries_the_keys(
    store_url: str, aiohttp_client: ClientFactory, scene: Scene, capsys: pytest.CaptureFixture[str]
) -> None:
    """With a unix://, rediss://, redis+sentinel:// or redis+cluster:// URL the key commands write to that
    Redis and the service reads its keys there: issued works, a second issue is refused, replaced and
    revoked keys stop."""
    app = create_app(
        Settings(redis_url=store_url),
        trust=JwksTrustSource.static(scene.keyring.trust_list()),
        catalogue=scene.catalogue,
    )
    client = await aiohttp_client(app)

    async def status(key: str) -> int:
        deadline = time.monotonic() + 10  # a sentinel deployment takes a moment to name its primary
        while True:
            async with client.get("/v1/counters/me", headers={"Authorization": f"Bearer {key}"}) as response:
                if response.status != 503 or time.monotonic() > deadline:
                    return response.status
            await asyncio.sleep(0.1)

    async def run(*args: str) -> tuple[int, str]:
        code = await asyncio.to_thread(main, [*args, "--redis-url", store_url])
        return code, capsys.readouterr().out.strip()

    code, key = await run("counters", "key", NOTARY)
    assert code == 0
    assert await status(key) == 200
    assert (await run("counters", "key", NOTARY))[0] == 2
    code, new = await run("counters", "key", NOTARY, "--replace")
    assert (code, await status(key), await status(new)) == (0, 401, 200)
    assert (await run("counters", "revoke-key", NOTARY))[0] == 0
    assert await status(new) == 401


async def test_keys_not_read_yet_are_a_503_not_a_401(aiohttp_client: ClientFactory, scene: Scene) -> None:
    """On a Redis that cannot be reached the instance has read no key: any key is answered 503 (cannot
    check now, retry), not 401 (wrong key), which would sign a clerk out."""
    app = create_app(
        Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"),
        trust=JwksTrustSource.static(scene.keyring.trust_list()),
        catalogue=scene.catalogue,
    )
    client = await aiohttp_client(app)
    async with client.get("/v1/counters/me", headers={"Authorization": f"Bearer {NOTARY}.anything"}) as response:
        assert response.status == 503


async def test_a_key_change_waits_for_the_replicas_the_service_asks_for(
    tmp_path: Path, own_redis: RedisServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With VERIFIER_MIN_REPLICA_ACKS=1 (as `verifier serve` reads it) a key command counts its change once a
    replica holds it, so a revoked key cannot come back with a failover; no replica answering is exit 2."""
    (tmp_path / "replica").mkdir()
    replica = RedisServer(tmp_path / "replica", extra_args=("--replicaof", "127.0.0.1", str(own_redis.port)))
    replica.start()
    monkeypatch.setenv("VERIFIER_MIN_REPLICA_ACKS", "1")
    redis = ["--redis-url", own_redis.url]
    try:
        client = Redis(port=replica.port, decode_responses=True)
        deadline = time.monotonic() + 15
        while (await client.info("replication")).get("master_link_status") != "up":
            assert time.monotonic() < deadline, "the replica did not connect"
            await asyncio.sleep(0.1)
        assert await asyncio.to_thread(main, ["counters", "key", NOTARY, *redis]) == 0
        key = capsys.readouterr().out.strip()
        assert await client.hget("cy:api-keys", NOTARY) == hashlib.sha256(key.encode()).hexdigest()
        await client.aclose()
        replica.pause()
        assert await asyncio.to_thread(main, ["counters", "revoke-key", NOTARY, *redis]) == 2
        assert "replicas acknowledged" in capsys.readouterr().err
    finally:
        replica.stop()
