"""The container image as the Dockerfile describes it (no Docker engine runs here, so the file is read):
two stages, the first building the wheel exactly as tests/test_packaging.py builds and runs it; the second
installing only the built wheels, pinned, without a network, and running as an unprivileged user with a
health check on /readyz — the health check's own command is run against a real service. The build
context lets in the package's sources and nothing else."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import wait_ready
from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]
PINS_FILE = "image-requirements.txt"


@dataclass(frozen=True)
class Instruction:
    """One Dockerfile instruction, its continuation lines joined."""

    name: str
    value: str


@dataclass(frozen=True)
class Stage:
    """One stage of a multi-stage Dockerfile: its FROM line and what follows it."""

    base: str
    alias: str | None
    instructions: tuple[Instruction, ...]

    def all(self, name: str) -> list[str]:
        """The values of every instruction called ``name``."""
        return [i.value for i in self.instructions if i.name == name]

    def env(self) -> dict[str, str]:
        """The variables its ENV lines set (``ENV A=1 B=2`` form)."""
        return dict(pair.split("=", 1) for value in self.all("ENV") for pair in shlex.split(value))


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """The build arguments declared before the first FROM (with their defaults) and the stages."""
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    instructions = [Instruction(*line.strip().split(None, 1)) for line in joined.splitlines() if line.strip()]
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions:
        if instruction.name == "FROM":
            base, _, alias = instruction.value.partition(" AS ")
            stages.append(Stage(base.strip(), alias.strip() or None, ()))
        elif stages:
            last = stages[-1]
            stages[-1] = Stage(last.base, last.alias, (*last.instructions, instruction))
        elif instruction.name == "ARG":
            name, _, default = instruction.value.partition("=")
            args[name] = default
    return args, stages


def dockerfile() -> tuple[dict[str, str], list[Stage]]:
    """The project's Dockerfile, parsed."""
    return parse_dockerfile((ROOT / "Dockerfile").read_text(encoding="utf-8"))


def healthcheck_command() -> list[str]:
    """The final stage's HEALTHCHECK command (exec form)."""
    (value,) = dockerfile()[1][-1].all("HEALTHCHECK")
    options, _, command = value.partition("CMD ")
    assert "--interval=" in options
    assert "--timeout=" in options
    exec_form: list[str] = json.loads(command)
    return exec_form


def test_two_stages_on_one_pinned_base() -> None:
    """A build stage and the image, both from the same slim Python 3.11 base, named by one build argument."""
    args, stages = dockerfile()
    assert [s.alias for s in stages] == ["build", None]
    assert {s.base for s in stages} == {"${PYTHON_IMAGE}"}
    assert re.fullmatch(r"python:3\.11(\.\d+)?-slim-\w+", args["PYTHON_IMAGE"])


def test_the_build_stage_builds_the_wheel_as_the_wheel_test_does() -> None:
    """`pip wheel . --no-deps` (tests/test_packaging.py builds the wheel so, installs it alone into an empty
    environment and runs demo and serve from it) over exactly what the wheel is made of: pyproject.toml's
    only-include folders and its readme."""
    build = dockerfile()[1][0]
    runs = [shlex.split(run) for run in build.all("RUN")]
    assert ["python", "-m", "pip", "wheel", ".", "--no-deps", "--wheel-dir", "/wheels"] in runs
    packaging_test = (ROOT / "tests" / "test_packaging.py").read_text(encoding="utf-8")
    assert '"pip", "wheel", ROOT, "--no-deps"' in packaging_test
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wheel_sources = {
        *project["tool"]["hatch"]["build"]["targets"]["wheel"]["only-include"],
        project["project"]["readme"],
    }
    copied = {source for value in build.all("COPY") for source in shlex.split(value)[:-1]}
    assert wheel_sources | {"pyproject.toml"} <= copied


def test_the_image_installs_only_the_built_wheels_and_checks_them() -> None:
    """The image's one install: the wheels of the build stage (a mount, not a layer), no index, no dependency
    resolution, then `pip check` — so nothing comes from the network and a missing pin fails the build."""
    build, image = dockerfile()[1]
    assert ["python", "-m", "pip", "wheel", "--no-deps", "--wheel-dir", "/wheels", "--requirement", PINS_FILE] in [
        shlex.split(run) for run in build.all("RUN")
    ]
    installs = [run for run in image.all("RUN") if "pip" in run]
    assert len(installs) == 1
    words = shlex.split(installs[0])
    assert words[0] == "--mount=type=bind,from=build,source=/wheels,target=/wheels"
    assert words[1:8] == ["python", "-m", "pip", "install", "--no-index", "--no-deps", "/wheels/*.whl"]
    assert words[8:] == ["&&", "python", "-m", "pip", "check"]
    assert not image.all("ADD")
    assert not [c for c in image.all("COPY") if "--from=build" not in c]  # no sources in the image


