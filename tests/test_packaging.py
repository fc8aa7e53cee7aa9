"""The wheel runs anywhere: it carries data/, schemas/ and the static files; installed into a fresh
virtual environment outside the checkout, `verifier demo` and `verifier serve` work, and local state
lands in the user's state folder, never in site-packages.

The wheel is built once per module (``pip wheel``; hatchling comes through build isolation, or from
this environment when it has it, which needs no network). The virtual environment has no pip and no
system site-packages: the outer pip installs the wheel into it with ``--python``, then a ``.pth`` file
adds this environment's site-packages as plain path entries for the runtime dependencies. Plain
entries, not site directories: the ``.pth`` files inside them, among them the editable install's,
are not processed, so the checkout never gets onto the venv's ``sys.path``."""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
import json
import os
import site
import subprocess
import sys
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import wait_ready
from tests.redis_server import free_port
from verifier.adapters import paths

ROOT = Path(__file__).resolve().parents[1]
STATE_FILES = ("keys.json", "jwks.json", "api-keys.json")


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and "__pycache__" not in p.parts}


def _run(args: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 180) -> str:
    """Run a command to completion; its standard output, or a failure showing both streams."""
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert done.returncode == 0, f"{args} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout.strip()


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built as a user builds it."""
    out = tmp_path_factory.mktemp("wheel")
    args: list[str | Path] = [sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "-w", out]
    if importlib.util.find_spec("hatchling") is not None:
        args.append("--no-build-isolation")  # the backend is here already: no download needed
    _run(args, cwd=out)
    (built,) = out.glob("cy_licence_verifier-*.whl")
    return built


@dataclass(frozen=True)
class Installed:
    """The wheel installed into a fresh virtual environment outside the checkout."""

    venv: Path
    site_packages: Path
    work: Path  # an empty folder outside the checkout to run commands from

    @property
    def verifier(self) -> Path:
        return self.venv / "bin" / "verifier"

    def env(self, **extra: str) -> dict[str, str]:
        """This environment minus anything that would reach the checkout or its state, plus ``extra``."""
        dropped = ("PYTHONPATH", "PYTHONHOME", "PYTHONSAFEPATH", "VIRTUAL_ENV")
        env = {k: v for k, v in os.environ.items() if k not in dropped and not k.startswith(("VERIFIER_", "XDG_"))}
        return {**env, **extra}

    def run(self, *args: str, env: dict[str, str], timeout: float = 60) -> str:
        return _run([self.verifier, *args], env=env, cwd=self.work, timeout=timeout)


@pytest.fixture(scope="module")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("installed")
    assert not base.resolve().is_relative_to(ROOT), "the venv must live outside the checkout"
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=base)
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel], cwd=base)
    site_packages = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], cwd=base))
    outer = [*site.getsitepackages(), *([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]
    dependencies = [p for p in outer if Path(p).is_dir() and not Path(p).resolve().is_relative_to(ROOT)]
    (site_packages / "_outer_dependencies.pth").write_text("\n".join(dependencies) + "\n", encoding="utf-8")
    work = base / "work"
    work.mkdir()
    return Installed(venv, site_packages, work)


def test_the_wheel_carries_data_schemas_and_static_files(wheel: Path) -> None:
    """Every file of data/ and schemas/ is in the wheel under verifier/_data and verifier/_schemas, the
    static files (jsQR's licence too) under verifier/web/static; the checkout keeps no copies in verifier/."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    static = ROOT / "verifier" / "web" / "static"
    expected = {
        **{f"verifier/_data/{n}": ROOT / "data" / n for n in _files(ROOT / "data")},
        **{f"verifier/_schemas/{n}": ROOT / "schemas" / n for n in _files(ROOT / "schemas")},
        **{f"verifier/web/static/{n}": static / n for n in _files(static)},
    }
    assert "verifier/_data/scenarios.toml" in expected
    assert "verifier/_schemas/openapi.json" in expected
    assert "verifier/web/static/vendor/jsqr/LICENSE" in expected
    assert sorted(set(expected) - names) == []
    assert {n for n in names if n.startswith(("verifier/_data/", "verifier/_schemas/"))} <= set(expected)
    assert not [n for n in names if n.startswith(("data/", "schemas/", "tests/")) or n.endswith(".pyc")]
    assert not (ROOT / "verifier" / "_data").exists()
    assert not (ROOT / "verifier" / "_schemas").exists()


def test_the_wheel_declares_every_library_the_package_imports(wheel: Path) -> None:
    """Every third-party module that verifier/ imports comes from a distribution the wheel's metadata
    requires (the environment the wheel is tried in below lends the dependencies, so this is what a real
    install from an index would be missing)."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = (n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = archive.read(name).decode("utf-8")
    required = {
        canonicalize_name(Requirement(line.split(":", 1)[1]).name)
        for line in metadata.splitlines()
        if line.startswith("Requires-Dist:") and "extra ==" not in line
    }
    imported: set[str] = set()
    for source in (ROOT / "verifier").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"verifier"}
    providers = importlib.metadata.packages_distributions()
    missing = {
        m: providers.get(m) for m in third_party if not {canonicalize_name(d) for d in providers.get(m, [])} & required
    }
    assert missing == {}, f"imported but not required by the wheel: {missing}"


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Installed) -> None:
    """In the venv, ``verifier`` and its data and schemas come from site-packages; the checkout is not on
    ``sys.path``."""
    probe = (
        "import json, sys, verifier\n"
        "from verifier.adapters import paths\n"
        "print(json.dumps([verifier.__file__, str(paths.data_dir()), str(paths.schema_dir()), sys.path]))"
    )
    python = installed.venv / "bin" / "python"
    module, data, schemas, path = json.loads(_run([python, "-c", probe], env=installed.env(), cwd=installed.work))
    package = installed.site_packages / "verifier"
    assert Path(module) == package / "__init__.py"
    assert Path(data) == package / "_data"
    assert Path(schemas) == package / "_schemas"
    assert (Path(data) / "scenarios.toml").is_file()
    assert (Path(schemas) / "openapi.json").is_file()
    assert [p for p in path if p and Path(p).resolve().is_relative_to(ROOT)] == []


def test_demo_runs_from_the_wheel(installed: Installed, tmp_path: Path) -> None:
    """`verifier demo` tells its story from the installed data."""
    output = installed.run("demo", env=installed.env(VERIFIER_STATE_DIR=str(tmp_path / "state")))
    assert "通过 accepted" in output
    assert "不通过 rejected" in output
    assert "REPLAYED" in output
    assert "11 scans, 5 accepted, 6 rejected, 2 re-scans" in output  # every answer, re-scans included


def test_serve_from_the_wheel_accepts_a_scan(installed: Installed, tmp_path: Path) -> None:
    """`verifier serve` from the venv, run from a folder of its own, accepts a scan with a counter key and
    a token from the installed commands; it stops cleanly on SIGTERM, and the state is in VERIFIER_STATE_DIR."""
    state = tmp_path / "state"
    env = installed.env(VERIFIER_STATE_DIR=str(state))
    port = free_port()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    process = subprocess.Popen(
        [installed.verifier, "serve", "--port", str(port)],
        env=env,
        cwd=elsewhere,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        key = installed.run("counters", "key", "cq-notary-zhixin-01", env=env)
        token = installed.run(
            "issuer", "mint", "--type", "driving-licence", "--province", "SC", "--channel", "jiaoguan-12123", env=env
        )
        wait_ready(port, process=process)  # the service reads the keys the issuer just published
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/scans",
            data=json.dumps({"token": token, "scenario": "notary-driving-licence"}).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback test server
            answer = json.loads(response.read())
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=20)
    assert answer["decision"] == "accepted", answer
    assert process.returncode == 0, output[-3000:]
    assert "verifier listening" in output
    assert sorted(name for name in STATE_FILES if (state / name).is_file()) == sorted(STATE_FILES)


def test_version_from_the_wheel(installed: Installed, wheel: Path) -> None:
    """`verifier --version` from the venv prints the version the wheel's metadata carries."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = (n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        (version,) = (line.split(":", 1)[1].strip() for line in archive.read(name).decode().splitlines()
                      if line.startswith("Version:"))  # fmt: skip
    assert installed.run("--version", env=installed.env()) == f"verifier {version}"


