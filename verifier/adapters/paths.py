"""Where the package finds its data and keeps its local state.

The rule files and JSON Schemas live once, in the checkout's top-level ``data/`` and ``schemas/``.
A wheel carries them inside the package as ``verifier/_data`` and ``verifier/_schemas``
(pyproject.toml, ``[tool.hatch.build.targets.wheel]``); running from the checkout (an editable
install, or ``python -m verifier`` in it) finds the top-level folders instead.

Local state (generated keys, counter key hashes, the local trust list) is the user's, never the
package's or the checkout's: ``$VERIFIER_STATE_DIR``, else ``$XDG_STATE_HOME/cy-licence-verifier``,
else ``~/.local/state/cy-licence-verifier``.

A folder named on the command line (``verifier serve --data-dir``, ``--state-dir``) wins over the
environment for the rest of the process: :func:`choose_folders`.
"""

from __future__ import annotations

import os
import secrets
from importlib.resources import files
from pathlib import Path

STATE_FOLDER = "cy-licence-verifier"

# The checkout's root when the package runs from one (verifier/adapters/paths.py is two levels down).
_CHECKOUT = Path(__file__).resolve().parents[2]

# Folders chosen on the command line, by name ("data", "state"). One process serves one deployment, and
# the data and state are read from many places (keys, API keys, the secret, the catalogue): they all ask here.
_chosen: dict[str, Path] = {}


def choose_folders(*, data: str | os.PathLike[str] | None = None, state: str | os.PathLike[str] | None = None) -> None:
    """Use ``data`` and ``state`` (when given) instead of what the environment says, in this process."""
    for name, folder in (("data", data), ("state", state)):
        if folder:
            _chosen[name] = Path(folder)


def _packaged(name: str, checkout_name: str) -> Path:
    """The folder ``verifier/<name>`` the wheel installed, else the checkout's ``<checkout_name>/``.

    Callers read these with ``Path`` APIs and hand them to jsonschema, so this returns a ``Path``. That
    is sound: pip unpacks a wheel into site-packages as real files, so the package's resources are a
    real directory and ``str()`` of the resource is its filesystem path. (A package imported from a
    zip file would not be; this project is never installed that way.)"""
    packaged = files("verifier") / name
    if packaged.is_dir():
        return Path(str(packaged))
    return _CHECKOUT / checkout_name


def data_dir() -> Path:
    """The folder chosen on the command line, else ``$VERIFIER_DATA_DIR``, else the installed package's
    data, else the checkout's ``data/``."""
    if "data" in _chosen:
        return _chosen["data"]
    override = os.environ.get("VERIFIER_DATA_DIR")
    return Path(override) if override else _packaged("_data", "data")


def schema_dir() -> Path:
    """The installed package's JSON Schemas and OpenAPI document, else the checkout's ``schemas/``."""
    return _packaged("_schemas", "schemas")


def state_dir() -> Path:
    """The folder chosen on the command line, else ``$VERIFIER_STATE_DIR``, else
    ``$XDG_STATE_HOME/cy-licence-verifier``, else
    ``~/.local/state/cy-licence-verifier``: generated keys, the local trust list and counter key
    hashes. Never inside the installed package nor the checkout; private keys never leave it. The
    XDG base directory specification says a relative ``$XDG_STATE_HOME`` is invalid: it is ignored."""
    if "state" in _chosen:
        return _chosen["state"]
    override = os.environ.get("VERIFIER_STATE_DIR")
    if override:
        return Path(override)
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / STATE_FOLDER
    return Path.home() / ".local" / "state" / STATE_FOLDER


def write_atomic(path: Path, data: bytes, mode: int) -> None:
    """Write ``data`` to ``path`` with permissions ``mode``: to a temporary name, synced, then renamed into
    place, so a reader (another process, or this one after a crash) never sees half a file."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
