"""The suppression operations: normalisation, idempotence, reasons, checks of their input; and
REST /api/v1/suppressions with tenant isolation."""

from __future__ import annotations

import phonenumbers
import pytest
from fastapi.testclient import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st

from dripdrop.definitions.suppressions import normalise_recipient, write_suppression
from dripdrop.errors import ValidationError
from dripdrop.web import create_app

_LOCAL = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._+-",
    min_size=1,
    max_size=20,
).filter(lambda s: not s.startswith(".") and not s.endswith(".") and ".." not in s)
_DOMAIN = st.from_regex(r"[a-zA-Z0-9]{1,10}\.(com|org|example|CO\.UK)", fullmatch=True)


@settings(max_examples=300, deadline=None)
@given(local=_LOCAL, domain=_DOMAIN, pad=st.sampled_from(["", " ", "\t", "  "]))
def test_emails_are_trimmed_and_lower_cased(local, domain, pad):
    address = f"{local}@{domain}"
    expected = address.lower()
    assert normalise_recipient("email", f"{pad}{address}{pad}") == expected
    assert normalise_recipient("email", address.upper()) == expected
    assert normalise_recipient("email", f"Someone <{address}>") == expected
    # idempotent: a normalised address normalises to itself
    assert normalise_recipient("email", expected) == expected


@pytest.mark.parametrize(
    "bad", ["", "   ", "ada", "ada@", "a@b.com, c@d.com", "a@b.com\r\nBcc: x@y.com", None, 5]
)
def test_not_one_email_address_is_refused(bad):
    with pytest.raises(ValidationError) as caught:
        normalise_recipient("email", bad)
    assert "recipient" in caught.value.errors


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("(415) 555-2671", "US", "+14155552671"),
        ("415.555.2671", "US", "+14155552671"),
        ("+1 415 555 2671", None, "+14155552671"),
        ("07700 900123", "GB", "+447700900123"),
        ("+44 (0)7700 900123", "US", "+447700900123"),  # an explicit country wins
        ("030 1234567", "DE", "+49301234567"),
        ("06 12 34 56 78", "FR", "+33612345678"),
        ("0412 345 678", "AU", "+61412345678"),
        ("090-1234-5678", "JP", "+819012345678"),
        ("98765 43210", "IN", "+919876543210"),
        ("11 91234-5678", "BR", "+5511912345678"),
    ],
)
def test_phone_numbers_become_e164(raw, region, e164):
    assert normalise_recipient("sms", raw, region) == e164
    assert phonenumbers.is_possible_number(phonenumbers.parse(e164))


@pytest.mark.parametrize(
    ("raw", "region"), [("07700 900123", None), ("12", "US"), ("call me", "GB")]
)
def test_bad_phone_numbers_are_refused(raw, region):
    with pytest.raises(ValidationError) as caught:
        normalise_recipient("sms", raw, region)
    assert "recipient" in caught.value.errors


def test_suppress_is_idempotent_and_never_weakens_a_reason(dd):
    first = dd.suppress("email", "Ada@Example.com", reason="bounce")
    again = dd.suppress("email", "ada@example.com ", reason="unsubscribe")
    stronger = dd.suppress("email", "ADA@example.com", reason="complaint")
    assert first.id == again.id == stronger.id
    assert (again.reason, stronger.reason) == ("bounce", "complaint")
    assert len(dd.list_suppressions()) == 1
    # a category or a tenant is another row
    dd.suppress("email", "ada@example.com", category="marketing")
    dd.suppress("email", "ada@example.com", tenant_key="acme")
    assert len(dd.list_suppressions(all_tenants=True)) == 3
    assert len(dd.list_suppressions("email", "acme")) == 1


