"""A real PostgreSQL server on a free loopback port, owned by the tests (never the machine's 5432), so
they can stop and restart it to test outages. PostgreSQL refuses to run as root: as root, the server
runs as the ``postgres`` user in a folder of its own."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from tests.redis_server import free_port

INSTALL = "PostgreSQL is not installed (apt-get install -y postgresql)"


def find_binaries() -> Path | None:
    """The folder of the newest installed initdb and pg_ctl: Debian's /usr/lib/postgresql/N/bin, else PATH."""
    found = [d for d in Path("/usr/lib/postgresql").glob("*/bin") if (d / "initdb").exists()]
    if found:
        return max(found, key=lambda d: int(d.parent.name) if d.parent.name.isdigit() else -1)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class PostgresServer:
    """Initialise, start and stop one PostgreSQL server; its data survives a stop. As a context manager, it
    is started on entry and stopped and removed on exit."""

    def __init__(self, directory: Path, port: int | None = None) -> None:
        binaries = find_binaries()
        if binaries is None:
            raise RuntimeError(INSTALL)
        self.binaries = binaries
        self.port = port or free_port()
        self._as_root = os.geteuid() == 0
        if self._as_root:
            # The postgres user cannot reach a pytest folder under root's 0700 one: a folder it owns in /tmp.
            self.root = Path(tempfile.mkdtemp(prefix="pg-"))
            self.root.chmod(0o755)
            shutil.chown(self.root, "postgres", "postgres")
        else:
            self.root = directory
        self.data = self.root / "data"
        self.log = self.root / "postgres.log"

    @property
    def url(self) -> str:
        """The postgresql:// URL of the database ``verifier``, made at the first start."""
        return self.url_of("verifier")

    def url_of(self, database: str) -> str:
        """The postgresql:// URL of one database on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        """Start (or restart, on the same data and port) the server and wait until it accepts connections."""
        first = not (self.data / "PG_VERSION").exists()
        if first:
            # UTF8 for the Chinese in the audit trail; the C locale exists on every machine.
            self._run(
                "initdb", "-D", self.data, "--auth=trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync"
            )
            # Speed over durability against a machine crash. synchronous_commit stays on: with fsync off it
            # costs a write() per commit, and off an immediate stop() loses commits the client saw succeed.
            settings = {"listen_addresses": "127.0.0.1", "port": self.port, "unix_socket_directories": self.data,
                        "fsync": "off", "full_page_writes": "off"}  # fmt: skip
            with (self.data / "postgresql.conf").open("a") as conf:
                conf.writelines(f"{key} = '{value}'\n" for key, value in settings.items())
        done = self._run("pg_ctl", "start", "-D", self.data, "-l", self.log, "-w", "-t", "30", check=False)
        if done.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"PostgreSQL did not start on port {self.port}: {done.stdout}\n{tail}")
        if first:
            with psycopg.connect(self.url_of("postgres"), autocommit=True) as conn:
                conn.execute("CREATE DATABASE verifier")

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server: ``immediate`` as an outage would (it recovers from its WAL at the next start),
        ``fast`` as an orderly shutdown."""
        if (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "stop", "-D", self.data, "-m", mode, "-w", "-t", "30")

    def cleanup(self) -> None:
        """Stop the server and remove the folder made for it as root."""
        self.stop()
        if self._as_root:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        try:
            self.start()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    @contextmanager
    def database(self) -> Iterator[str]:
        """A fresh empty database's URL; the database is dropped afterwards, open connections or not."""
        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(self.url_of("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield self.url_of(name)
        finally:
            with psycopg.connect(self.url_of("postgres"), autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))

    def _run(self, program: str, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self._as_root else []
        command = [*prefix, str(self.binaries / program), *map(str, args)]
        done = subprocess.run(command, cwd=self.root, capture_output=True, text=True, timeout=60, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"{program} exited {done.returncode}: {done.stdout}{done.stderr}")
        return done
