"""Where the service's log lines go: standard output, written in batches.

Every scan logs one JSON line. Writing and flushing each line costs a system call per scan, so the
handler keeps lines in memory and writes them together: when ``max_lines`` are waiting, every
``interval`` seconds from a background thread, and when logging shuts down (aiohttp turns SIGINT and
SIGTERM into a clean exit, so nothing waiting is lost on a normal stop).

The scan lines themselves (:data:`scan_lines`) skip the logging machinery once :func:`configure` has set
the handler up: they go straight into its batch, since a LogRecord per scan costs more than the rest
of the line. Without configure() (tests, an embedding program) they are ordinary ``verifier.scan`` records.
"""

from __future__ import annotations

import logging
import sys
import threading
from typing import TextIO


class BatchingHandler(logging.Handler):
    """A stream handler that writes its lines in batches."""

    def __init__(self, stream: TextIO | None = None, *, interval: float = 0.2, max_lines: int = 256) -> None:
        super().__init__()
        self.stream = stream or sys.stdout
        self._lines: list[str] = []
        self._max_lines = max_lines
        self._stop = threading.Event()
        self._flusher = threading.Thread(target=self._run, args=(interval,), name="log-flusher", daemon=True)
        self._flusher.start()

    def emit(self, record: logging.LogRecord) -> None:
        """Queue one formatted line (``handle`` holds the lock)."""
        try:
            self.add_line(self.format(record))
        except Exception:  # logging never breaks a scan, as with StreamHandler
            self.handleError(record)

    def add_line(self, line: str) -> None:
        """Queue a line as it is, without a LogRecord."""
        with self.lock:  # type: ignore[union-attr]
            self._lines.append(line)
            if len(self._lines) >= self._max_lines:
                self._write()

    def _write(self) -> None:
        if self._lines:
            text = "\n".join(self._lines) + "\n"
            self._lines.clear()
            self.stream.write(text)
            self.stream.flush()

    def flush(self) -> None:
        """Write every waiting line now."""
        with self.lock:  # type: ignore[union-attr]
            self._write()

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            try:
                self.flush()
            except (OSError, ValueError):  # stdout closed under us: keep lines for the final flush
                continue

    def close(self) -> None:
        """Stop the flusher and write what is left."""
        self._stop.set()
        self.flush()
        super().close()


class LineSink:
    """Where one kind of line goes: a logger's INFO records, or straight into a batching handler."""

    def __init__(self, logger: logging.Logger) -> None:
        self._logger = logger
        self._batch: BatchingHandler | None = None

    @property
    def enabled(self) -> bool:
        """Whether a line written now goes anywhere."""
        return self._batch is not None or self._logger.isEnabledFor(logging.INFO)

    def write(self, line: str) -> None:
        """One line (already JSON)."""
        if self._batch is not None:
            self._batch.add_line(line)
        else:
            self._logger.info(line)

    def batch_into(self, handler: BatchingHandler | None) -> None:
        """Send lines straight into ``handler`` (None: through the logger again)."""
        self._batch = handler


scan_lines = LineSink(logging.getLogger("verifier.scan"))


def configure(level: str) -> None:
    """Log lines as they are (each is already JSON or a plain message) to standard output, in batches.
    Records need no thread or process names, nor the file and line that logged them (the logging
    HOWTO's "Optimization": ``_srcfile = None`` skips a walk up the stack per line), so none is looked up."""
    logging._srcfile = None  # noqa: SLF001  (the stdlib's documented switch, see the docstring)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = BatchingHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    logging.basicConfig(level=getattr(logging, level.upper()), handlers=[handler])
    direct = handler in logging.getLogger().handlers and logging.getLogger("verifier.scan").isEnabledFor(logging.INFO)
    scan_lines.batch_into(handler if direct else None)
