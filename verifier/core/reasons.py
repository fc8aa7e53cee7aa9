"""Reason codes: stable strings that clients switch on, with the messages people read."""

from __future__ import annotations

from dataclasses import dataclass

# code -> (message_zh, message_en). Codes never change meaning; new ones may be added.
MESSAGES: dict[str, tuple[str, str]] = {
    "TOKEN_TOO_LARGE": ("亮证码过长，不是本系统签发的令牌", "The token is larger than any presentation token"),
    "TOKEN_MALFORMED": ("亮证码格式错误（不是合规的紧凑JWS）", "The token is not a well-formed compact JWS"),
    "TOKEN_TYPE_INVALID": ("亮证码类型(typ)不符", "The token's typ header is missing or not a presentation token's"),
    "HEADER_UNSUPPORTED": (
        "亮证码头部含有不接受的字段",
        "The token header carries members this service does not accept",
    ),
    "KEY_UNKNOWN": ("签名密钥不在信任列表中", "The signing key (kid) is not in the trust list"),
    "ALGORITHM_NOT_ALLOWED": (
        "签名算法与该密钥登记的算法不符",
        "The algorithm is not the one the signing key is pinned to",
    ),
    "KEY_NOT_VALID": ("签名密钥不在有效期内", "The signing key is outside its validity window"),
    "SIGNATURE_INVALID": (
        "签名验证失败，亮证码可能被伪造或篡改",
        "The signature does not verify: the token is forged or altered",
    ),
    "CLAIMS_INVALID": ("亮证码内容缺失或类型错误", "Required claims are missing or of the wrong type"),
    "TOKEN_SHAPE_INVALID": (
        "亮证码内容不符合签发格式（如姓名未脱敏、证照编号格式不符或亮证码过长），不予受理",
        "The token is not written as the issuer writes it (for example an unmasked name, a licence number"
        " of the wrong format, or a token too large for its QR code)",
    ),
    "ISSUED_IN_FUTURE": ("亮证码签发时间晚于当前时间", "The token is issued in the future"),
    "TOKEN_EXPIRED": (
        "亮证码已过期，请在APP中重新亮证",
        "The shown code has expired; show the licence again in the app",
    ),
    "LIFETIME_TOO_LONG": ("亮证码有效时长超过上限", "The token lives longer than the allowed maximum"),
    "ISSUER_KEY_MISMATCH": (
        "签发单位与签名密钥所属单位不符",
        "The issuing unit named in the token is not the signing key's unit",
    ),
    "PROVINCE_KEY_MISMATCH": (
        "签发省份与签名密钥所属省份不符",
        "The issuing province is not the signing key's province",
    ),
    "LICENCE_TYPE_UNKNOWN": (
        "该证照不在川渝电子证照亮证互认清单内",
        "The licence type is not in the mutual recognition list",
    ),
    "RULES_INCOMPLETE": (
        "该证照的互认规则不完整（清单原文缺失），暂不受理",
        "The rules for this licence type are incomplete (lost from the source list); not yet recognised",
    ),
    "ISSUER_NOT_DESIGNATED": (
        "该单位不是此证照在该省的签发单位",
        "This unit is not the designated issuer of this licence in that province",
    ),
    "CHANNEL_NOT_ALLOWED": ("该证照不能通过此APP亮证", "This licence may not be shown through this app"),
    "CHANNEL_PROVINCE_MISMATCH": (
        "该APP不能展示此省份签发的证照",
        "This app cannot show licences issued in that province",
    ),
    "SCENARIO_NOT_FOR_LICENCE": (
        "该证照不适用于本业务场景",
        "This licence is not recognised for the declared business",
    ),
    "SCENARIO_NOT_REGISTERED": ("本窗口未登记办理此项业务", "This counter is not registered for the declared business"),
    "OUT_OF_PILOT_SCOPE": ("本窗口不在该证照的试点范围内", "This counter is outside the licence's pilot scope"),
    "LICENCE_NOT_YET_VALID": ("证照尚未生效", "The licence is not yet valid"),
    "LICENCE_EXPIRED": ("证照已超过有效期", "The licence has expired"),
    "REPLAYED": (
        "该亮证码已在其他窗口核验使用（一次一验）",
        "This code was already used at another counter (one-time use)",
    ),
    "ALREADY_USED_HERE": (
        "该亮证码已在本窗口用于其他业务",
        "This code was already used at this counter for another business or serial number",
    ),
    "REVOKED": ("该证照已被签发单位注销或吊销", "The licence has been revoked by its issuing unit"),
}
# Rejections that the passing of time can undo while the token lives: such an answer is given but never
# cached, so the same code is decided anew at its next scan.
TEMPORARY = frozenset({"ISSUED_IN_FUTURE", "LICENCE_NOT_YET_VALID"})


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a scan was rejected: a stable code, the messages, and an optional technical detail."""

    code: str
    detail: str = ""

    @property
    def message_zh(self) -> str:
        """What a clerk reads."""
        return MESSAGES[self.code][0]

    @property
    def message_en(self) -> str:
        """The same in English."""
        return MESSAGES[self.code][1]

    def as_dict(self) -> dict[str, str]:
        """The JSON form used in decision objects."""
        out = {"code": self.code, "message_zh": self.message_zh, "message_en": self.message_en}
        if self.detail:
            out["detail"] = self.detail
        return out
