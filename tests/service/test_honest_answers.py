"""Honest answers and what they leave behind, on both stores: one code serves one business at a counter,
only final answers of verified tokens are stored and cached, a trust list not loaded decides nothing,
restore and revocation show in every later answer, and the statistics count every answer given."""

from __future__ import annotations

import dataclasses

import pytest

from tests.forge import split
from tests.scenes import Scene
from tests.service.desk import NOTARY_2, Desk, SwappableTrust
from verifier.core.identity import SHARD_TAGS
from verifier.core.stats import stats_document
from verifier.errors import RateLimitedError, TrustNotLoadedError
from verifier.issuer.mint import citizen_id
from verifier.service.ports import ScanStore
from verifier.service.scan import ScanResult


def codes(result: ScanResult) -> list[str]:
    """The reason codes answered."""
    return [code for code, _ in result.record.reasons]


async def test_a_code_serves_one_business_at_its_counter(scene: Scene, store: ScanStore) -> None:
    """Accepted for one business and serial number, the same code at the same counter with another serial is
    ALREADY_USED_HERE; for the same business and serial (another clerk) it stays the cached acceptance; at
    another counter it is REPLAYED."""
    desk = Desk(scene, store)
    token = scene.driving_licence("SC")
    first = await desk.scan(token, serial_no="YW-1")
    assert (first.record.decision, first.cached) == ("accepted", False)
    again = await desk.scan(token, serial_no="YW-1", operator="another-clerk")
    assert (again.record.decision, again.cached, again.record.scan_id) == ("accepted", True, first.record.scan_id)
    other_serial = await desk.scan(token, serial_no="YW-2")
    assert (other_serial.record.decision, codes(other_serial)) == ("rejected", ["ALREADY_USED_HERE"])
    assert (await desk.scan(token, serial_no="YW-2")).cached is True  # a final answer: cached in its turn
    elsewhere = await desk.scan(token, counter=NOTARY_2, serial_no="YW-1")
    assert codes(elsewhere) == ["REPLAYED"]


async def test_already_used_here_for_another_business_the_counter_handles(scene: Scene, store: ScanStore) -> None:
    """A feed production licence accepted for inspection at a counter that also handles contract processing
    (which the licence serves too) is ALREADY_USED_HERE for that business, not REPLAYED and not accepted."""
    desk = Desk(scene, store)
    token = scene.apps["tianfu-tongban"].present("feed-production", "SC").token
    counter = "cq-agri-commission-01"
    first = await desk.scan(token, counter=counter, scenario="inspection-enforcement")
    assert first.record.decision == "accepted"
    other = await desk.scan(token, counter=counter, scenario="contract-processing")
    assert codes(other) == ["ALREADY_USED_HERE"]
    assert (await desk.scan(token, counter=counter, scenario="inspection-enforcement")).cached is True


async def test_an_unverified_token_leaves_no_record_and_is_decided_anew(scene: Scene, store: ScanStore) -> None:
    """A token whose key the trust list does not know yet is answered KEY_UNKNOWN but neither stored nor
    cached: once a refresh brings the key, the same code at the same counter is accepted."""
    full = scene.keyring.trust_list()
    token = scene.driving_licence("SC")
    kid = split(token)[0]["kid"]
    trust = SwappableTrust(dataclasses.replace(full, keys={k: v for k, v in full.keys.items() if k != kid}))
    desk = Desk(scene, store, trust)
    first = await desk.scan(token)
    assert codes(first) == ["KEY_UNKNOWN"]
    assert await desk.service.get_scan(first.record.scan_id) is None
    trust.current = full
    assert (await desk.scan(token)).record.decision == "accepted"


async def test_a_rejection_time_undoes_is_not_cached(scene: Scene, store: ScanStore) -> None:
    """A token issued a little ahead of this instance's clock is ISSUED_IN_FUTURE now and accepted at the same
    counter once the clock has caught up: that rejection was answered, not cached."""
    desk = Desk(scene, store)
    token = scene.apps["jiaoguan-12123"].present("driving-licence", "SC", now=desk.now + 30).token
    assert codes(await desk.scan(token)) == ["ISSUED_IN_FUTURE"]
    desk.now += 31
    assert (await desk.scan(token)).record.decision == "accepted"


async def test_a_final_rejection_is_cached(scene: Scene, store: ScanStore) -> None:
    """A rejection nothing can change (a business this licence does not serve) is stored and answered again
    from the cache."""
    desk = Desk(scene, store)
    token = scene.driving_licence("SC")
    first = await desk.scan(token, counter="sc-chengdu-library-01", scenario="library-borrowing")
    assert first.record.decision == "rejected"
    again = await desk.scan(token, counter="sc-chengdu-library-01", scenario="library-borrowing")
    assert (again.cached, again.record.scan_id) == (True, first.record.scan_id)


