"""docker-compose.yml as an operator runs it (no Docker engine runs here, so the file is read): every
service from a pinned image or the Dockerfile's, none installing anything at start; each with a health
check and a restart policy, started once what it needs is healthy; Redis configured to pass every
readiness check; the mock issuer said to be one and on the internal network only; every verifier given
the one deployment secret; and each verifier's command and environment read by the real `serve` parser."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.redis_server import free_port
from tests.test_dockerfile import dockerfile, healthcheck_command
from verifier.cli.issuer import MOCK_WARNING
from verifier.cli.main import build_parser
from verifier.cli.settings_table import settings_from
from verifier.service.settings import JwksSource, Settings

ROOT = Path(__file__).resolve().parents[1]
SECRET = "/run/secrets/verifier-secret"
ISSUER_JWKS = "http://issuer:8081/.well-known/jwks.json"


def _compose() -> dict[str, Any]:
    compose: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return compose


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _command(service: dict[str, Any]) -> list[str]:
    """The service's command as the container receives it (compose splits a string shell-like)."""
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else list(command)


def _from_the_dockerfile(service: dict[str, Any]) -> bool:
    return service.get("build") == "."


def _verifiers() -> dict[str, dict[str, Any]]:
    """The services that run `verifier serve`."""
    return {
        name: s for name, s in _services().items() if _from_the_dockerfile(s) and _command(s)[:1] in ([], ["serve"])
    }


def _settings(service: dict[str, Any]) -> Settings:
    """The settings `verifier serve` runs with in this service: the image's environment, the service's, its
    command — read by the real parser, so a misspelt flag or a bad value fails here."""
    environment = {**dockerfile()[1][-1].env(), **{k: str(v) for k, v in service.get("environment", {}).items()}}
    args = build_parser().parse_args(_command(service) or ["serve"])
    return settings_from(args, environment)


def test_nothing_is_installed_when_a_container_starts() -> None:
    """Each service runs a pinned Redis image or the image the Dockerfile builds; none runs pip, mounts the
    checkout, or uses a bare Python image."""
    for name, service in _services().items():
        assert _from_the_dockerfile(service) or service["image"].startswith(("redis:7.", "postgres:16")), name
        assert "pip" not in " ".join(_command(service)), name
        assert "python:" not in service.get("image", ""), name
        mounts = [v for v in service.get("volumes", []) if ":" in v]
        assert [v for v in mounts if v.split(":")[0].startswith((".", "/"))] == [], name


def test_every_service_has_a_health_check_a_restart_policy_and_waits_for_what_it_needs() -> None:
    """A health check (its own, or the image's GET /readyz for the verifiers), a restart policy, and every
    dependency waited for until healthy."""
    assert "/readyz" in healthcheck_command()[-1]
    for name, service in _services().items():
        assert service.get("restart") == "unless-stopped", name
        if name not in _verifiers():
            assert service["healthcheck"]["test"][0] == "CMD", name
        else:
            assert "healthcheck" not in service, f"{name}: the image's /readyz check applies"
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), name
        assert {d["condition"] for d in depends.values()} <= {"service_healthy"}, name
        assert set(depends) <= set(_services()), name
    assert set(_services()["verifier"]["depends_on"]) == {"redis", "postgres", "issuer"}


def test_redis_is_configured_to_pass_every_readiness_check() -> None:
    """Every Redis of the file (the primary and its replicas) keeps an append-only file, never evicts and has a
    memory limit (tests/adapters/test_store_health.py runs a redis-server with these options through the
    checks)."""
    redis = [s for s in _services().values() if _command(s)[:1] == ["redis-server"]]
    assert len(redis) == 3
    for service in redis:
        options = dict(zip(_command(service)[1::2], _command(service)[2::2], strict=False))
        assert options["--appendonly"] == "yes"
        assert options["--appendfsync"] == "always"
        assert options["--maxmemory-policy"] == "noeviction"
        assert options["--maxmemory"] not in ("", "0")


