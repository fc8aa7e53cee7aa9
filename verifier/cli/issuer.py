"""``verifier issuer …``: mint a token, rotate and list keys, print the JWKS, serve the mock issuer.

Registered by :func:`verifier.cli.main.build_parser`; heavy imports wait until a command runs.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

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
    p = sub.add_parser("issuer", help="the mock issuer: mint tokens, manage keys, serve JWKS and tokens over HTTP")
    isub = p.add_subparsers(dest="issuer_command", required=True)

    m = isub.add_parser("mint", help="print one signed presentation token")
    m.add_argument("--type", required=True, dest="licence_type", help="licence type code (see `verifier catalogue`)")
    m.add_argument("--province", required=True, choices=("SC", "CQ"), help="issuing province")
    m.add_argument("--channel", required=True, help="the app showing it, e.g. tianfu-tongban")
    m.add_argument("--ttl", type=int, default=300, help="seconds the token lives (default 300, at most 600)")
    m.add_argument("--licence-no", help="licence number (default: a synthetic one, stable per holder)")
    m.add_argument("--holder", help="holder name, masked in the token (default 张三)")
    m.add_argument("--unit", help="issuing unit, when the province has several for the type")
    m.add_argument("--attr", action="append", default=[], metavar="NAME=VALUE", help="a type attribute, e.g. cls=A1")
    m.add_argument("--valid-from", type=date.fromisoformat, metavar="YYYY-MM-DD", help="licence valid from")
    m.add_argument("--valid-until", type=date.fromisoformat, metavar="YYYY-MM-DD", help="licence valid until")
    m.add_argument("--qr", type=Path, metavar="FILE.png", help="also write the token as a QR code (PNG)")
    m.add_argument("--json", action="store_true", help="print token, claims, expires_at, kid and size as JSON")
    m.set_defaults(func=_mint)

    r = isub.add_parser("rotate", help="add a new signing key for a unit; the old one stays valid")
    r.add_argument("--unit", required=True, help="issuing unit code")
    r.add_argument(
        "--alg", choices=("ES256", "EdDSA", "SM2"), default="ES256", help="signature algorithm (default ES256)"
    )
    r.set_defaults(func=_rotate)

    w = isub.add_parser("withdraw", help="stop publishing a (compromised) key and destroy it")
    w.add_argument("--kid", required=True, help="the key, as `verifier issuer keys` lists it")
    w.set_defaults(func=_withdraw)

    isub.add_parser("keys", help="list the signing keys").set_defaults(func=_keys)
    j = isub.add_parser("jwks", help="print the public keys (JWKS)")
    j.add_argument("--province", choices=("SC", "CQ"), help="that province's units' keys only")
    j.set_defaults(func=_jwks)

    s = isub.add_parser(
        "serve", help="the mock issuer (tests and demos only): GET /.well-known/jwks.json, POST /v1/presentations"
    )
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8081)
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
        print(f"QR code version {qr.version}-M written to {args.qr}", file=sys.stderr)
    return 0


def _rotate(args: argparse.Namespace) -> int:
    _, keys = _state()
    key = keys.rotate(args.unit, alg=args.alg)
    print(f"{key.kid} ({key.alg}) now signs for {key.unit}; older keys of {key.unit} stay valid until they expire")
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
        [k.kid, k.unit, k.province, k.alg, _when(k.valid_from), _when(k.valid_until), "yes" if k.kid in signing else ""]
        for k in ring.keys
    ]
    print(render(["kid", "unit", "province", "alg", "valid from (UTC)", "valid until (UTC)", "signs"], rows))
    return 0


def _jwks(args: argparse.Namespace) -> int:
    from verifier.cli.output import print_json
    from verifier.issuer.web import province_jwks

    _, keys = _state()
    print_json(province_jwks(keys.keyring(), args.province))
    return 0


def _serve(args: argparse.Namespace) -> int:
    from verifier.issuer.web import create_issuer_app
    from verifier.web.server import run

    catalogue, keys = _state()
    keys.keyring()  # create keys before the first request, not during it
    print(MOCK_WARNING, file=sys.stderr)
    print(f"mock issuer: keys in {keys.directory}", file=sys.stderr)
    print(f"mock issuer listening on http://{args.host}:{args.port}", file=sys.stderr)
    run(create_issuer_app(catalogue, keys=keys), args.host, args.port)
    return 0


def _when(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M")