def test_state_defaults_to_the_users_state_folder(installed: Installed, tmp_path: Path) -> None:
    """Without VERIFIER_STATE_DIR or XDG_STATE_HOME the installed commands keep their keys in
    ``$HOME/.local/state/cy-licence-verifier``, never in site-packages or the current folder."""
    home = tmp_path / "home"
    home.mkdir()
    env = installed.env(HOME=str(home))
    installed.run("counters", "key", "cq-notary-zhixin-01", env=env)
    installed.run(
        "issuer", "mint", "--type", "driving-licence", "--province", "SC", "--channel", "jiaoguan-12123", env=env
    )
    state = home / ".local" / "state" / "cy-licence-verifier"
    assert sorted(name for name in STATE_FILES if (state / name).is_file()) == sorted(STATE_FILES)
    strays = [p for name in (*STATE_FILES, ".verifier") for p in installed.venv.rglob(name)]
    assert strays == []
    assert list(installed.work.iterdir()) == []


def test_state_folder_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """VERIFIER_STATE_DIR, else an absolute XDG_STATE_HOME, else ~/.local/state; a relative XDG_STATE_HOME is
    invalid (XDG base directory specification) and ignored."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("VERIFIER_STATE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert paths.state_dir() == tmp_path / "explicit"
    monkeypatch.delenv("VERIFIER_STATE_DIR")
    assert paths.state_dir() == tmp_path / "xdg" / "cy-licence-verifier"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")
    assert paths.state_dir() == tmp_path / "home" / ".local" / "state" / "cy-licence-verifier"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert paths.state_dir() == tmp_path / "home" / ".local" / "state" / "cy-licence-verifier"


def test_the_checkout_reads_its_own_folders(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Running from the checkout (editable install) reads the top-level data/ and schemas/;
    VERIFIER_DATA_DIR still overrides the data."""
    monkeypatch.delenv("VERIFIER_DATA_DIR", raising=False)
    assert paths.data_dir() == ROOT / "data"
    assert paths.schema_dir() == ROOT / "schemas"
    monkeypatch.setenv("VERIFIER_DATA_DIR", str(tmp_path))
    assert paths.data_dir() == tmp_path