async def test_no_trust_list_decides_nothing(scene: Scene, store: ScanStore) -> None:
    """Before any trust list is loaded a scan is not decided (503), never rejected KEY_UNKNOWN."""
    empty = dataclasses.replace(scene.keyring.trust_list(), keys={})
    desk = Desk(scene, store, SwappableTrust(empty))
    with pytest.raises(TrustNotLoadedError):
        await desk.scan(scene.driving_licence("SC"))
    assert await store.stats() == {}


async def test_restore_undoes_a_revoked_answer_and_get_shows_the_state_now(scene: Scene, store: ScanStore) -> None:
    """An accepted scan shown again after its licence is revoked says REVOKED (a re-scan and GET alike); a code
    answered REVOKED is decided anew once the licence is restored."""
    desk = Desk(scene, store)
    number = citizen_id(901_234)
    accepted = await desk.scan(scene.driving_licence("SC", licence_no=number))
    await desk.service.revoke("driving-licence", "SC", number, reason="lost")
    shown = await desk.service.get_scan(accepted.record.scan_id)
    assert shown is not None
    assert (shown.decision, shown.reasons[0][0]) == ("rejected", "REVOKED")
    token = scene.driving_licence("SC", licence_no=number)
    assert codes(await desk.scan(token, counter=NOTARY_2)) == ["REVOKED"]
    await desk.service.revoke("driving-licence", "SC", number, reason="", restore=True)
    restored = await desk.scan(token, counter=NOTARY_2)
    assert (restored.record.decision, restored.cached) == ("accepted", False)
    shown = await desk.service.get_scan(accepted.record.scan_id)
    assert shown is not None
    assert shown.decision == "accepted"


async def test_statistics_count_every_answer_given(scene: Scene, store: ScanStore) -> None:
    """The statistics equal what counters saw: first scans and re-scans, cached REVOKED answers as REVOKED,
    unverified tokens; re-scans also counted apart."""
    desk = Desk(scene, store)
    number = citizen_id(905_678)
    token = scene.driving_licence("SC", licence_no=number)
    answers = [await desk.scan(token), await desk.scan(token)]  # accepted, then the cached acceptance
    await desk.service.revoke("driving-licence", "SC", number, reason="lost")
    answers.append(await desk.scan(token))  # the cached acceptance, now REVOKED
    answers.append(await desk.scan("not-a-token"))
    answers.append(await desk.scan(token, counter=NOTARY_2))  # REVOKED at another counter
    given = {"accepted": 0, "rejected": 0}
    for answer in answers:
        given[answer.record.decision] += 1
    document = stats_document(await store.stats())
    assert {k: document["total"][k] for k in given} == given == {"accepted": 2, "rejected": 3}
    assert document["rescans"] == 2
    assert document["by_kind"]["rescan"] == {"accepted": 1, "rejected": 1}
    assert document["by_reason"] == {"REVOKED": 2, "TOKEN_MALFORMED": 1}


async def test_a_counter_over_its_rate_is_refused_and_nothing_is_stored(scene: Scene, store: ScanStore) -> None:
    """With a rate of 1 scan/s and a burst of 3, a fourth scan at once is refused with the wait, whatever the
    token (junk or real), and stores nothing; another counter keeps its own budget."""
    desk = Desk(scene, store, counter_rate=1.0, counter_burst=3)
    for _ in range(3):
        await desk.scan("junk")
    token = scene.driving_licence("SC")
    with pytest.raises(RateLimitedError) as over:
        await desk.scan(token)
    assert 0 < over.value.retry_after <= 1.0
    assert (await desk.scan(token, counter=NOTARY_2)).record.decision == "accepted"
    assert sum(v for k, v in (await store.stats()).items() if k.startswith("scans|")) == 4


async def test_scan_ids_say_nothing_of_the_licence(scene: Scene, store: ScanStore) -> None:
    """A scan id is one of sixteen shard tags and random text: two scans of one licence at two counters share
    nothing a reader could use to link them beyond that tag."""
    desk = Desk(scene, store)
    number = citizen_id(909_999)
    one = await desk.scan(scene.driving_licence("SC", licence_no=number))
    two = await desk.scan(scene.driving_licence("SC", licence_no=number), counter=NOTARY_2)
    tag, _, rest = one.record.scan_id.partition("-")
    assert tag in SHARD_TAGS
    assert len(rest) == 16
    assert rest != two.record.scan_id.partition("-")[2]
    assert number not in one.record.to_json()
