"""The token's shape, as the issuer writes it: within the QR code's size, the holder's name masked, the
licence number of its type's kind, and every other claim in the one form the issuer gives it.

A signature says who signed a token, not that it was written as this format says: an issuer that
forgot to mask a name, or put a whole file into a claim, still signs. A token off this shape is refused
(``TOKEN_SHAPE_INVALID``) and nothing it says is kept. The problems name the claim and the rule broken,
never the value, so nothing of an unmasked name or a number reaches a stored reason either.

The masks live here because the issuer writes what the verifier checks: 张三 → 张*, 欧阳娜娜 → 欧阳**
(the surname, then one star for each further character, at most three), and an organisation's name
keeps its first two and last two characters around two stars (四川天府实业有限公司 → 四川**公司).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Set as AbstractSet
from typing import Any

from stdnum.cn import ric, uscc

from verifier.core.catalogue import Holder, LicenceType, NumberFormat
from verifier.core.token import CLAIM_TYPES, QR_MAX_BYTES

# The compound surnames of the 百家姓 still common today: their bearers keep both characters.
COMPOUND_SURNAMES = frozenset({
    "欧阳", "上官", "司马", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
    "宇文", "司徒", "司空", "令狐", "夏侯", "轩辕", "端木", "独孤", "南宫", "西门",
    "百里", "呼延", "澹台", "钟离", "申屠", "濮阳", "闻人", "万俟", "赫连", "拓跋",
})  # fmt: skip
MAX_STARS = 3  # a person's mask shows at most three stars, whatever the name's length

_PERSON_MASK = re.compile(rf"(?:[^\s*]|{'|'.join(sorted(COMPOUND_SURNAMES))})\*{{1,{MAX_STARS}}}")
_ORGANISATION_MASK = re.compile(r"[^\s*]{2}\*\*[^\s*]{2}")
_MASKS: dict[Holder | None, tuple[re.Pattern[str], ...]] = {
    "person": (_PERSON_MASK,),
    "organisation": (_ORGANISATION_MASK,),
    None: (_PERSON_MASK, _ORGANISATION_MASK),  # a row whose licence the source lost: either
}
# The other claims' one form: codes of data/, the pseudonymous subject, 8 random bytes as base64url.
_FORMS = {
    "iss": re.compile(r"[a-z0-9][a-z0-9-]{0,39}"),
    "ch": re.compile(r"[a-z0-9][a-z0-9-]{0,39}"),
    "sub": re.compile(r"[a-z2-7]{8}"),
    "jti": re.compile(r"[A-Za-z0-9_-]{11}"),
}
_ATTRIBUTE = re.compile(r"[0-9A-Za-z]{1,8}")
_CITIZEN_ID = re.compile(r"[1-9][0-9]{16}[0-9X]")  # GB 11643: address, birth date, sequence, check
_USCC = re.compile(r"[0-9A-HJ-NP-RTUW-Y]{2}[0-9]{6}[0-9A-HJ-NP-RTUW-Y]{10}")  # GB 32100: no I, O, S, V, Z
_ANY_NUMBER = re.compile(r"[0-9A-Z]{1,32}")  # a row whose licence the source lost

# How each kind of number is named to a person, in Chinese and in English.
NUMBER_RULES: dict[str, tuple[str, str]] = {
    "citizen-id": ("18 位公民身份号码（校验码正确）", "an 18-character citizen ID number with its check character"),
    "uscc": ("18 位统一社会信用代码（校验码正确）", "an 18-character unified social credit code with its check"),
    "digits": ("{length} 位数字", "{length} digits"),
}


def mask_person(name: str) -> str:
    """张三 → 张*, 张三丰 → 张**, 欧阳娜娜 → 欧阳**: the surname, then a star for each further character
    (at most three)."""
    surname = name[:2] if name[:2] in COMPOUND_SURNAMES and len(name) > 2 else name[:1]
    return surname + "*" * min(len(name) - len(surname), MAX_STARS)


def mask_organisation(name: str) -> str:
    """四川天府实业有限公司 → 四川**公司: the first two and last two characters around two stars."""
    return f"{name[:2]}**{name[-2:]}"


def holder_masked(holder: Holder | None, hn: str) -> bool:
    """Whether ``hn`` is a name masked as the issuer masks a ``holder``'s."""
    return any(mask.fullmatch(hn) for mask in _MASKS[holder])


def number_problem(number: NumberFormat | None, no: str) -> str | None:
    """Why ``no`` is not a licence number of the kind ``number``, or None when it is one."""
    if number is None:
        return None if _ANY_NUMBER.fullmatch(no) else "no is not 1-32 digits and capital letters"
    if number.kind == "citizen-id":
        good = _CITIZEN_ID.fullmatch(no) is not None and no[-1] == ric.calc_check_digit(no) and _real_birth_date(no)
    elif number.kind == "uscc":
        good = _USCC.fullmatch(no) is not None and no[-1] == uscc.calc_check_digit(no)
    else:
        good = len(no) == number.length and no.isascii() and no.isdigit()
    return None if good else f"no is not {NUMBER_RULES[number.kind][1].format(length=number.length)}"


def _real_birth_date(citizen_id: str) -> bool:
    """Whether characters 7-14 of a citizen ID number (already all digits) are a calendar date, YYYYMMDD.
    (stdnum's get_birth_date says the same, at seven times the cost on the scan path.)"""
    try:
        dt.date(int(citizen_id[6:10]), int(citizen_id[10:12]), int(citizen_id[12:14]))
    except ValueError:
        return False
    return True


def shape_problems(claims: dict[str, Any], ok: AbstractSet[str], lt: LicenceType | None, size: int) -> list[str]:
    """Every way the token departs from the issuer's shape; ``ok`` are the claims present with the right
    JSON type, ``lt`` the licence type ``lt`` names (None when unknown), ``size`` the token's bytes.
    Plain loops, no helper calls: this runs on every new scan."""
    problems = []
    if size > QR_MAX_BYTES:
        problems.append(f"the token is {size} bytes, more than the {QR_MAX_BYTES} its QR code holds")
    for name, form in _FORMS.items():
        if name in ok and not form.fullmatch(claims[name]):
            problems.append(f"{name} is not as the issuer writes it")
    if "hn" in ok and not holder_masked(lt.holder if lt else None, claims["hn"]):
        problems.append("hn is not a masked name")
    if "no" in ok and (problem := number_problem(lt.number if lt else None, claims["no"])):
        problems.append(problem)
    if "vf" in ok and "vu" in ok and claims["vu"] < claims["vf"]:
        problems.append("vu is before vf")
    if lt is not None:
        names = {a.name for a in lt.attributes}
        extra = len(claims.keys() - CLAIM_TYPES.keys() - names)  # counted, not named: the names are the sender's
        if extra:
            problems.append(f"{extra} claims the issuer does not write")
        for name in names:
            value = claims.get(name)
            if not (isinstance(value, str) and _ATTRIBUTE.fullmatch(value)):
                problems.append(f"{name} is missing or not 1-8 letters or digits")
    return problems
