"""The mock issuer's HTTP service, built through its factory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Client, ClientFactory, assert_problem
from verifier.core.catalogue import Catalogue
from verifier.core.token import ALGORITHMS, parse
from verifier.core.trust import parse_trust_list
from verifier.issuer.keys import KeyStore
from verifier.issuer.web import create_issuer_app

NOW = 1_790_000_000


@pytest.fixture
def keys(catalogue: Catalogue, tmp_path: Path) -> KeyStore:
    """Keys in a folder of this test's own."""
    return KeyStore(catalogue.units.values(), tmp_path)


@pytest.fixture
async def client(aiohttp_client: ClientFactory, catalogue: Catalogue, keys: KeyStore) -> Client:
    """A client of the issuer app on a fixed clock."""
    return await aiohttp_client(create_issuer_app(catalogue, keys=keys, clock=lambda: NOW))


async def _problem(client: Client, body: Any, status: int, *, raw: bytes | None = None) -> dict[str, Any]:
    """POST ``body`` (or the bytes ``raw``) as a presentation request; the problem it is answered with."""
    response = (
        await client.post("/v1/presentations", json=body)
        if raw is None
        else await client.post("/v1/presentations", data=raw, headers={"Content-Type": "application/json"})
    )
    return await assert_problem(response, status)


async def test_jwks_lists_a_key_of_every_unit(client: Client, catalogue: Catalogue) -> None:
    """GET /.well-known/jwks.json is a trust list with one valid key per issuing unit."""
    response = await client.get("/.well-known/jwks.json")
    assert response.status == 200
    trust = parse_trust_list(await response.json())
    assert trust.problems == ()
    assert sorted(k.unit for k in trust.keys.values()) == sorted(catalogue.units)


async def test_a_presentation_is_a_token_that_verifies_with_the_published_key(client: Client) -> None:
    """POST /v1/presentations answers token, claims and expiry; the token verifies with its unit's key in the JWKS."""
    body = {"type": "driving-licence", "province": "CQ", "channel": "jiaoguan-12123", "holder": "欧阳娜娜", "ttl": 120}
    response = await client.post("/v1/presentations", json=body)
    assert response.status == 200
    answer = await response.json()
    assert answer["expires_at"] == NOW + 120
    assert answer["claims"]["hn"] == "欧阳**"
    assert answer["claims"]["lt"] == 1  # the driving licence, by its seq
    parsed = parse(answer["token"])
    assert parsed.claims == answer["claims"]
    trust = parse_trust_list(await (await client.get("/.well-known/jwks.json")).json())
    key = trust.keys[parsed.header["kid"]]
    assert (key.unit, key.province) == ("cq-police", "CQ")
    assert ALGORITHMS[key.alg].verify(parsed.signing_input, key.public_key, parsed.signature)


async def test_a_channel_the_type_does_not_allow_is_422_naming_the_allowed(client: Client) -> None:
    """A driving licence through 渝快办 is a 422 problem whose allowed lists jiaoguan-12123."""
    problem = await _problem(client, {"type": "driving-licence", "province": "SC", "channel": "yukuaiban"}, 422)
    assert (problem["field"], problem["allowed"]) == ("channel", ["jiaoguan-12123"])
    assert "交管12123" in problem["detail"]


async def test_a_licence_number_not_of_its_kind_is_422(client: Client) -> None:
    """A 20-character driving licence number is a 422 problem on licence_no: a driving licence's number is a
    citizen ID number, and the problem says so in both languages."""
    body = {"type": "driving-licence", "province": "SC", "channel": "jiaoguan-12123", "licence_no": "5" * 20}
    problem = await _problem(client, body, 422)
    citizen_id = "an 18-character citizen ID number with its check character"
    assert (problem["field"], problem["allowed"]) == ("licence_no", [citizen_id])
    assert "18 位公民身份号码" in problem["detail"]
    assert f"a driving-licence number is {citizen_id}" in problem["detail"]


async def test_an_app_of_the_other_province_is_422(client: Client) -> None:
    """天府通办 asked for a Chongqing licence is a 422 problem allowing yukuaiban."""
    problem = await _problem(client, {"type": "tour-guide", "province": "CQ", "channel": "tianfu-tongban"}, 422)
    assert problem["allowed"] == ["yukuaiban"]


async def test_a_row_whose_channels_were_lost_is_422(client: Client) -> None:
    """Row 7 (vet-drug-production) is a 422 problem saying its channels were lost."""
    problem = await _problem(
        client, {"type": "vet-drug-production", "province": "SC", "channel": "tianfu-tongban"}, 422
    )
    assert problem["field"] == "type"
    assert "lost its channels" in problem["detail"]


