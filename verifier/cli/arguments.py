"""The command line's parser: every error on one line in Chinese and English, naming the problem and what
to do, and every option's help with its default.

argparse writes its own errors in English, after a usage block. :class:`Parser` writes one line
instead: the command, the problem in Chinese and in English, and where to read the usage. argparse's
messages are put into Chinese from their templates (Python's own, the same on every 3.11+);
an argument type's :class:`argparse.ArgumentTypeError` says both itself (:func:`refuse`). The types
below check what an operator types before anything starts: a port in range, a count at least one, a
log level, a Redis URL of a form the service reads.
"""

from __future__ import annotations

import argparse
import logging
import re
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any, NoReturn

from verifier.cli import texttable
from verifier.cli.failures import one_line, says_chinese

# argparse's messages (Lib/argparse.py, its _() templates) -> their Chinese, first match wins. The value
# parts are kept as argparse quotes them.
_ARGPARSE_ZH: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), zh)
    for pattern, zh in (
        (r"the following arguments are required: (?P<a>.+)", "缺少必需的参数 {a}"),
        (r"unrecognized arguments: (?P<a>.+)", "无法识别的参数 {a}"),
        (r"invalid choice: (?P<v>.+) \(choose from (?P<c>.+)\)", "取值 {v} 无效，可选：{c}"),
        (r"invalid int value: (?P<v>.+)", "{v} 不是整数"),
        (r"invalid float value: (?P<v>.+)", "{v} 不是数字"),
        (r"invalid (?P<t>\w+) value: (?P<v>.+)", "{v} 不是有效的 {t} 值"),
        (r"expected one argument", "需要一个值"),
        (r"expected at most one argument", "最多只能有一个值"),
        (r"expected at least one argument", "至少需要一个值"),
        (r"expected (?P<n>\d+) arguments?", "需要 {n} 个值"),
        (r"ambiguous option: (?P<o>\S+) could match (?P<m>.+)", "选项 {o} 有歧义，可能是 {m}"),
        (r"not allowed with argument (?P<a>.+)", "不能与 {a} 同时使用"),
        (r"ignored explicit argument (?P<a>.+)", "此选项不带值，却给了 {a}"),
        (r"one of the arguments (?P<a>.+) is required", "{a} 须给出其中一个"),
        (r"unexpected option string: (?P<o>.+)", "意外的选项 {o}"),
    )
)
_ARGUMENT = re.compile(r"argument (?P<name>[^:]+): (?P<rest>.*)", re.DOTALL)


def bilingual(message: str) -> tuple[str, str]:
    """An argparse error message as (Chinese, English). One that already says both ("中文 / English", from
    :func:`refuse`) is split at its first " / "."""
    name = ""
    found = _ARGUMENT.fullmatch(message)
    if found:
        name, message = found["name"], found["rest"]
    if says_chinese(message) and " / " in message:
        zh, en = message.split(" / ", 1)
    else:
        en = message
        zh = next(
            (
                template.format(**m.groupdict())
                for pattern, template in _ARGPARSE_ZH
                if (m := pattern.fullmatch(message))
            ),
            f"参数有误（{message}）",
        )
    if name:
        return f"参数 {name}：{zh}", f"argument {name}: {en}"
    return zh, en


def refuse(zh: str, en: str) -> argparse.ArgumentTypeError:
    """The error an argument type raises: argparse names the argument, :class:`Parser` says both languages."""
    return argparse.ArgumentTypeError(f"{zh} / {en}")


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help with each option's default (unless the help already states one) and bilingual headings."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if (
            action.option_strings
            and default not in (None, False, argparse.SUPPRESS, [])
            and "default" not in text.lower()
            and "默认" not in text
        ):
            text += " （默认 default: %(default)s）"
        return text

    def _split_lines(self, text: str, width: int) -> list[str]:
        """Help text wrapped by terminal columns (a Chinese character takes two), not by characters."""
        return texttable.wrap(" ".join(text.split()), width, texttable.SEPARATORS)

    def add_usage(self, usage: str | None, actions: Any, groups: Any, prefix: str | None = None) -> None:
        """The usage line, headed in both languages."""
        super().add_usage(usage, actions, groups, "用法 usage: " if prefix is None else prefix)