def test_write_suppression_joins_the_callers_transaction(dd):
    engine = dd.runtime.engine
    with engine.connect() as conn, conn.begin() as tx:
        write_suppression(conn, channel="email", recipient=" X@Y.example ", reason="bounce")
        write_suppression(conn, channel="email", recipient="x@y.example", reason="bounce")
        tx.rollback()
    assert dd.list_suppressions() == []
    with engine.begin() as conn:
        write_suppression(
            conn, channel="sms", recipient="07700 900123", reason="complaint", region="GB"
        )
    [row] = dd.list_suppressions("sms")
    assert (row.recipient, row.reason) == ("+447700900123", "complaint")
    with pytest.raises(ValidationError, match="reason"), engine.begin() as conn:
        write_suppression(conn, channel="email", recipient="a@b.example", reason="spite")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"channel": "fax", "recipient": "a@b.example"}, "channel"),
        ({"channel": "email", "recipient": "a@b.example", "reason": "x"}, "reason"),
        ({"channel": "email", "recipient": "a@b.example", "tenant_key": ""}, "tenant_key"),
        ({"channel": "email", "recipient": "a@b.example", "category": "Marketing!"}, "category"),
        ({"channel": "email", "recipient": ["a@b.example"]}, "recipient"),
        ({"channel": "email", "recipient": "a\x00@b.example"}, "recipient"),
        ({"channel": "sms", "recipient": "0"}, "recipient"),
    ],
)
def test_bad_input_names_the_field(dd, kwargs, field):
    with pytest.raises(ValidationError) as caught:
        dd.suppress(**kwargs)
    assert field in caught.value.errors


def _bearer(dd, *scopes, tenant_key=None):
    key = dd.create_api_key("k", scopes=list(scopes), tenant_key=tenant_key)
    return {"Authorization": f"Bearer {key.secret}"}


def test_rest_suppressions_pages_filters_and_tenants(dd):
    admin = _bearer(dd, "write")
    acme = _bearer(dd, "write", tenant_key="acme")
    reader = _bearer(dd, "read")
    with TestClient(create_app(dd)) as client:
        made = client.post(
            "/api/v1/suppressions",
            json={"channel": "email", "recipient": " Ada@Example.com", "reason": "bounce"},
            headers=admin,
        )
        assert made.status_code == 201, made.text
        assert made.json()["recipient"] == "ada@example.com"
        assert made.json()["tenant_key"] is None
        for n in range(7):
            answer = client.post(
                "/api/v1/suppressions",
                json={"channel": "email", "recipient": f"u{n}@acme.example", "tenant_key": "x"},
                headers=acme,
            )
            assert answer.status_code == 422  # a bound key cannot write another tenant
            answer = client.post(
                "/api/v1/suppressions",
                json={"channel": "email", "recipient": f"u{n}@acme.example"},
                headers=acme,
            )
            assert answer.status_code == 201 and answer.json()["tenant_key"] == "acme"
        bad = client.post(
            "/api/v1/suppressions", json={"channel": "email", "recipient": "nope"}, headers=admin
        )
        assert bad.status_code == 422 and "recipient" in bad.json()["errors"]
        assert client.post("/api/v1/suppressions", json={}, headers=reader).status_code == 403

        # a bound key sees its tenant only, in pages
        seen, cursor = [], None
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = client.get("/api/v1/suppressions", params=params, headers=acme).json()
            seen += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == 7 and {s["tenant_key"] for s in seen} == {"acme"}
        assert len({s["id"] for s in seen}) == 7
        # an unbound key sees everything, or filters
        everything = client.get("/api/v1/suppressions", params={"limit": 50}, headers=reader)
        assert len(everything.json()["items"]) == 8
        bounced = client.get("/api/v1/suppressions", params={"reason": "bounce"}, headers=reader)
        assert [s["recipient"] for s in bounced.json()["items"]] == ["ada@example.com"]
        assert (
            client.get(
                "/api/v1/suppressions", params={"channel": "fax"}, headers=reader
            ).status_code
            == 422
        )

        # delete: another tenant's row is a 404 for a bound key
        global_id = made.json()["id"]
        assert client.delete(f"/api/v1/suppressions/{global_id}", headers=acme).status_code == 404
        assert client.delete(f"/api/v1/suppressions/{global_id}", headers=reader).status_code == 403
        assert client.delete(f"/api/v1/suppressions/{global_id}", headers=admin).status_code == 204
        assert client.delete(f"/api/v1/suppressions/{global_id}", headers=admin).status_code == 404
        assert client.get("/api/v1/suppressions", headers={}).status_code == 401
    assert not dd.is_suppressed("email", "ada@example.com")