async def test_a_ttl_over_the_cap_is_422(client: Client) -> None:
    """A ttl of 601 s is a 422 problem allowing 1..600."""
    problem = await _problem(
        client, {"type": "mineral", "province": "SC", "channel": "tianfu-tongban", "ttl": 601}, 422
    )
    assert problem["allowed"] == ["1..600"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"type": "mineral", "province": "SC"}, "channel", id="missing-channel"),
        pytest.param({"province": "SC", "channel": "tianfu-tongban"}, "type", id="missing-type"),
        pytest.param(
            {"type": "mineral", "province": "SC", "channel": "tianfu-tongban", "ttl": "300"}, "ttl", id="ttl-string"
        ),
        pytest.param(
            {"type": "mineral", "province": "SC", "channel": "tianfu-tongban", "ttl": True}, "ttl", id="ttl-bool"
        ),
        pytest.param(
            {"type": "mineral", "province": "SC", "channel": "tianfu-tongban", "licenceNo": "1"},
            "licenceNo",
            id="unknown-field",
        ),
        pytest.param(["mineral"], "body", id="not-an-object"),
    ],
)
async def test_malformed_requests_are_400_naming_the_field(client: Client, body: Any, field: str) -> None:
    """A body with a field missing, mistyped or unknown is a 400 problem naming that field."""
    problem = await _problem(client, body, 400)
    assert problem["field"] == field
    assert field in problem["detail"] or field == "body"


async def test_a_body_that_is_not_json_is_400(client: Client) -> None:
    """A body that does not parse as JSON is a 400 problem."""
    problem = await _problem(client, None, 400, raw=b'{"type": ')
    assert "not valid JSON" in problem["detail"]


async def test_an_unknown_path_is_a_404_problem(client: Client) -> None:
    """Routing errors are problem documents too."""
    await assert_problem(await client.get("/v1/nothing"), 404)


async def test_a_rotation_made_elsewhere_signs_the_next_presentation(
    client: Client, catalogue: Catalogue, keys: KeyStore
) -> None:
    """After `issuer rotate` in another process, the running issuer signs with the new key and publishes both."""
    await client.get("/.well-known/jwks.json")
    KeyStore(catalogue.units.values(), keys.directory).rotate("sc-sport", alg="EdDSA", now=NOW)
    response = await client.post(
        "/v1/presentations", json={"type": "sports-instructor", "province": "SC", "channel": "tianfu-tongban"}
    )
    parsed = parse((await response.json())["token"])
    assert parsed.header["kid"] == "sc-sport-2"
    assert parsed.header["alg"] == "EdDSA"
    kids = {k["kid"] for k in (await (await client.get("/.well-known/jwks.json")).json())["keys"]}
    assert {"sc-sport-1", "sc-sport-2"} <= kids


@pytest.mark.parametrize("province", ["SC", "CQ"])
async def test_each_province_s_keys_are_published_beside_the_combined_list(
    client: Client, catalogue: Catalogue, province: str
) -> None:
    """GET /.well-known/jwks.json?province=SC (or CQ) is the combined list's keys of that province's units,
    every one of them, as each province's licence platform publishes its own."""
    combined = (await (await client.get("/.well-known/jwks.json")).json())["keys"]
    response = await client.get("/.well-known/jwks.json", params={"province": province})
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-cache"
    published = (await response.json())["keys"]
    assert published == [k for k in combined if k["province"] == province]
    assert {k["unit"] for k in published} == {code for code, u in catalogue.units.items() if u.province == province}


@pytest.mark.parametrize("province", ["BJ", "sc", ""])
async def test_an_unknown_province_is_a_400_problem(client: Client, province: str) -> None:
    """?province= other than SC or CQ is a 400 problem naming the field, never the combined list."""
    response = await client.get("/.well-known/jwks.json", params={"province": province})
    problem = await assert_problem(response, 400, "SC or CQ")
    assert problem["field"] == "province"


async def test_a_withdrawn_key_is_no_longer_published(client: Client, catalogue: Catalogue, keys: KeyStore) -> None:
    """After `issuer withdraw` in another process the running issuer publishes neither the key nor, for its
    province, anything but the unit's replacement, and signs with the replacement."""
    await client.get("/.well-known/jwks.json")
    KeyStore(catalogue.units.values(), keys.directory).withdraw("cq-police-1", now=NOW)
    for query in ({}, {"province": "CQ"}):
        kids = {k["kid"] for k in (await (await client.get("/.well-known/jwks.json", params=query)).json())["keys"]}
        assert "cq-police-1" not in kids
        assert "cq-police-2" in kids
    response = await client.post(
        "/v1/presentations", json={"type": "driving-licence", "province": "CQ", "channel": "jiaoguan-12123"}
    )
    assert parse((await response.json())["token"]).header["kid"] == "cq-police-2"
