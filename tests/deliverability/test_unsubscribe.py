"""Unsubscribe links: signed tokens (tamper, expiry, key rotation), the link in every email, the
RFC 8058 headers, and GET/POST /u/{token} end to end through the web app."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from deliverability_support import PUBLIC_URL, email_sequence, memory_adapters, subscriber
from fastapi.testclient import TestClient

from dripdrop.crypto import KeyRing, generate_key
from dripdrop.engine.unsubscribe import Signer, TokenError
from dripdrop.testing import TestEnv, outbox
from dripdrop.web import create_app

NOW = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def _sign(signer: Signer, **overrides):
    values = dict(
        channel="email",
        recipient="ada@example.com",
        tenant_key="acme",
        category="marketing",
        enrollment_id="0190f2b4-0000-7000-8000-000000000001",
        expires_at=NOW + timedelta(days=30),
    )
    values.update(overrides)
    return signer.sign(**values)


def test_a_token_round_trips_and_carries_what_it_was_given():
    signer = Signer(KeyRing([generate_key()]))
    claim = signer.verify(_sign(signer), NOW)
    assert (claim.channel, claim.recipient, claim.tenant_key, claim.category) == (
        "email",
        "ada@example.com",
        "acme",
        "marketing",
    )
    assert claim.enrollment_id.endswith("0001")
    assert claim.expires_at == NOW + timedelta(days=30)


def test_a_tampered_token_is_refused():
    signer = Signer(KeyRing([generate_key()]))
    token = _sign(signer)
    payload, mac = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body[4] = "someone.else@example.com"  # another recipient, same MAC
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).decode().rstrip("=")
    for bad in (
        f"{forged}.{mac}",
        f"{payload}.{mac[:-2]}AA",
        token[:-1],
        payload,
        "",
        "x" * 5000,
        "..",
        "%%%.$$$",
        "W10.AAAA",
    ):
        with pytest.raises(TokenError) as caught:
            signer.verify(bad, NOW)
        assert not caught.value.expired


def test_an_expired_token_says_so():
    signer = Signer(KeyRing([generate_key()]))
    token = _sign(signer, expires_at=NOW + timedelta(hours=1))
    signer.verify(token, NOW + timedelta(minutes=59))
    with pytest.raises(TokenError) as caught:
        signer.verify(token, NOW + timedelta(hours=1))
    assert caught.value.expired


def test_rotation_old_links_work_while_the_old_key_is_in_the_ring():
    old, new = generate_key(), generate_key()
    token = _sign(Signer(KeyRing([old])))
    rotated = Signer(KeyRing([new, old]))
    assert rotated.verify(token, NOW).recipient == "ada@example.com"
    new_token = _sign(rotated)  # signed with the newest key…
    assert Signer(KeyRing([new])).verify(new_token, NOW)
    with pytest.raises(TokenError):  # …and the old key alone cannot verify it
        Signer(KeyRing([old])).verify(new_token, NOW)
    with pytest.raises(TokenError):  # the old key retired: its links stop working
        Signer(KeyRing([new])).verify(token, NOW)


def test_the_unsubscribe_key_is_not_the_encryption_key():
    key = generate_key()
    ring = KeyRing([key])
    [(_kid, derived)] = ring.derive(b"dripdrop unsubscribe link v1")
    assert derived != base64.b64decode(key) and len(derived) == 32
    assert ring.derive(b"another purpose")[0][1] != derived


@pytest.fixture
def public(database_url, clock):
    env = TestEnv(database_url, clock=clock, public_url=PUBLIC_URL + "/")
    try:
        yield env
    finally:
        env.close()


def _link(message) -> str:
    return message.payload["unsubscribe_url"]


def test_every_email_gets_a_link_in_its_body_and_its_headers_field(public):
    dd = public.dd
    memory_adapters(dd)
    email_sequence(dd, "promo", steps=1, category="marketing")
    dd.enroll("promo", subscriber(1), data={"name": "Ada", "email": "Ada@Example.com"})
    dd.run_due()
    [message] = outbox("email")
    url = _link(message)
    assert url.startswith(PUBLIC_URL + "/u/")
    assert f"href='{url}'" in message.payload["body"]
    claim = Signer(dd.runtime.keyring).verify(url.rsplit("/", 1)[1], public.clock())
    assert (claim.recipient, claim.category, claim.tenant_key) == (
        "ada@example.com",
        "marketing",
        None,
    )


def test_no_public_url_no_link(dd):
    memory_adapters(dd)
    email_sequence(dd, "plain", steps=1)
    dd.enroll("plain", subscriber(1), data={"email": "ada@example.com"})
    dd.run_due()
    [message] = outbox("email")
    assert "unsubscribe_url" not in message.payload
    assert "href=''" in message.payload["body"]


def test_a_step_with_its_own_unsubscribe_url_keeps_it(public):
    dd = public.dd
    memory_adapters(dd)
    seq = dd.create_sequence(name="own", key="own", category="marketing")
    version = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(
        version.id,
        name="own",
        channel="email",
        config={
            "subject": "s",
            "body": "{{ unsubscribe_url }}",
            "unsubscribe_url": "https://prefs.example.com/x",
        },
    )
    dd.enroll("own", subscriber(1), data={"email": "ada@example.com"})
    dd.run_due()
    [message] = outbox("email")
    assert message.payload["unsubscribe_url"] == "https://prefs.example.com/x"
    assert message.payload["body"].startswith(PUBLIC_URL + "/u/")


def _first_link(dd) -> str:
    dd.run_due()
    [message] = [m for m in outbox("email") if m.metadata["sequence_key"] == "promo"]
    return _link(message)


def _path(url: str) -> str:
    return url.removeprefix(PUBLIC_URL)


def test_get_shows_a_page_and_post_unsubscribes_and_ends_the_category(public):
    dd = public.dd
    memory_adapters(dd)
    email_sequence(dd, "promo", steps=3, category="marketing")
    email_sequence(dd, "promo2", steps=3, category="marketing")
    email_sequence(dd, "receipts", steps=3, category="transactional")
    email_sequence(dd, "tips", steps=3, category="product")
    enrolled = {
        key: dd.enroll(key, subscriber(1), data={"email": "ada@example.com"})
        for key in ("promo", "promo2", "receipts", "tips")
    }
    other = dd.enroll("promo2", subscriber(2), data={"email": "bo@example.com"})
    url = _first_link(dd)

    with TestClient(create_app(dd)) as client:
        page = client.get(_path(url))
        assert page.status_code == 200
        assert "ada@example.com" in page.text and '<form method="post"' in page.text
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["referrer-policy"] == "no-referrer"
        assert "http" not in page.text.split("<body>")[1]  # no external assets
        assert not dd.list_suppressions(all_tenants=True)  # a GET changes nothing

        done = client.post(
            _path(url),
            content="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert done.status_code == 200 and "no longer receive" in done.text
        again = client.post(_path(url), content="List-Unsubscribe=One-Click")
        assert again.status_code == 200

    [row] = dd.list_suppressions(all_tenants=True)
    assert (row.channel, row.recipient, row.reason, row.category, row.tenant_key) == (
        "email",
        "ada@example.com",
        "unsubscribe",
        "marketing",
        None,
    )
    states = {key: dd.get_enrollment_by_id(e.id).state for key, e in enrolled.items()}
    assert states == {
        "promo": "cancelled",
        "promo2": "cancelled",
        "receipts": "active",
        "tips": "active",
    }
    assert dd.get_enrollment_by_id(other.id).state == "active"
    cancelled = [x for x in dd.list_executions(enrolled["promo2"].id) if x.state == "cancelled"]
    assert cancelled and {x.error_message for x in cancelled} == {"cancelled: unsubscribed"}


def test_an_unsubscribed_address_gets_no_more_of_that_category(public):
    dd = public.dd
    memory_adapters(dd)
    email_sequence(dd, "promo", steps=1, category="marketing")
    email_sequence(dd, "later", steps=1, category="marketing")
    dd.enroll("promo", subscriber(1), data={"email": "ada@example.com"})
    url = _first_link(dd)
    with TestClient(create_app(dd)) as client:
        assert client.post(_path(url), content="List-Unsubscribe=One-Click").status_code == 200
    # the same address, enrolled later under another subscriber id: still suppressed
    late = dd.enroll("later", subscriber(99), data={"email": "ADA@example.com"})
    dd.run_due()
    [x] = dd.list_executions(late.id)
    assert (x.state, x.error_message) == ("skipped", "suppressed: unsubscribe")


@pytest.mark.parametrize(
    ("mangle", "status"),
    [
        (lambda t: t[:-3] + "AAA", 400),
        (lambda t: "garbage", 400),
        (lambda t: "a" * 3000 + "." + "b" * 3000, 400),
        (lambda t: t.replace(".", ".%00"), 400),
    ],
)
def test_bad_tokens_get_a_page_never_a_server_error(public, mangle, status):
    dd = public.dd
    memory_adapters(dd)
    email_sequence(dd, "promo", steps=1, category="marketing")
    dd.enroll("promo", subscriber(1), data={"email": "ada@example.com"})
    url = _first_link(dd)
    token = url.rsplit("/", 1)[1]
    with TestClient(create_app(dd), raise_server_exceptions=True) as client:
        for method in (client.get, client.post):
            answer = method(f"/u/{mangle(token)}")
            assert answer.status_code == status
            assert "not valid" in answer.text
    assert not dd.list_suppressions(all_tenants=True)


def test_an_expired_link_gets_410(public):
    dd = public.dd
    memory_adapters(dd)
    email_sequence(dd, "promo", steps=1, category="marketing")
    dd.enroll("promo", subscriber(1), data={"email": "ada@example.com"})
    url = _first_link(dd)
    public.clock.advance(days=91)  # the default lifetime is 90 days
    with TestClient(create_app(dd)) as client:
        answer = client.post(_path(url), content="List-Unsubscribe=One-Click")
    assert answer.status_code == 410 and "expired" in answer.text
    assert not dd.list_suppressions(all_tenants=True)


def test_a_link_of_another_instance_key_is_refused(public, database_url):
    dd = public.dd
    memory_adapters(dd)
    email_sequence(dd, "promo", steps=1, category="marketing")
    dd.enroll("promo", subscriber(1), data={"email": "ada@example.com"})
    url = _first_link(dd)
    other = TestEnv(database_url, public_url=PUBLIC_URL)  # another key ring
    try:
        with TestClient(create_app(other.dd)) as client:
            assert client.post(_path(url)).status_code == 400
    finally:
        other.close()


def test_public_url_and_ttl_are_checked(database_url):
    from dripdrop import DripDrop
    from dripdrop.errors import ValidationError

    for bad in ("ftp://x", "app.example.com", "https://x/?a=1", "https://x/<script>", 42):
        with pytest.raises(ValidationError, match="public_url"):
            DripDrop(database_url, schema="unused_x", public_url=bad)
    with pytest.raises(ValidationError, match="unsubscribe_ttl"):
        DripDrop(database_url, schema="unused_x", unsubscribe_ttl=timedelta(seconds=5))
    with pytest.raises(ValidationError, match="phone_region"):
        DripDrop(database_url, schema="unused_x", phone_region="Atlantis")


def _fields(problems) -> list[str]:
    return sorted(p.field for p in problems)


def test_readiness_a_marketing_email_needs_public_url_and_a_link(dd, public):
    memory_adapters(dd)
    memory_adapters(public.dd)
    for d in (dd, public.dd):
        email_sequence(d, "linked", steps=1, category="marketing")
        email_sequence(d, "bare", steps=1, category="marketing", body="<p>Hi</p>")
        email_sequence(d, "product", steps=1, category="product", body="<p>Hi</p>")

    def problems(d, key):
        seq = d.get_sequence(key)
        return d.check_version(d.get_active_version(seq.id).id)

    # no public_url: every marketing email step is a problem; other categories are not
    assert _fields(problems(dd, "linked")) == ["public_url"]
    assert _fields(problems(dd, "bare")) == ["config.body", "public_url"]
    assert problems(dd, "product") == []
    # with public_url: only the step that never shows its link
    assert problems(public.dd, "linked") == []
    [problem] = problems(public.dd, "bare")
    assert "{{ unsubscribe_url }}" in problem.message
    # activation refuses such a version unless forced
    seq = dd.create_sequence(name="new", key="new", category="marketing")
    version = dd.create_sequence_version(seq.id)
    dd.create_step(version.id, name="s", channel="email", config={"subject": "s", "body": "b"})
    with pytest.raises(Exception, match="unsubscribe"):
        dd.activate_version(version.id)
    dd.update_sequence(seq.id, category="product")
    dd.activate_version(version.id)


def test_category_over_rest(dd):
    key = dd.create_api_key("w", scopes=["write"])
    auth = {"Authorization": f"Bearer {key.secret}"}
    with TestClient(create_app(dd)) as client:
        made = client.post(
            "/api/v1/sequences",
            json={"name": "P", "key": "p", "category": "marketing"},
            headers=auth,
        )
        assert made.status_code == 201 and made.json()["category"] == "marketing"
        changed = client.patch(
            f"/api/v1/sequences/{made.json()['id']}", json={"category": None}, headers=auth
        )
        assert changed.status_code == 200 and changed.json()["category"] is None
        bad = client.post(
            "/api/v1/sequences", json={"name": "Q", "key": "q", "category": "BAD!"}, headers=auth
        )
        assert bad.status_code == 422 and "category" in bad.json()["errors"]
