"""How the command line says what went wrong: one line on standard error, the command first, then the
problem and what to do in Chinese and in English; exit 2. Never a traceback for an operator's mistake."""

from __future__ import annotations

import errno
import re
import socket
import sys

from verifier.adapters.redis_urls import redacted
from verifier.errors import StoreMisconfiguredError, StoreUnavailableError

_CHINESE = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]")

# The operating system's words for what an operator meets most, in Chinese (strerror gives the English).
_OS_ZH = {
    errno.ENOENT: "不存在",
    errno.EACCES: "没有权限",
    errno.EPERM: "不允许",
    errno.ENOSPC: "磁盘已满",
    errno.EISDIR: "是一个文件夹",
    errno.ENOTDIR: "路径中有一段不是文件夹",
    errno.EROFS: "文件系统只读",
    errno.EEXIST: "已存在",
}


def says_chinese(text: str) -> bool:
    """Whether ``text`` has any Chinese in it."""
    return _CHINESE.search(text) is not None


def one_line(prog: str, message: str) -> str:
    """How every command-line error reads: the command, then the message (Chinese / English) on one line."""
    return f"{prog}: 错误 error: " + " ".join(message.split())


def fail(prog: str, message: str) -> int:
    """Print ``message`` as :func:`one_line` on standard error; the exit code of a usage error."""
    print(one_line(prog, message), file=sys.stderr)
    return 2


def os_reason(exc: OSError) -> tuple[str, str]:
    """Why an OSError happened, in Chinese and English."""
    en = exc.strerror or str(exc) or type(exc).__name__
    return _OS_ZH.get(exc.errno or 0, en), en


def file_refused(exc: OSError) -> str:
    """A file or folder the command was told to use could not be read or written."""
    zh, en = os_reason(exc)
    where = f" {exc.filename}" if exc.filename else ""
    return f"无法读写{where}：{zh} / cannot read or write{where}: {en}"


def cannot_listen(host: str, port: int, exc: OSError) -> str:
    """Why the service cannot listen on ``host:port``, and what to do."""
    where = f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return (
            f"无法监听 {where}：找不到主机 {host!r}，请用本机的 IP 地址，如 127.0.0.1 或 0.0.0.0"
            f" / cannot listen on {where}: no such host {host!r};"
            " give an address of this machine, e.g. 127.0.0.1 or 0.0.0.0"
        )
    if exc.errno == errno.EADDRINUSE:
        return (
            f"无法监听 {where}：端口 {port} 已被占用，请停止占用它的进程或换一个 --port"
            f" / cannot listen on {where}: port {port} is already in use; stop what uses it or choose another --port"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return (
            f"无法监听 {where}：{host} 不是本机的地址，请用 127.0.0.1、0.0.0.0 或本机的 IP"
            f" / cannot listen on {where}: {host} is not an address of this machine;"
            " use 127.0.0.1, 0.0.0.0 or one of its own"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (
            f"无法监听 {where}：没有权限（1024 以下的端口需要特权），请换一个 --port"
            f" / cannot listen on {where}: not allowed (ports below 1024 need privileges); choose another --port"
        )
    zh, en = os_reason(exc)
    return f"无法监听 {where}：{zh} / cannot listen on {where}: {en}"


def store_refused(url: str, exc: StoreUnavailableError, undone_zh: str, undone_en: str) -> str:
    """Why a command could not write to the Redis at ``url`` (its password masked), ``undone`` saying what was
    not done: the URL's set-up refused (StoreMisconfiguredError says what to fix), or Redis out of reach."""
    if isinstance(exc, StoreMisconfiguredError):
        return str(exc)
    shown = redacted(url)
    return (
        f"无法连接 Redis {shown}，{undone_zh}，请检查 --redis-url 和 Redis 是否在运行"
        f" / cannot reach Redis at {shown}, {undone_en}; check --redis-url and that Redis runs ({exc})"
    )