def test_the_mock_issuer_is_named_a_mock_and_reachable_only_inside() -> None:
    """The issuer publishes no port and is on the internal network alone, which has no route out; the compose
    file says it is a mock; only verifiers publish ports."""
    compose = _compose()
    issuer = compose["services"]["issuer"]
    assert _command(issuer)[:2] == ["issuer", "serve"]
    assert "ports" not in issuer
    assert issuer["networks"] == ["internal"]
    assert compose["networks"]["internal"]["internal"] is True
    assert "secrets" not in issuer
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert "The issuer below is a MOCK, for tests and demos only" in text
    assert "The MOCK issuer, for tests and demos only" in text
    published = {name for name, service in compose["services"].items() if "ports" in service}
    assert published == set(_verifiers()) == {"verifier", "verifier-sentinel"}
    for name in _services():
        if name not in published:
            assert _services()[name]["networks"] == ["internal"], name


def test_every_verifier_reads_one_deployment_secret() -> None:
    """Each verifier has the compose secret mounted and VERIFIER_SECRET_FILE naming it; the secret's file is
    kept out of git."""
    compose = _compose()
    assert compose["secrets"]["verifier-secret"]["file"] == "./secrets/verifier-secret"
    for name, service in _verifiers().items():
        assert service["secrets"][0] == "verifier-secret", name
        assert _settings(service).secret_file == SECRET, name
    assert "secrets/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()


def test_every_verifier_writes_the_audit_trail_to_the_compose_postgresql_without_a_password_in_its_url() -> None:
    """Each verifier's audit URL names the compose PostgreSQL's database and user; the password reaches libpq
    through its password file, a secret of the verifier's own, matching the database's password secret."""
    compose = _compose()
    postgres = compose["services"]["postgres"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/audit-db-password"
    assert compose["secrets"]["audit-pgpass"]["file"] == "./secrets/audit-pgpass"
    for name, service in _verifiers().items():
        url = _settings(service).audit_url
        assert url == "postgresql://verifier@postgres:5432/audit", name
        assert service["environment"]["PGPASSFILE"] == "/run/secrets/audit-pgpass", name
        assert "audit-pgpass" in service["secrets"], name
        assert service["depends_on"]["postgres"] == {"condition": "service_healthy"}, name
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    assert "printf 'postgres:5432:audit:verifier:%s\\n'" in text  # the set-up line writes the password file


@pytest.mark.parametrize("name", ["verifier", "verifier-sentinel"])
def test_each_verifiers_command_and_environment_are_what_serve_reads(name: str) -> None:
    """The real parser reads each verifier's command and environment: two workers on the compose Redis,
    trusting the issuer's JWKS, listening on every interface of the container on the port it publishes and
    its health check asks, with the state in the volume."""
    service = _services()[name]
    settings = _settings(service)
    assert settings.workers == 2
    assert settings.redis_url is not None
    assert settings.redis_url.split("://")[1].split(":")[0] in ("redis", "sentinel-1")
    assert settings.jwks == (JwksSource(ISSUER_JWKS),)
    assert settings.host == "0.0.0.0"  # noqa: S104 - inside the container, published by compose
    assert service["ports"] == [f"{settings.port}:{settings.port}"]
    environment = {**dockerfile()[1][-1].env(), **service.get("environment", {})}
    assert int(environment["VERIFIER_PORT"]) == settings.port  # the health check's port
    assert f"verifier-state:{environment['VERIFIER_STATE_DIR']}" in service["volumes"]
    assert settings.allow_volatile_store is False


def test_the_issuer_says_it_is_a_mock_when_it_starts(tmp_path: Path) -> None:
    """`verifier issuer serve` prints, before it listens, that it is a mock for tests and demos only, in
    Chinese and English; the README says so too."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "verifier", "issuer", "serve", "--port", str(port)],
        env={"VERIFIER_STATE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        banner: list[str] = []
        while not banner or ("listening" not in banner[-1] and banner[-1]):  # up to the listening line, or its end
            banner.append(process.stderr.readline())
    finally:
        process.terminate()
        process.communicate(timeout=20)
    assert banner[0].strip() == MOCK_WARNING
    assert "模拟签发方，仅供测试和演示" in MOCK_WARNING
    assert "MOCK issuer, for tests and demos only" in MOCK_WARNING
    assert f"listening on http://127.0.0.1:{port}" in banner[-1]
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "**The issuer is a mock**, for tests and demos only" in readme
    assert "the **mock** issuer, for tests and demos only" in readme
