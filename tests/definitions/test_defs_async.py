"""AsyncDripDrop runs the same definition operations as coroutines."""

from __future__ import annotations

import pytest

from dripdrop import AsyncDripDrop
from dripdrop.crypto import generate_key
from dripdrop.errors import ValidationError
from dripdrop.testing import TestEnv


@pytest.fixture
def keyed_env(database_url: str):
    key = generate_key()
    env = TestEnv(database_url, encryption_key=key)
    try:
        yield env, key
    finally:
        env.close()


async def test_async_face_creates_and_reads_definitions(database_url: str, keyed_env) -> None:
    env, key = keyed_env
    add = AsyncDripDrop(database_url, schema=env.schema, encryption_key=key)
    try:
        seq = await add.create_sequence(name="Async", key="async_seq")
        version = await add.create_sequence_version(seq.id, active=True)
        step = await add.create_step(
            version.id,
            name="Hello There",
            channel="email",
            timing={"human_expression": "in 2 days"},
        )
        adapter = await add.create_channel_adapter(
            name="Mailgun",
            channel="email",
            provider="mailgun",
            credentials={"api_key": "key-async"},
            config={"domain": "mg.example.com"},
        )
        assert (await add.get_sequence("async_seq")).id == seq.id
        assert (await add.get_active_version(seq.id)).id == version.id
        [listed] = await add.list_steps(version.id)
        assert (listed.id, listed.key, listed.timing["delay_amount"]) == (step.id, "hello_there", 2)
        assert (await add.get_default_adapter("email")).credentials.reveal() == {
            "api_key": "key-async"
        }
        # The sync face sees the same rows.
        assert env.dd.get_channel_adapter(adapter.id).credentials.reveal() == {
            "api_key": "key-async"
        }
        with pytest.raises(ValidationError) as caught:
            await add.create_step(
                version.id,
                name="Bad",
                channel="fax",
                timing={"type": "delay", "delay_amount": 0, "delay_unit": "days"},
            )
        assert set(caught.value.errors) == {"channel", "timing.delay_amount"}
    finally:
        await add.close()