def test_the_image_runs_the_service_as_an_unprivileged_user() -> None:
    """The last USER is not root and comes after every RUN; its one writable folder is the state folder,
    which VERIFIER_STATE_DIR names; the service listens on every interface of the container; the entry
    point is the installed command, which starts nothing but the service."""
    image = dockerfile()[1][-1]
    names = [i.name for i in image.instructions]
    (user,) = image.all("USER")
    assert user.split(":")[0] not in ("root", "0")
    assert names.index("USER") > max(i for i, name in enumerate(names) if name == "RUN")
    (add_user,) = [run for run in image.all("RUN") if "useradd" in run]
    assert re.search(rf"--uid 10001 .*\b{user.split(':')[0]}\b", add_user)
    assert "chown verifier:verifier /state" in add_user
    env = image.env()
    assert env["VERIFIER_STATE_DIR"] == "/state"
    assert env["VERIFIER_HOST"] == "0.0.0.0"  # noqa: S104 - inside the container, published by compose
    assert image.all("EXPOSE") == [env["VERIFIER_PORT"]]
    assert [json.loads(v) for v in image.all("ENTRYPOINT")] == [["verifier"]]
    assert [json.loads(v) for v in image.all("CMD")] == [["serve"]]


def _wait_answering(port: int, timeout: float = 30) -> None:
    """Wait until the service on ``port`` answers GET /readyz at all, ready or not."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    pytest.fail(f"nothing answered on port {port}")


def _health(port: int) -> int:
    """The exit code of the image's health check against ``port`` (the image's python is this one)."""
    command = healthcheck_command()
    assert command[0] == "python"
    done = subprocess.run(
        [sys.executable, *command[1:]],
        env={"VERIFIER_PORT": str(port), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        timeout=30,
        check=False,
    )
    return done.returncode


def test_the_health_check_is_readiness(tmp_path: Path) -> None:
    """The health check asks GET /readyz on VERIFIER_PORT: 0 for a ready service; 1 for one that runs but is
    not ready (its Redis cannot be reached: 503) and for none at all."""
    assert "/readyz" in healthcheck_command()[-1]
    env = {"VERIFIER_STATE_DIR": str(tmp_path / "state"), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "verifier", "issuer", "jwks"], env=env, capture_output=True, check=True)
    ready, unready = free_port(), free_port()
    serve = [sys.executable, "-m", "verifier", "serve"]
    processes = [
        subprocess.Popen([*serve, "--port", str(ready)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT),
        subprocess.Popen(
            [*serve, "--port", str(unready), "--redis-url", f"redis://127.0.0.1:{free_port()}/0"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        ),
    ]
    try:
        wait_ready(ready)
        _wait_answering(unready)
        assert _health(ready) == 0
        assert _health(unready) == 1
    finally:
        for process in processes:
            process.terminate()
            process.wait(timeout=20)
    assert _health(ready) == 1


def _dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    """.dockerignore's patterns, in order: (excludes, pattern). ``*`` stays within one folder, ``**`` does not."""
    patterns = []
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keep = line.startswith("!")
        glob = line.removeprefix("!").strip("/")
        regex = re.escape(glob).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
        patterns.append((not keep, re.compile(regex)))
    return patterns


def _in_context(path: str) -> bool:
    """Whether Docker sends ``path`` with the build context: the last pattern matching it or a folder above
    it decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for excludes, pattern in _dockerignore():
        if any(pattern.fullmatch(prefix) for prefix in prefixes):
            excluded = excludes
    return not excluded


def test_the_build_context_is_the_package_and_nothing_else() -> None:
    """Every file the wheel is made of goes into the build context; state, secrets, tests, the git history
    and caches do not."""
    sources = [
        p.relative_to(ROOT).as_posix()
        for folder in ("verifier", "data", "schemas")
        for p in (ROOT / folder).rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    ]
    assert len(sources) > 50
    assert [f for f in [*sources, "pyproject.toml", "README.md", PINS_FILE] if not _in_context(f)] == []
    kept_out = [
        "secrets/verifier-secret",
        ".verifier/keys.json",
        "tests/test_packaging.py",
        ".git/HEAD",
        "docker-compose.yml",
        "verifier/__pycache__/main.cpython-311.pyc",
        "verifier/cli/__pycache__/x.pyc",
        "dist/cy_licence_verifier-0.1.0-py3-none-any.whl",
    ]
    assert [f for f in kept_out if _in_context(f)] == []


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / PINS_FILE).read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            assert version, f"{line!r} is not pinned with =="
            assert canonicalize_name(name) not in pins, f"{name} is pinned twice"
            pins[canonicalize_name(name)] = version
    return pins


def _needed(requirement: Requirement, extras: set[str]) -> bool:
    """Whether ``requirement`` applies on the image (CPython 3.11 on Linux) for one of ``extras``."""
    if requirement.marker is None:
        return True
    environment = {name: str(value) for name, value in default_environment().items()}
    return any(requirement.marker.evaluate({**environment, "extra": extra}) for extra in {"", *extras})


def test_every_dependency_the_image_installs_is_pinned() -> None:
    """image-requirements.txt pins every distribution pyproject.toml requires, to a version its range
    allows, and, as far as the distributions installed here tell, everything they require in turn."""
    pins = _pins()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    wanted = [Requirement(r) for r in project["project"]["dependencies"]]
    wanted = [r for r in wanted if _needed(r, set())]
    seen: set[tuple[str, ...]] = set()
    while wanted:
        requirement = wanted.pop()
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is installed by the image but not pinned in {PINS_FILE}"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} vs {requirement}"
        if (name, *sorted(requirement.extras)) in seen:
            continue
        seen.add((name, *sorted(requirement.extras)))
        try:
            installed = distribution(name)
        except PackageNotFoundError:
            continue
        for line in installed.requires or []:
            inner = Requirement(line)
            if _needed(inner, set(requirement.extras)):
                assert canonicalize_name(inner.name) in pins, f"{name} needs {inner}: pin it in {PINS_FILE}"
                if installed.version == pins[name]:
                    wanted.append(inner)
