"""Reloading the rules (``data/``) while the service runs: on ``SIGHUP``, or ``POST /v1/admin/reload`` with
the administrator's key. No restart, no scan refused.

The files are read and validated in full first (:func:`verifier.adapters.catalogue_files.load_catalogue`);
only a catalogue that passes replaces the one in use, in one reference swap
(:meth:`verifier.service.scan.ScanService.replace_catalogue`), so a scan under way finishes on the rules
it started with and the next one is decided by the new rules. A bad edit changes nothing: it is logged
(and answered, at the endpoint) with the file, the entry and the field of each problem, and the rules
in use stay.

With ``--workers N`` each worker process holds its own catalogue: the master forwards ``SIGHUP`` to every
worker (verifier.cli.service), and a worker that took the endpoint's request reloads at once and passes
``SIGHUP`` on to its master, so the others follow.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from verifier.adapters.catalogue_files import load_catalogue
from verifier.core.catalogue import Catalogue
from verifier.errors import CatalogueError
from verifier.service.scan import ScanService
from verifier.web import appkeys
from verifier.web.edge import json_response, require_admin
from verifier.web.problems import ProblemError

log = logging.getLogger("verifier")

REFUSED_ZH, REFUSED_EN = "data/ 有误，继续使用原有规则", "data/ is invalid; the rules in use stay"
REFUSED = f"{REFUSED_ZH} / {REFUSED_EN}"


class RulesReloader:
    """Reads ``data/`` again and, if it is valid, hands it to the scan service; one reload at a time."""

    def __init__(self, service: ScanService, directory: Path | None) -> None:
        self._service = service
        self._directory = directory  # None: VERIFIER_DATA_DIR, else the packaged data (verifier.adapters.paths)
        self._lock = asyncio.Lock()
        self.master: int | None = None  # the process that started this worker (verifier serve --workers N)

    async def reload(self, trigger: str) -> Catalogue:
        """Load and validate the rules and swap them in; :class:`verifier.errors.CatalogueError` (logged,
        nothing changed) when they are invalid."""
        async with self._lock:
            try:
                catalogue = await asyncio.to_thread(load_catalogue, self._directory)
            except CatalogueError as exc:
                refused = {"event": "rules_reload_refused", "trigger": trigger, "pid": os.getpid(), "message": REFUSED}
                log.error(json.dumps({**refused, "problems": exc.problems}, ensure_ascii=False))
                raise
            self._service.replace_catalogue(catalogue)
            reloaded = {"event": "rules_reloaded", "trigger": trigger, "pid": os.getpid(), **_counts(catalogue)}
            log.info(json.dumps(reloaded))
            return catalogue

    async def on_signal(self) -> None:
        """SIGHUP: reload; a bad edit is logged by :meth:`reload` and changes nothing."""
        try:
            await self.reload("SIGHUP")
        except CatalogueError:
            pass  # logged, with every problem; the rules in use stay
        except Exception:  # a fault of the reload itself must not end the process either
            log.exception("the rules could not be reloaded")


def _counts(catalogue: Catalogue) -> dict[str, int]:
    return {
        "licence_types": len(catalogue.licences),
        "scenarios": len(catalogue.scenarios),
        "institutions": len(catalogue.institutions),
        "counters": len(catalogue.counters),
    }


async def post_reload(request: web.Request) -> web.Response:
    """POST /v1/admin/reload: read ``data/`` again; 422 naming each problem when it is invalid."""
    require_admin(request)
    reloader = request.app[appkeys.RELOADER]
    try:
        catalogue = await reloader.reload("endpoint")
    except CatalogueError as exc:
        raise ProblemError(422, REFUSED_ZH, REFUSED_EN, problems=exc.problems) from None
    if reloader.master is not None:
        os.kill(reloader.master, signal.SIGHUP)  # the master forwards it to every worker, this one included
    return json_response({"reloaded": True, **_counts(catalogue)})


def add_routes(app: web.Application) -> None:
    """The reload endpoint."""
    app.router.add_post("/v1/admin/reload", post_reload)


def reload_on_sighup(app: web.Application, *, master: int | None = None) -> None:
    """Reload the rules on ``SIGHUP`` while ``app`` runs (``verifier serve``; tests leave the signal alone).
    ``master``: the pid of the process that started this worker, told of reloads made at the endpoint."""

    async def sighup_ctx(app: web.Application) -> AsyncIterator[None]:
        reloader = app[appkeys.RELOADER]
        reloader.master = master
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[None]] = set()

        def on_sighup() -> None:
            task = loop.create_task(reloader.on_signal())
            tasks.add(task)  # held until done: the loop keeps only weak references to tasks
            task.add_done_callback(tasks.discard)

        loop.add_signal_handler(signal.SIGHUP, on_sighup)
        yield
        loop.remove_signal_handler(signal.SIGHUP)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a SIGHUP while shutting down is not a reason to die

    app.cleanup_ctx.append(sighup_ctx)
