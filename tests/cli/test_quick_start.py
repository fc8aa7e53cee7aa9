"""The README's "A minute with the real service" as an operator types it, and what it rests on: the verifier
side never makes a signing key — it is not ready until the mock issuer has published its keys, then reads
them within a second or so."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from tests.helpers import wait_ready
from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]
VERIFIER = [sys.executable, "-m", "verifier"]
MINT = ["issuer", "mint", "--type", "driving-licence", "--province", "SC", "--channel", "jiaoguan-12123"]


def _environment(state: Path) -> dict[str, str]:
    """A fresh operator: no VERIFIER_ setting but the state folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VERIFIER_")}
    return {**env, "VERIFIER_STATE_DIR": str(state), "PYTHONIOENCODING": "utf-8"}


def _readme_minute() -> str:
    """The shell lines of the README's "A minute with the real service"."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"A minute with the real service:\n\n```sh\n(.*?)```", readme, re.DOTALL)
    assert found is not None, "README.md has no 'A minute with the real service' block"
    return found[1]


def _private_keys(state: Path) -> list[str]:
    """Every file in ``state`` that holds or names a signing key."""
    return sorted(p.name for p in state.rglob("*") if p.suffix == ".pem" or p.name == "keys.json")


def _readyz(port: int) -> tuple[int, dict[str, Any]] | None:
    """``GET /readyz``: its status and body, or None while nothing listens."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
    except OSError:
        return None


def test_the_readme_minute_accepts_a_scan(tmp_path: Path) -> None:
    """The README's lines, run by bash in a fresh state folder (on a free port, `verifier` being this checkout),
    start the service before the issuer has any key and end with an accepted scan."""
    port = free_port()
    script = _readme_minute().replace("localhost:8080", f"127.0.0.1:{port}")
    script = script.replace("verifier serve &", f"verifier serve --port {port} &")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "verifier").write_text(f'#!/bin/sh\nexec "{sys.executable}" -m verifier "$@"\n', encoding="utf-8")
    (bin_dir / "verifier").chmod(0o755)
    state = tmp_path / "state"
    env = {**_environment(state), "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    out_file, err_file = tmp_path / "stdout", tmp_path / "stderr"
    with out_file.open("w") as stdout, err_file.open("w") as stderr:
        # Files, not pipes: the service the lines start in the background keeps its standard output open.
        shell = subprocess.Popen(
            [shutil.which("bash") or "/bin/bash", "-e", "-c", script],
            env=env,
            cwd=tmp_path,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,  # its own process group: the backgrounded service is stopped with it
        )
        try:
            shell.wait(timeout=90)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(shell.pid, signal.SIGTERM)
    out, err = out_file.read_text(encoding="utf-8"), err_file.read_text(encoding="utf-8")
    assert shell.returncode == 0, err
    start = out.find('{"scan_id"')
    assert start >= 0, out + err
    decision, _ = json.JSONDecoder().raw_decode(out, start)
    assert decision["decision"] == "accepted", decision
    assert decision["licence"]["issuing_province"] == "SC"
    assert (state / "jwks.json").is_file()


def test_the_verifier_side_makes_no_key_and_waits_for_the_issuer(tmp_path: Path) -> None:
    """In a fresh state folder `verifier serve` (without --jwks) and `verifier check` make no signing key:
    the service answers /readyz 503 naming the trust list and check exits 2 (TRUST_NOT_LOADED). Once
    `verifier issuer mint` has published the keys, the service becomes ready — while it has no list it
    looks every second or so, not every --trust-refresh (60 s) — and check accepts the token."""
    state = tmp_path / "state"
    env = _environment(state)
    port = free_port()
    service = subprocess.Popen(
        [*VERIFIER, "serve", "--port", str(port), "--log-level", "warning"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        answer = None
        deadline = time.monotonic() + 30
        while answer is None and service.poll() is None and time.monotonic() < deadline:
            answer = _readyz(port)
            time.sleep(0.1)
        assert answer is not None, "verifier serve did not start"
        status, body = answer
        assert status == 503
        assert "trust" in {c["check"] for c in body["checks"]}, body
        counter = ["--counter", "cq-notary-zhixin-01", "--scenario", "notary-driving-licence"]
        refused = subprocess.run(
            [*VERIFIER, "check", "x.y.z", *counter], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert refused.returncode == 2
        assert "TRUST_NOT_LOADED" in refused.stderr
        assert "verifier issuer mint" in refused.stderr
        assert _private_keys(state) == []
        assert not (state / "jwks.json").exists()

        token = subprocess.run(
            [*VERIFIER, *MINT], env=env, capture_output=True, text=True, timeout=60, check=True
        ).stdout.strip()
        wait_ready(port, process=service, timeout=10)
    finally:
        service.terminate()
        service.wait(timeout=20)
    check = [*VERIFIER, "check", token, *counter, "--json"]
    checked = subprocess.run(check, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["decision"] == "accepted"
