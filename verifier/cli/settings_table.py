"""Every setting of ``verifier serve`` in one table: its flag, its ``VERIFIER_<FLAG>`` environment
variable, its type, its allowed range and what it does in Chinese and English. The flags and their help,
reading the environment, checking values and the README's settings table are all made from it, so they
cannot drift apart. Each default here is :class:`~verifier.service.settings.Settings`' own (a test holds
them equal); the table keeps a copy so that ``verifier --help`` need not import the service.

A value comes from the flag, else from the variable (an empty variable counts as unset), else the
default. A value that is not a number, or out of range, is a :class:`~verifier.errors.UsageError`
naming the flag or the variable it came from (exit 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from verifier.errors import UsageError

if TYPE_CHECKING:
    from verifier.service.settings import Settings

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_KINDS = {int: ("整数", "a whole number"), float: ("数字", "a number")}


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting: where it goes in :class:`Settings` (``policy.leeway`` for one of the policy's), its
    flag, its type, and what the help and the README say of it."""

    field: str
    flag: str
    kind: type
    default: Any
    zh: str
    en: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] = ()
    unit: str = ""  # "s" or "days", shown after the default
    metavar: str = ""  # what the value is, in the usage line; numbers are named by their unit

    @property
    def env(self) -> str:
        """The environment variable: ``--max-clock-skew`` reads ``VERIFIER_MAX_CLOCK_SKEW``."""
        return "VERIFIER_" + self.dest.upper()

    @property
    def value_name(self) -> str:
        """The value's name in the usage line and the README: ``--port N``, ``--leeway S``."""
        return self.metavar or {"s": "S", "days": "DAYS"}.get(self.unit, "N")

    @property
    def dest(self) -> str:
        """The flag's name on the parsed arguments."""
        return self.flag.removeprefix("--").replace("-", "_")

    def shown_default(self) -> str:
        """The default as help and the README show it."""
        value = self.default
        if value is None or value == ():
            return "unset"
        if isinstance(value, bool):
            return "on" if value else "off"
        text = _number_text(value) if isinstance(value, int | float) else str(value)
        return f"{text} {self.unit}" if self.unit else text

    def allowed(self) -> str:
        """The range or choices, as help and the README show them; empty when anything goes."""
        if self.choices:
            return ", ".join(self.choices)
        if self.low is None:
            return ""
        return f"{_number_text(self.low)}–{_number_text(self.high)}" if self.high is not None else f"≥ {self.low:g}"

    def parse(self, text: str | list[str], source: str) -> Any:
        """``text`` as this setting's value; ``source`` names the flag or variable it came from. A repeatable
        flag gives a list, its variable one text holding every value."""
        if isinstance(text, list) or self.kind is tuple:
            return _jwks_sources(text if isinstance(text, list) else [text], source)
        text = text.strip()
        if self.kind is bool:
            return self._boolean(text, source)
        if self.choices:
            if text.lower() not in self.choices:
                wanted = ", ".join(self.choices)
                raise UsageError(f"{source} 须为 {wanted} 之一，收到 {text!r} / {source} must be one of {wanted}")
            return text.lower()
        return text if self.kind is str else self._number(text, source)

    @staticmethod
    def _boolean(text: str, source: str) -> bool:
        if text.lower() in _TRUE:
            return True
        if text.lower() in _FALSE:
            return False
        raise UsageError(f"{source} 须为 1 或 0，收到 {text!r} / {source} must be 1 or 0, got {text!r}")

    def _number(self, text: str, source: str) -> int | float:
        try:
            value = self.kind(text)
        except ValueError:
            zh, en = _KINDS[self.kind]
            raise UsageError(f"{source} 须为{zh}，收到 {text!r} / {source} must be {en}, got {text!r}") from None
        low = -math.inf if self.low is None else self.low
        high = math.inf if self.high is None else self.high
        if not (math.isfinite(value) and low <= value <= high):
            allowed = self.allowed()
            zh = f"{source} 须在 {allowed} 之间，收到 {text}"
            raise UsageError(f"{zh} / {source} must be within {allowed}, not {text}")
        return value  # type: ignore[no-any-return]

    def help(self) -> str:
        """The flag's help: both languages, the range, the default and the variable."""
        allowed = f"; {self.allowed()}" if self.allowed() else ""
        return f"{self.zh} / {self.en} (default {self.shown_default()}{allowed}; ${self.env})".replace("%", "%%")


