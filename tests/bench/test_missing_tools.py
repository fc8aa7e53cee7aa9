"""``verifier bench`` never installs system packages: without wrk or redis-server it names the Debian
package to install and exits 2, before it starts anything."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from verifier.bench import procs
from verifier.bench.run import run_bench
from verifier.cli.main import main
from verifier.errors import UsageError

_PACKAGE_MANAGERS = ("apt-get", "apt", "aptitude", "dpkg", "sudo")


@pytest.mark.parametrize("missing", [["wrk"], ["redis-server"], ["wrk", "redis-server"]])
def test_a_missing_program_is_named_with_its_package(
    missing: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In process: with the programs in ``missing`` not found, `verifier bench` exits 2, prints how to
    install each of them (and only them), and runs no process at all."""
    started: list[Any] = []

    def which(name: str, *args: Any, **kwargs: Any) -> str | None:
        return None if name in missing else f"/usr/bin/{name}"

    def no_process(*args: Any, **kwargs: Any) -> Any:
        started.append(args)
        raise AssertionError(f"a process was started: {args}")

    monkeypatch.setattr(shutil, "which", which)
    monkeypatch.setattr(subprocess, "Popen", no_process)
    monkeypatch.setattr(subprocess, "run", no_process)
    monkeypatch.setattr(os, "system", no_process)

    assert main(["bench", "--seconds", "1", "--rounds", "1"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert started == []
    for name in ("wrk", "redis-server"):
        assert (f"apt-get install {name}\n" in err + "\n") is (name in missing), err
    assert "never installs system packages" in err
    assert "从不自行安装系统软件包" in err


def test_run_bench_raises_before_starting_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    """As a library call, run_bench raises a UsageError saying what to install."""
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    with pytest.raises(UsageError) as raised:
        run_bench(1.0, rounds=1)
    assert "apt-get install wrk\n" in str(raised.value)
    assert "apt-get install redis-server\n" in str(raised.value)


def test_without_either_program_on_path_nothing_is_installed(tmp_path: Path) -> None:
    """The real command with a PATH that holds only python and package managers that leave a mark if
    they are run: exit 2, both packages named, no package manager ever started."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(sys.executable)
    marks = tmp_path / "marks"
    for name in _PACKAGE_MANAGERS:
        fake = bin_dir / name
        fake.write_text(f'#!/bin/sh\necho "{name} $*" >> {marks}\nexit 1\n')
        fake.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k != "VERIFIER_STATE_DIR"}
    env["PATH"] = str(bin_dir)
    done = subprocess.run(
        [sys.executable, "-m", "verifier", "bench", "--seconds", "1", "--rounds", "1", "--memory-scans", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert "  wrk (the load generator / 负载生成器): apt-get install wrk\n" in done.stderr
    assert "  redis-server (the bench's own Redis / 压测专用的 Redis): apt-get install redis-server\n" in done.stderr
    assert not marks.exists(), marks.read_text()


def test_the_programs_found_are_returned(monkeypatch: pytest.MonkeyPatch) -> None:
    """With both on PATH, their paths."""
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: f"/opt/bin/{name}")
    assert procs.find_tools() == {"wrk": "/opt/bin/wrk", "redis-server": "/opt/bin/redis-server"}
