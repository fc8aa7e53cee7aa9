"""The deployment secret that keys every licence and holder identity (:mod:`verifier.core.identity`).

Every instance of one deployment must read the same secret: give each the same file (``--secret-file`` or
``VERIFIER_SECRET_FILE``, for example a mounted container secret). Without one, the secret is the state
folder's ``secret`` file, made on first use — enough for one host (every worker of ``verifier serve``
reads it). Rotating it: see README, *The deployment secret*.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from verifier.adapters.paths import state_dir

SECRET_BYTES = 32


def secret_path(secret_file: str | os.PathLike[str] | None = None) -> Path:
    """The file the secret is read from: the given one, ``$VERIFIER_SECRET_FILE``, or the state folder's."""
    chosen = secret_file or os.environ.get("VERIFIER_SECRET_FILE")
    return Path(chosen) if chosen else state_dir() / "secret"


def load_secret(secret_file: str | os.PathLike[str] | None = None) -> bytes:
    """The secret's bytes. A named file must exist and hold at least 32 bytes (whitespace at the ends is
    ignored, so ``openssl rand -hex 32 > file`` works); the state folder's is created once, readable by
    its owner only. Raises OSError or ValueError with the path."""
    named = secret_file or os.environ.get("VERIFIER_SECRET_FILE")
    path = secret_path(secret_file)
    if not named and not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # O_EXCL: two workers starting at once agree on one secret
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(secrets.token_hex(SECRET_BYTES) + "\n")
    raw = path.read_bytes().strip()
    if len(raw) < SECRET_BYTES:
        raise ValueError(f"{path}: the deployment secret must hold at least {SECRET_BYTES} bytes / 部署密钥过短")
    return raw
