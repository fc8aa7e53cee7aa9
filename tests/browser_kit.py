"""What the browser tests need besides their fixtures: the app served from a thread, Chromium's
flags, signing in and scanning the way a clerk does, screenshots, and a fake camera's feed."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import segno
from aiohttp import web

from tests.scenes import Scene
from verifier.web.server import ProblemRunner

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

CHROMIUM = Path("/usr/bin/chromium")
# As this machine needs them: no sandbox as root, and nothing that reaches for the network.
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@contextmanager
def served(app: web.Application) -> Iterator[str]:
    """Serve ``app`` on a free loopback port from a thread with its own event loop; yield its URL."""
    loop = asyncio.new_event_loop()
    runner = ProblemRunner(app, access_log=None)
    ready: list[int] = []
    started = threading.Event()

    async def start() -> None:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        ready.append(int(runner.addresses[0][1]))

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    if not started.wait(20):
        raise RuntimeError("the app did not start")
    try:
        yield f"http://127.0.0.1:{ready[0]}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def shot(tab: Page, name: str, *, full_page: bool = False) -> Path:
    """Save a screenshot as a test artefact."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    tab.screenshot(path=str(path), full_page=full_page)
    return path


def key_of(scene: Scene, principal: str) -> str:
    """The bare API key of a counter (or the administrator)."""
    return scene.auth(principal)["Authorization"].removeprefix("Bearer ")


def sign_in_console(tab: Page, scene: Scene, counter: str) -> None:
    """Open the console and sign in the way a clerk does: type the key, press Enter."""
    tab.goto("/console")
    tab.fill("#key", key_of(scene, counter))
    tab.press("#key", "Enter")
    tab.wait_for_selector("#desk:not([hidden])")


def scan(tab: Page, token: str, *, key_by_key: bool = False) -> Locator:
    """Put a token into the focused field (key by key, as a USB scanner types, if asked), press Enter,
    and wait for the decision."""
    field = tab.locator("#token")
    if key_by_key:
        field.press_sequentially(token)
    else:
        field.fill(token)
    field.press("Enter")
    result = tab.locator("#result.accepted, #result.rejected, #result.unavailable, #result.notice")
    result.wait_for()
    return tab.locator("#result")


def camera_feed(token: str, path: Path) -> Path:
    """A Y4M video of the token's QR code on white, for Chromium's fake camera."""
    from PIL import Image

    qr = segno.make(token, error="m")
    buffer = io.BytesIO()
    qr.save(buffer, kind="png", scale=5, border=4)
    code = Image.open(buffer).convert("L")
    frame = Image.new("L", (640, 480), 255)
    frame.paste(code.resize((420, 420)), (110, 30))
    chroma = bytes([128]) * (320 * 240 * 2)
    path.write_bytes(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n" + b"FRAME\n" + frame.tobytes() + chroma)
    return path
