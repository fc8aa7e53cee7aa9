"""``verifier issuer …``: mint a token, rotate and list keys, print the JWKS, serve the mock issuer.

Registered by :func:`verifier.cli.main.build_parser`; heavy imports wait until a command runs.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from typing import Any

from verifier.cli.arguments import iso_date, new_file, port
from verifier.errors import UsageError

# The largest code a counter scanner is expected to read at arm's length: verifier.core.token.QR_VERSION,
# written out so that the command line starts without loading the cryptography (a test holds them equal).
QR_MAX_VERSION = 16
MOCK_WARNING = (
    "模拟签发方，仅供测试和演示：能访问它的任何人都能签发核验服务接受的令牌，切勿对外开放 / "
    "MOCK issuer, for tests and demos only: anyone who can reach it mints tokens the verifier accepts; never expose it"
)


def register(sub: Any) -> None:
    """Add ``issuer`` and its subcommands to the top-level subparsers ``sub``."""
    p = sub.add_parser(
        "issuer",
        help="模拟签发方：生成亮证码、管理密钥、提供 JWKS / the mock issuer: mint tokens, manage keys, serve the JWKS",
    )
    isub = p.add_subparsers(dest="issuer_command", metavar="COMMAND", required=True)

    m = isub.add_parser("mint", help="输出一个签名的亮证码 / print one signed presentation token")
    m.add_argument(
        "--type",
        required=True,
        dest="licence_type",
        help="证照类型代码，见 verifier catalogue / licence type code (see verifier catalogue)",
    )
    m.add_argument("--province", required=True, choices=("SC", "CQ"), help="签发省份 / issuing province")
    m.add_argument(
        "--channel",
        required=True,
        help="亮证APP的代码，如 tianfu-tongban，见 verifier catalogue"
        " / the app's code, e.g. tianfu-tongban (see verifier catalogue)",
    )
    m.add_argument("--ttl", type=int, default=300, help="有效秒数，最多 600 / seconds the token lives, at most 600")
    m.add_argument(
        "--licence-no",
        help="证照编号（默认按持证人生成） / licence number (default: a synthetic one, stable per holder)",
    )
    m.add_argument(
        "--holder", help="持证人姓名，令牌中打码（默认 张三） / holder name, masked in the token (default 张三)"
    )
    m.add_argument("--unit", help="签发单位，省内有多个时 / issuing unit, when the province has several for the type")
    m.add_argument(
        "--attr",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="证照属性，如 cls=A1 / a type attribute, e.g. cls=A1",
    )
    m.add_argument("--valid-from", type=iso_date, metavar="YYYY-MM-DD", help="证照有效期起 / licence valid from")
    m.add_argument("--valid-until", type=iso_date, metavar="YYYY-MM-DD", help="证照有效期止 / licence valid until")
    m.add_argument(
        "--qr",
        type=new_file,
        metavar="FILE.png",
        help="另存二维码图片（PNG） / also write the token as a QR code (PNG)",
    )
    m.add_argument(
        "--json",
        action="store_true",
        help="以 JSON 输出令牌、声明、过期时间、kid 和大小 / print token, claims, expires_at, kid and size",
    )
    m.set_defaults(func=_mint)

    r = isub.add_parser(
        "rotate", help="为签发单位新增签名密钥，旧钥仍有效 / add a new signing key for a unit; the old one stays valid"
    )
    r.add_argument(
        "--unit",
        required=True,
        help="签发单位代码，见 verifier issuer keys / issuing unit code (see verifier issuer keys)",
    )
    r.add_argument("--alg", choices=("ES256", "EdDSA", "SM2"), default="ES256", help="签名算法 / signature algorithm")
    r.set_defaults(func=_rotate)

    w = isub.add_parser(
        "withdraw", help="停止发布（已泄露的）密钥并销毁 / stop publishing a (compromised) key and destroy it"
    )
    w.add_argument(
        "--kid", required=True, help="密钥编号，见 verifier issuer keys / the key, as `verifier issuer keys` lists it"
    )
    w.set_defaults(func=_withdraw)

    isub.add_parser("keys", help="列出签名密钥 / list the signing keys").set_defaults(func=_keys)
    j = isub.add_parser("jwks", help="输出公钥（JWKS） / print the public keys (JWKS)")
    j.add_argument(
        "--province", choices=("SC", "CQ"), help="只输出该省签发单位的密钥 / that province's units' keys only"
    )
    j.set_defaults(func=_jwks)

    s = isub.add_parser(
        "serve",
        help="模拟签发方（仅供测试和演示）：GET /.well-known/jwks.json、POST /v1/presentations"
        " / the mock issuer (tests and demos only): GET /.well-known/jwks.json, POST /v1/presentations",
    )
    s.add_argument("--host", default="127.0.0.1", help="监听的地址 / address to listen on")
    s.add_argument("--port", type=port, default=8081, help="监听的端口 / port to listen on")
    s.set_defaults(func=_serve)


def qr_code(token: str, *, max_version: int | None = QR_MAX_VERSION) -> Any:
    """The token as a segno QR code at level M; refuse one larger than ``max_version``."""
    import segno

    from verifier.core.token import QR_MAX_BYTES

    qr = segno.make(token, error="m", micro=False, boost_error=False)
    if max_version is not None and int(qr.version) > max_version:
        size = len(token.encode("utf-8"))
        raise UsageError(
            f"令牌 {size} 字节，需要 {qr.version} 版二维码，最大允许 {max_version} 版"
            f"（{QR_MAX_VERSION} 版 M 级容量 {QR_MAX_BYTES} 字节） / "
            f"the token is {size} bytes and needs a version-{qr.version} QR code; at most version {max_version} "
            f"is allowed (a version-{QR_MAX_VERSION} code at level M holds {QR_MAX_BYTES} bytes)"
        )
    return qr


def _state() -> tuple[Any, Any]:
    from verifier.adapters.catalogue_files import load_catalogue
    from verifier.issuer.keys import KeyStore

    catalogue = load_catalogue()
    return catalogue, KeyStore(catalogue.units.values())


def _mint(args: argparse.Namespace) -> int:
    import time

    from verifier.cli.output import print_json
    from verifier.issuer.mint import mint

    attributes = dict(a.partition("=")[::2] for a in args.attr)
    if any(not name for name in attributes):
        raise UsageError("--attr 须为 NAME=VALUE / --attr must be NAME=VALUE")
    catalogue, keys = _state()
    now = time.time()
    minted = mint(
        catalogue,
        keys.keyring(now),
        licence_type=args.licence_type,
        province=args.province,
        channel=args.channel,
        now=now,
        ttl=args.ttl,
        licence_no=args.licence_no,
        holder=args.holder,
        attributes=attributes,
        unit=args.unit,
        valid_from=args.valid_from,
        valid_until=args.valid_until,
    )
    qr = qr_code(minted.token) if args.qr else None
    if args.json:
        answer = {"token": minted.token, "claims": minted.claims, "expires_at": minted.expires_at}
        print_json({**answer, "kid": minted.kid, "size": minted.size})
    else:
        print(minted.token)
    if qr is not None:
        qr.save(args.qr, kind="png", scale=4, border=4)
        print(
            f"{qr.version}-M 版二维码已写入 {args.qr} / QR code version {qr.version}-M written to {args.qr}",
            file=sys.stderr,
        )
    return 0


def _rotate(args: argparse.Namespace) -> int:
    _, keys = _state()
    key = keys.rotate(args.unit, alg=args.alg)
    print(
        f"{key.kid}（{key.alg}）现为 {key.unit} 签名，旧密钥到期前仍有效"
        f" / {key.kid} ({key.alg}) now signs for {key.unit}; older keys of {key.unit} stay valid until they expire"
    )
    return 0


def _withdraw(args: argparse.Namespace) -> int:
    import time

    _, keys = _state()
    key = keys.withdraw(args.kid)
    now = time.time()
    signing = keys.keyring(now).signing_key(key.unit, now).kid
    print(
        f"{key.kid} 已撤回：不再发布，私钥已销毁；{key.unit} 现由 {signing} 签名；"
        "各核验服务在下次刷新信任列表时停止信任它"
        f" / {key.kid} withdrawn: no longer published, its private key destroyed; {signing} now signs for"
        f" {key.unit}; verifiers stop trusting {key.kid} at their next trust-list refresh (--trust-refresh)"
    )
    return 0


def _keys(_args: argparse.Namespace) -> int:
    import time

    from verifier.cli.texttable import render

    _, keys = _state()
    now = time.time()
    ring = keys.keyring(now)
    signing = {ring.signing_key(u, now).kid for u in {k.unit for k in ring.keys if k.valid_at(now)}}
    rows = [
        [
            k.kid,
            k.unit,
            k.province,
            k.alg,
            _when(k.valid_from),
            _when(k.valid_until),
            "是 yes" if k.kid in signing else "",
        ]
        for k in ring.keys
    ]
    headers = ["kid", "签发单位 unit", "省 province", "算法 alg", "生效 from (UTC)", "失效 until (UTC)", "签名中 signs"]
    print(render(headers, rows))
    return 0


def _jwks(args: argparse.Namespace) -> int:
    from verifier.cli.output import print_json
    from verifier.issuer.web import province_jwks

    _, keys = _state()
    print_json(province_jwks(keys.keyring(), args.province))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from verifier.cli.serving import serve_app
    from verifier.issuer.web import create_issuer_app

    catalogue, keys = _state()
    keys.keyring()  # create keys before the first request, not during it
    app = create_issuer_app(catalogue, keys=keys)
    where = f"http://{args.host}:{args.port}"
    banner = f"模拟签发方已在 {where} 监听 / mock issuer listening on {where} (keys in {keys.directory})"
    # The warning first, with the listening line, once bound: a port refused is one line and nothing else.
    serve_app(app, args.host, args.port, banner=f"{MOCK_WARNING}\n{banner}", stream=sys.stderr)
    return 0


def _when(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")
