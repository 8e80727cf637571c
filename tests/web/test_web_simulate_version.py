"""POST /sequences/{key}/simulate with ``version_id``: a draft's timeline over REST."""

from __future__ import annotations

import uuid

from web_support import bearer

API = "/api/v1"


def test_simulate_a_draft_over_rest(dd, client, admin) -> None:
    dd.create_channel_adapter(name="mem", channel="email", provider="memory")
    seq = dd.create_sequence(name="Onboarding", key="onboarding")
    active = dd.create_sequence_version(seq.id, active=True)
    dd.create_step(active.id, name="welcome", channel="email", config={"subject": "s", "body": "b"})
    draft = dd.create_sequence_version(seq.id)
    for name in ("hello", "tips"):
        dd.create_step(draft.id, name=name, channel="email", config={"subject": "s", "body": "b"})
    url = f"{API}/sequences/onboarding/simulate"
    body = {"data": {"email": "a@x.io"}}

    def steps(answer) -> list[str]:
        assert answer.status_code == 200, answer.text
        return [e["step_key"] for e in answer.json()["entries"] if e["step_key"]]

    assert steps(client.post(url, json=body, headers=admin)) == ["welcome"]
    drafted = client.post(url, json={**body, "version_id": str(draft.id)}, headers=admin)
    assert steps(drafted) == ["hello", "tips"]
    assert dd.get_active_version(seq.id).id == active.id

    other = dd.create_sequence(name="Other", key="other")
    foreign = dd.create_sequence_version(other.id)
    wrong = client.post(url, json={**body, "version_id": str(foreign.id)}, headers=admin)
    assert wrong.status_code == 422 and list(wrong.json()["errors"]) == ["version_id"]
    malformed = client.post(url, json={**body, "version_id": "v2"}, headers=admin)
    assert malformed.status_code == 422 and list(malformed.json()["errors"]) == ["version_id"]
    unknown = client.post(url, json={**body, "version_id": str(uuid.uuid4())}, headers=admin)
    assert unknown.status_code == 404 and "version_id" in unknown.json()["detail"]
    # A tenant-bound key cannot reach a global sequence's draft.
    acme = bearer(dd, "read", tenant_key="acme")
    hidden = client.post(url, json={**body, "version_id": str(draft.id)}, headers=acme)
    assert hidden.status_code == 404
