"""The folders are the architecture: imports run one way, handlers go through the service, and the
exceptions form one documented tree."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import verifier
import verifier.errors
from verifier.errors import VerifierError

ROOT = Path(__file__).resolve().parents[1]


def test_imports_run_one_way() -> None:
    """import-linter's contracts in pyproject.toml hold: core <- service <- adapters <- web <- issuer <- bench
    <- cli, and neither the core nor the service imports aiohttp or redis."""
    lint = shutil.which("lint-imports")
    assert lint is not None, "import-linter is a test dependency: pip install -e '.[test]'"
    done = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 kept, 0 broken" in done.stdout


def test_importing_the_core_loads_nothing_of_the_other_layers() -> None:
    """A fresh interpreter that imports every core module has loaded no module of the service, adapters,
    web, issuer, cli or bench, nor aiohttp or redis: the package's own __init__ pulls nothing in."""
    core = sorted(p.stem for p in (ROOT / "verifier" / "core").glob("*.py") if p.stem != "__init__")
    script = (
        "import sys\n"
        + "".join(f"import verifier.core.{name}\n" for name in core)
        + "print('\\n'.join(sorted(m for m in sys.modules if m.startswith(('verifier.', 'aiohttp', 'redis')))))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    loaded = set(done.stdout.split())
    assert loaded == {"verifier.errors", "verifier.core", *(f"verifier.core.{name}" for name in core)}


def test_handlers_ask_the_service_not_its_collaborators() -> None:
    """No module of the web shell reaches through the service to its store or trust source."""
    reaching = re.compile(r"SERVICE\]\s*\.\s*(store|trust)\b|\bservice\s*\.\s*(store|trust)\b")
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "verifier" / "web").glob("*.py"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if reaching.search(line)
    ]
    assert offenders == []


def _leaves(cls: type[VerifierError]) -> list[type[VerifierError]]:
    subclasses = cls.__subclasses__()
    return [cls] + [leaf for sub in subclasses for leaf in _leaves(sub)]


def test_one_exception_tree_with_stable_codes() -> None:
    """Every exception of the package descends from VerifierError, is named …Error, carries a code of its
    own, and is drawn in the tree of verifier.errors' docstring."""
    import verifier.web.problems  # ProblemError lives beside the web shell: load it so it is counted

    tree = verifier.errors.__doc__ or ""
    classes = _leaves(VerifierError)
    assert len(classes) >= 8
    codes = [cls.code for cls in classes]
    assert len(set(codes)) == len(codes), codes
    for cls in classes:
        assert cls.__name__.endswith("Error"), cls
        assert re.fullmatch(r"[A-Z][A-Z_]+", cls.code), cls
        assert re.search(rf"\b{cls.__name__}\s+{cls.code}\b", tree), f"{cls.__name__} is not in the tree"


@pytest.mark.parametrize("package", ["core", "service", "adapters", "web", "issuer", "cli", "bench"])
def test_every_role_has_its_folder_and_its_tests(package: str) -> None:
    """Each role is a subpackage of verifier/, and the tests mirror it."""
    assert (Path(verifier.__file__).parent / package / "__init__.py").is_file()
    assert list((ROOT / "tests" / package).glob("test_*.py")), f"tests/{package}/ has no tests"