class Parser(argparse.ArgumentParser):
    """An ArgumentParser (and, through ``add_subparsers``, every subparser) whose errors are one line in
    Chinese and English, exit 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        kwargs.setdefault("add_help", False)
        super().__init__(*args, **kwargs)
        self._positionals.title = "参数 positional arguments"
        self._optionals.title = "选项 options"
        self.add_argument("-h", "--help", action="help", help="显示本帮助并退出 / show this help and exit")
        self.set_defaults(prog=self.prog)  # the deepest command's, for errors raised while it runs

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        """argparse's, with arguments nobody takes named against the command they were given to."""
        parsed, extras = self.parse_known_args(args, namespace)
        if extras:
            self._refuse(getattr(parsed, "prog", self.prog), f"unrecognized arguments: {' '.join(extras)}")
        return parsed

    def error(self, message: str) -> NoReturn:
        """One line on standard error, exit 2."""
        self._refuse(self.prog, message)

    def _refuse(self, prog: str, message: str) -> NoReturn:
        zh, en = bilingual(message)
        self.exit(2, one_line(prog, f"{zh}；用法见 {prog} --help / {en}; see {prog} --help") + "\n")


# --- argument types ------------------------------------------------------------------------------


def port(text: str) -> int:
    """A TCP port to listen on, 1 to 65535."""
    try:
        number = int(text)
    except ValueError:
        raise refuse(f"端口须为整数，而不是 {text!r}", f"a port is a whole number, not {text!r}") from None
    if not 1 <= number <= 65535:
        raise refuse(f"端口 {number} 超出范围，须在 1 到 65535 之间", f"port {number} is out of range 1-65535")
    return number


def at_least(minimum: int | float, kind: Callable[[str], Any] = int) -> Callable[[str], Any]:
    """A type: an integer (or with ``kind=float``, a number) no smaller than ``minimum``."""
    noun_zh, noun_en = ("整数", "a whole number") if kind is int else ("数字", "a number")

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise refuse(f"须为{noun_zh}，而不是 {text!r}", f"expected {noun_en}, not {text!r}") from None
        if not value >= minimum:  # NaN too: it compares false with everything
            raise refuse(f"须不小于 {minimum:g}，而不是 {text}", f"must be at least {minimum:g}, not {text}")
        return value

    convert.__name__ = kind.__name__  # argparse names a type by its function's name
    return convert


LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def log_level(text: str) -> str:
    """A logging level by name, any case."""
    level = text.strip().lower()
    if level not in LOG_LEVELS or not isinstance(logging.getLevelName(level.upper()), int):
        raise refuse(
            f"日志级别 {text!r} 无效，可选：{', '.join(LOG_LEVELS)}",
            f"log level {text!r} is not one of {', '.join(LOG_LEVELS)}",
        )
    return level


def redis_url(text: str) -> str:
    """A Redis URL of a form the service reads (the README's table), checked before anything connects."""
    from verifier.adapters.redis_urls import check_redis_url

    try:
        check_redis_url(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def http_url(text: str) -> str:
    """The service's base URL, http:// or https://."""
    if not text.startswith(("http://", "https://")) or len(text.split("://", 1)[1].strip("/")) == 0:
        raise refuse(
            f"服务地址须以 http:// 或 https:// 开头，而不是 {text!r}",
            f"the service URL must be http:// or https://, not {text!r}",
        )
    return text


def new_file(text: str) -> Path:
    """A file to write, in a folder that exists (checked before a token is minted for it)."""
    path = Path(text)
    if path.is_dir():
        raise refuse(
            f"{text} 是文件夹，请给出文件名，如 {path / 'token.png'}",
            f"{text} is a folder; name a file, e.g. {path / 'token.png'}",
        )
    if not path.parent.is_dir():
        raise refuse(
            f"文件夹 {path.parent} 不存在，请先创建它或换一个路径",
            f"the folder {path.parent} does not exist; create it or choose another",
        )
    return path


def iso_date(text: str) -> date:
    """A calendar date, YYYY-MM-DD."""
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise refuse(f"日期须为 YYYY-MM-DD，而不是 {text!r}", f"a date is YYYY-MM-DD, not {text!r}") from None