def _number_text(value: float) -> str:
    """1.0 as 1, 0.05 as 0.05, 2592000 as 2592000."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


_UNSET_STATE = "$XDG_STATE_HOME/cy-licence-verifier or ~/.local/state/cy-licence-verifier"

SETTINGS: tuple[Setting, ...] = (
    Setting("host", "--host", str, "127.0.0.1", "监听地址", "address to listen on", metavar="HOST"),
    Setting("port", "--port", int, 8080, "监听端口", "port to listen on", 1, 65535),
    Setting("workers", "--workers", int, 1, "共享端口的工作进程数（多于 1 个需要 --redis-url）",
            "worker processes sharing the port (more than one needs --redis-url)", 1, 64),
    Setting("log_level", "--log-level", str, "info", "日志级别", "log level",
            choices=("debug", "info", "warning", "error"), metavar="LEVEL"),
    Setting("redis_url", "--redis-url", str, None, "一次一验、注销和统计所在的 Redis；不设则用进程内存储（仅限单实例）",
            "the Redis keeping one-time use, revocations and statistics; unset: the embedded in-process store"
            " (one instance only)", metavar="URL"),
    Setting("store_timeout", "--store-timeout", float, 1.0, "每次 Redis 调用的时限，超时则答 503",
            "seconds one Redis call may take before the scan is answered 503", 0.05, 30, unit="s"),
    Setting("store_check_seconds", "--store-check-interval", float, 5.0, "检查 Redis 能否保证一次一验及其时钟的间隔",
            "seconds between checks that Redis keeps one-time use and agrees on the time", 0.5, 300, unit="s"),
    Setting("max_clock_skew", "--max-clock-skew", int, 60, "实例与 Redis 之间容许的最大时钟差；超过一半则不就绪",
            "largest clock difference allowed between an instance and Redis; an instance off by more than half"
            " of it is not ready", 1, 3600, unit="s"),
    Setting("min_replica_acks", "--min-replica-acks", int, 0, "一次核验或注销须有几个副本确认才算数（WAIT）",
            "replicas that must hold a claim or a revocation before it counts (WAIT)", 0, 16),
    Setting("allow_volatile_store", "--allow-volatile-store", bool, False, "接受不持久化的 Redis（仅用于测试和压测）",
            "accept a Redis that keeps nothing on disk (tests and benchmarks only)"),
    Setting("record_ttl", "--record-ttl", int, 24 * 3600, "核验记录的保存时长（GET /v1/scans/{id}）",
            "how long a scan record is kept (GET /v1/scans/{id})", 60, 30 * 86400, unit="s"),
    Setting("revocation_days", "--revocation-days", int, 90, "注销的保存天数（0 为永久）",
            "days a revocation is kept (0: forever)", 0, 36500, unit="days"),
    Setting("jwks", "--jwks", tuple, (),
            "签发方公钥列表（JWKS 文件或 URL），两省共用一个，或 SC=… 与 CQ=… 各一个"
            "（可重复；变量中以空格或逗号分隔）；不设则用状态目录中本地模拟签发方发布的 jwks.json",
            "the issuers' public keys: one JWKS file or URL for both provinces, or SC=… and CQ=… (the flag"
            " repeated; in the variable, separated by spaces or commas), a province's source trusted for its own"
            " units only; unset: the jwks.json the local mock issuer publishes in the state folder",
            metavar="[SC=|CQ=]FILE-or-URL"),
    Setting("trust_refresh_seconds", "--trust-refresh", float, 60.0, "重新读取公钥列表的间隔",
            "seconds between reloads of the trust list", 1, 86400, unit="s"),
    Setting("policy.leeway", "--leeway", int, 5, "令牌 iat 和 exp 容许的时钟误差",
            "clock difference tolerated on a token's iat and exp", 0, 300, unit="s"),
    Setting("policy.max_lifetime", "--max-lifetime", int, 600, "亮证令牌的最长有效期（exp − iat）",
            "longest a presentation token may live (exp − iat)", 1, 3600, unit="s"),
    Setting("counter_rate", "--counter-rate", float, 10.0, "每个窗口每秒可提交的核验数（所有实例合计；0 为不限）",
            "scans per second one counter may post, across every instance (0: no limit)", 0, 10000),
    Setting("counter_burst", "--counter-burst", int, 30, "窗口可一次连续提交的核验数，超过后按 --counter-rate 限速",
            "scans a counter may post at once before --counter-rate applies", 1, 100000),
    Setting("header_timeout", "--header-timeout", float, 10.0, "请求头须在此时限内收完，否则断开连接",
            "a request head not complete within this closes the connection", 0.1, 300, unit="s"),
    Setting("keepalive_timeout", "--keepalive-timeout", float, 75.0, "空闲长连接在此时限后关闭",
            "an idle keep-alive connection is closed after this", 1, 3600, unit="s"),
    Setting("max_connections", "--max-connections", int, 800, "每个实例的最大连接数，超出则答 503",
            "open connections per instance; beyond it, 503", 1, 100000),
    Setting("max_body_bytes", "--max-body-bytes", int, 16 * 1024, "请求体上限（字节），超出则答 413",
            "largest request body in bytes; beyond it, 413", 1024, 1024 * 1024),
    Setting("retry_after_seconds", "--retry-after", int, 2, "答 503 时请客户端等待的秒数（Retry-After）",
            "seconds a 503 asks the client to wait (Retry-After)", 1, 300, unit="s"),
    Setting("data_dir", "--data-dir", str, None, "证照目录规则文件所在文件夹（data/）；不设则用安装包自带的",
            "the folder of the rule files (data/); unset: the packaged copy", metavar="DIR"),
    Setting("state_dir", "--state-dir", str, None, "状态文件夹（密钥、API 密钥哈希、本地公钥列表）",
            f"the state folder (keys, API key hashes, the local trust list); unset: {_UNSET_STATE}", metavar="DIR"),
    Setting("secret_file", "--secret-file", str, None, "部署密钥文件，同一部署的每个实例必须相同",
            "the deployment secret's file, the same for every instance of one deployment; unset: the state"
            " folder's secret, made on first use", metavar="FILE"),
    Setting("audit_url", "--audit-url", str, None, "审计记录所在的 PostgreSQL；不设则用状态目录中的 SQLite",
            "PostgreSQL for the audit trail; unset: SQLite in the state folder", metavar="URL"),
    Setting("audit_retention_days", "--audit-retention-days", int, 400, "审计记录的保存天数",
            "days the audit trail is kept", 1, 36500, unit="days"),
    Setting("separate_audit_writer", "--separate-audit-writer", bool, False,
            "本实例不写审计记录，由单独的 verifier audit writer 进程写入",
            "this instance writes no audit trail itself: a `verifier audit writer` process does"),
    Setting("audit_claim_idle", "--audit-claim-idle", float, 30.0, "审计事件被取走后多久未确认即交由其他写入进程",
            "how long an audit event taken by a writer may stay unacknowledged before another writer takes it over",
            1, 3600, unit="s"),
)  # fmt: skip


def _jwks_sources(values: list[str], source: str) -> Any:
    """The trust sources ``--jwks`` or ``VERIFIER_JWKS`` names (the adapter reads them; imported only now, so
    ``verifier --help`` need not load the HTTP client)."""
    from verifier.adapters.trust_source import parse_jwks_sources

    try:
        return parse_jwks_sources(values)
    except UsageError as exc:
        raise UsageError(f"{source}: {exc}" if source != "--jwks" else str(exc)) from None


def add_flags(parser: argparse.ArgumentParser, flags: Collection[str] | None = None) -> None:
    """Add every setting's flag to ``parser`` (or those of ``flags`` only: a command that needs a few of
    serve's settings takes them as serve does). Each defaults to None, meaning "not given": the variable
    or the default then applies (:func:`settings_from`)."""
    for setting in SETTINGS:
        if flags is not None and setting.flag not in flags:
            continue
        if setting.kind is bool:
            parser.add_argument(setting.flag, action=argparse.BooleanOptionalAction, default=None, help=setting.help())
        elif setting.kind is tuple:
            parser.add_argument(setting.flag, action="append", metavar=setting.value_name, help=setting.help())
        else:
            parser.add_argument(setting.flag, metavar=setting.value_name, default=None, help=setting.help())


def settings_from(args: argparse.Namespace | None, environ: Mapping[str, str]) -> Settings:
    """The settings: each flag given in ``args``, else its variable in ``environ``, else the default."""
    chosen: dict[str, Any] = {}
    for setting in SETTINGS:
        given = getattr(args, setting.dest, None)
        if isinstance(given, bool):  # --flag / --no-flag
            chosen[setting.field] = given
        elif given is not None:
            chosen[setting.field] = setting.parse(given, setting.flag)
        elif environ.get(setting.env, "").strip():
            chosen[setting.field] = setting.parse(environ[setting.env], setting.env)
    from verifier.service.settings import Settings

    policy = {name.removeprefix("policy."): chosen.pop(name) for name in list(chosen) if name.startswith("policy.")}
    return Settings(**chosen, policy=dataclasses.replace(Settings().policy, **policy))


def settings_fields() -> list[str]:
    """Every setting :class:`Settings` has, a policy's as ``policy.<name>``: each needs a row above."""
    from verifier.core.decide import Policy
    from verifier.service.settings import Settings

    names = [f.name for f in dataclasses.fields(Settings) if f.name != "policy"]
    return names + [f"policy.{f.name}" for f in dataclasses.fields(Policy)]


def markdown_table() -> str:
    """The README's settings table."""
    rows = ["| flag | environment | default | allowed | what |", "| --- | --- | --- | --- | --- |"]
    for s in SETTINGS:
        flag = (f"`{s.flag}`" if s.kind is bool else f"`{s.flag} {s.value_name}`").replace("|", "\\|")
        rows.append(f"| {flag} | `{s.env}` | {s.shown_default()} | {s.allowed() or '—'} | {s.zh} / {s.en} |")
    return "\n".join(rows)
