"""Minting presentation tokens, as an issuing unit does when an app asks to show a licence.

:func:`mint` takes the catalogue, the key ring and the clock as arguments and reads no file; its
only impurity is the random ``jti``. What the catalogue does not allow is refused with
:class:`MintRefusedError` (a :class:`~verifier.errors.UsageError`), whose message says in Chinese and
English what *is* allowed, and whose ``field`` and ``allowed`` say the same to a program.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, NoReturn

from stdnum.cn import ric, uscc

from verifier.core.catalogue import PROVINCE_NAMES_ZH, PROVINCES, Catalogue, Holder, LicenceType, NumberFormat
from verifier.core.shape import NUMBER_RULES, holder_masked, mask_organisation, mask_person, number_problem
from verifier.core.token import QR_ERROR_LEVEL, QR_MAX_BYTES, QR_VERSION, TYP, b64url_encode, encode
from verifier.errors import MintRefusedError
from verifier.issuer.keys import KeyRing

DEFAULT_TTL = 300
MAX_TTL = 600  # a shown code lives minutes, not hours: a photo of it goes stale fast
DEFAULT_HOLDERS: dict[Holder, str] = {"person": "张三", "organisation": "四川天府实业有限公司"}
NAME_LENGTHS: dict[Holder, tuple[int, int]] = {"person": (2, 16), "organisation": (5, 50)}
# Where synthetic numbers say their holder lives or registered (GB/T 2260): 成都市锦江区, 重庆市渝中区.
REGIONS = {"SC": "510104", "CQ": "500103"}
# Sample values for the type attributes the data names; a caller may pass real ones.
DEFAULT_ATTRIBUTES: dict[str, str] = {"cls": "C1", "lvl": "1"}
CHINA = timezone(timedelta(hours=8))  # licence dates are calendar days in Beijing time
EPOCH = date(1970, 1, 1)  # tokens carry dates as day numbers

_LOST_CELLS = {"issuing_units": ("签发单位", "issuing units"), "channels": ("亮证渠道", "channels")}
_ATTRIBUTE = re.compile(r"[0-9A-Za-z]{1,8}")


@dataclass(frozen=True, slots=True)
class Minted:
    """A signed token with the header and claims it carries."""

    token: str
    claims: dict[str, Any]
    expires_at: int
    header: dict[str, Any]

    @property
    def kid(self) -> str:
        """The key that signed it."""
        return str(self.header["kid"])

    @property
    def size(self) -> int:
        """Bytes the token takes in a QR code."""
        return len(self.token.encode("ascii"))


def mint(
    catalogue: Catalogue,
    keyring: KeyRing,
    *,
    licence_type: str,
    province: str,
    channel: str,
    now: float,
    ttl: int = DEFAULT_TTL,
    licence_no: str | None = None,
    holder: str | None = None,
    attributes: dict[str, str] | None = None,
    jti: str | None = None,
    unit: str | None = None,
    valid_from: date | None = None,
    valid_until: date | None = None,
    alg: str | None = None,
) -> Minted:
    """Sign a presentation token of ``licence_type`` issued in ``province``, shown through
    ``channel``, valid ``ttl`` seconds from ``now``, with the unit's newest key (of ``alg``, when one
    is named); refuse what the catalogue does not allow."""
    lt = mintable_type(catalogue, licence_type)
    if province not in PROVINCES:
        _refuse("province", f"省份 {province!r} 无效", f"unknown province {province!r}", PROVINCES)
    allowed = allowed_channels(catalogue, lt, province)
    if channel not in allowed:
        _refuse_channel(catalogue, lt, province, channel, allowed)
    units = lt.units_in(province)
    unit = unit or (units[0] if units else "")
    if unit not in units:
        where = f"{lt.code} 在{PROVINCE_NAMES_ZH[province]}的签发单位"
        _refuse("unit", f"{unit!r} 不是{where}", f"{unit!r} is not an issuing unit of {lt.code} in {province}", units)
    if type(ttl) is not int or not 0 < ttl <= MAX_TTL:
        _refuse("ttl", f"有效时长最长 {MAX_TTL} 秒", f"ttl is at most {MAX_TTL} seconds", (f"1..{MAX_TTL}",))
    kind = lt.holder or "person"
    holder = DEFAULT_HOLDERS[kind] if holder is None else holder.strip()
    hn = mask_name(holder, kind)
    if licence_no is None:
        licence_no = _synthetic_number(keyring.subject_secret, lt, province, unit, holder)
    elif number_problem(lt.number, licence_no):
        _refuse_number(lt)
    first, last = _validity(now, valid_from, valid_until)
    key = keyring.signing_key(unit, now, alg=alg)
    iat = int(now)
    claims: dict[str, Any] = {
        "iss": unit,
        "prv": province,
        "lt": lt.seq,
        "ch": channel,
        "no": licence_no,
        "hn": hn,
        "sub": pseudonym(keyring.subject_secret, holder, licence_no),
        "vf": first,
        "vu": last,
        "iat": iat,
        "exp": iat + ttl,
        "jti": jti or b64url_encode(secrets.token_bytes(8)),
        **_attributes(lt, attributes or {}),
    }
    header = {"alg": key.alg, "kid": key.kid, "typ": TYP}
    token = encode(header, claims, key.sign)
    if len(token) > QR_MAX_BYTES:
        zh = f"令牌 {len(token)} 字节，超过二维码（版本{QR_VERSION}、纠错{QR_ERROR_LEVEL}）容量 {QR_MAX_BYTES} 字节"
        en = f"the token takes {len(token)} bytes, more than the {QR_MAX_BYTES} of a version-{QR_VERSION} QR code"
        en += f" at level {QR_ERROR_LEVEL}"
        _refuse("licence_no", zh, en, (f"at most {QR_MAX_BYTES} bytes in all",))
    return Minted(token, claims, iat + ttl, header)


def mintable_type(catalogue: Catalogue, code: str) -> LicenceType:
    """The licence type ``code``, if an issuer knows who issues it and which apps show it."""
    mintable = tuple(lt.code for lt in catalogue.by_seq() if lt.mintable)
    lt = catalogue.licences.get(code)
    if lt is None:
        _refuse("type", f"未知的证照类型 {code!r}", f"unknown licence type {code!r}", mintable)
    lost = [cell for cell in _LOST_CELLS if cell in lt.lost]
    if lost:
        zh = "、".join(_LOST_CELLS[c][0] for c in lost)
        en = " and ".join(_LOST_CELLS[c][1] for c in lost)
        _refuse(
            "type",
            f"第{lt.seq}项（{lt.code}）的{zh}在清单原文中缺失，无法签发",
            f"row {lt.seq} ({lt.code}) cannot be minted: the source lost its {en}",
            mintable,
        )
    return lt


def allowed_channels(catalogue: Catalogue, lt: LicenceType, province: str) -> tuple[str, ...]:
    """The channels that may show ``lt`` issued in ``province``: named by the row, and either
    national or of that province."""
    return tuple(c for c in lt.channels or () if catalogue.channels[c].may_show(province))


def mask_name(holder: str, kind: Holder = "person") -> str:
    """A person's name as 张* or 欧阳**, an organisation's as 四川**公司 (:mod:`verifier.core.shape`);
    refused when it is too short or long, holds a * or a control character, or masks to what the
    verifier would not take (a space where a kept character stands)."""
    low, high = NAME_LENGTHS[kind]
    masked = mask_person(holder) if kind == "person" else mask_organisation(holder)
    if not low <= len(holder) <= high or "*" in holder or not holder.isprintable() or not holder_masked(kind, masked):
        who_zh, who_en = ("持证人姓名", "holder name") if kind == "person" else ("持证单位名称", "organisation name")
        zh, en = f"{who_zh}须为 {low} 到 {high} 个字符", f"{who_en} must be {low}-{high} characters"
        _refuse("holder", zh, en, (f"{low}-{high} characters, no *",))
    return masked


def pseudonym(secret: bytes, holder: str, licence_no: str) -> str:
    """A stable 8-character subject (40 bits) for one holder and licence that reveals neither."""
    digest = hmac.new(secret, f"{holder}\x1f{licence_no}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest).decode("ascii")[:8].lower()


_FIRST_BIRTHDAY = date(1960, 1, 1)
_BIRTH_DAYS = (date(2005, 1, 1) - _FIRST_BIRTHDAY).days  # sample holders are born 1960-2004


def citizen_id(serial: int, province: str = "SC") -> str:
    """The ``serial``-th sample 公民身份号码 (GB 11643) of the province: sequence ``serial % 1000``, born the
    ``serial // 1000``-th day of 1960-2004, in 成都市锦江区 or 重庆市渝中区 — with larger serials, in the
    address codes after it — and its check character. Different serials below 10**12 give different numbers."""
    rest, sequence = divmod(serial, 1000)
    moved, days = divmod(rest, _BIRTH_DAYS)
    born = _FIRST_BIRTHDAY + timedelta(days=days)
    body = f"{int(REGIONS[province]) + moved}{born:%Y%m%d}{sequence:03d}"
    return body + ric.calc_check_digit(body + "0")  # stdnum computes it from the first 17 characters


def _synthetic_number(secret: bytes, lt: LicenceType, province: str, unit: str, holder: str) -> str:
    """A number of ``lt``'s kind: a citizen ID of someone born 1960-2004 in the province's sample district,
    a credit code registered there, or the type's own digits. The same holder gets the same number each
    time, so a demo can revoke what it showed."""
    digest = hmac.new(secret, f"no\x1f{lt.code}\x1f{unit}\x1f{holder}".encode(), hashlib.sha256).digest()
    draw = int.from_bytes(digest, "big")
    number = lt.number or NumberFormat("digits", 10)
    if number.kind == "citizen-id":
        return citizen_id(draw % (1000 * _BIRTH_DAYS), province)
    if number.kind == "uscc":
        body = f"91{REGIONS[province]}{draw // 10**5 % 10**9:09d}"  # 9: registered by 市场监督管理, 1: a company
        return body + uscc.calc_check_digit(body)
    return f"{REGIONS[province][:2]}{draw}"[: number.length]


def _validity(now: float, valid_from: date | None, valid_until: date | None) -> tuple[int, int]:
    today = datetime.fromtimestamp(now, UTC).astimezone(CHINA).date()
    first = valid_from or _add_years(today, -1)
    last = valid_until or _add_years(today, 5)
    if last < first:
        zh, en = "证照有效期止早于起", "licence validity ends before it starts"
        _refuse("valid_until", zh, en, (f"on or after {first}",))
    return (first - EPOCH).days, (last - EPOCH).days


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _attributes(lt: LicenceType, given: dict[str, str]) -> dict[str, str]:
    names = tuple(a.name for a in lt.attributes)
    for name in given:
        if name not in names:
            _refuse("attributes", f"{lt.code} 没有属性 {name!r}", f"{lt.code} has no attribute {name!r}", names)
    values = {name: given.get(name, DEFAULT_ATTRIBUTES.get(name, "")) for name in names}
    for name, value in values.items():
        if not _ATTRIBUTE.fullmatch(value):
            zh, en = f"属性 {name} 须为 1 到 8 个字母或数字", f"attribute {name} must be 1-8 letters or digits"
            _refuse("attributes", zh, en, (name,))
    return values


def _refuse_number(lt: LicenceType) -> NoReturn:
    if lt.number is None:
        zh, en = "1 到 32 个数字或大写字母", "1-32 digits and capital letters"
    else:
        zh, en = (text.format(length=lt.number.length) for text in NUMBER_RULES[lt.number.kind])
    _refuse("licence_no", f"{lt.code} 的证照编号须为{zh}", f"a {lt.code} number is {en}", (en,), listed=False)


def _refuse_channel(
    catalogue: Catalogue, lt: LicenceType, province: str, channel: str, allowed: tuple[str, ...]
) -> NoReturn:
    names = "、".join(f"{c}（{catalogue.channels[c].name_zh}）" for c in allowed) or "无"
    listed = ", ".join(allowed) or "none"
    ch = catalogue.channels.get(channel)
    if ch is not None and channel in (lt.channels or ()):
        own, other = PROVINCE_NAMES_ZH.get(ch.province, ch.province), PROVINCE_NAMES_ZH[province]
        zh = f"{ch.name_zh}只能亮示{own}签发的证照，不能亮示{other}签发的{lt.code}"
        en = f"{channel} shows only licences issued in {ch.province}, not {lt.code} issued in {province}"
    else:
        zh, en = f"{lt.code} 不能通过 {channel} 亮证", f"{lt.code} cannot be shown through {channel}"
    _refuse("channel", f"{zh}；允许的渠道：{names}", f"{en}; allowed channels: {listed}", allowed, listed=False)


def _refuse(field: str, zh: str, en: str, allowed: tuple[str, ...], *, listed: bool = True) -> NoReturn:
    if listed:
        zh, en = f"{zh}；可选：{'、'.join(allowed) or '无'}", f"{en}; allowed: {', '.join(allowed) or 'none'}"
    raise MintRefusedError(f"{zh} / {en}", field=field, allowed=allowed)
