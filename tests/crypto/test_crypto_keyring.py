"""KeyRing: AES-256-GCM round trips, rotation, tamper and wrong-row detection, safe errors."""

from __future__ import annotations

import base64
import os

import pytest

from dripdrop.crypto import KeyRing, generate_key, key_id
from dripdrop.errors import ConfigurationError, CryptoError

AAD = b"dripdrop:channel_adapters:credentials:2f1c0d6e-0000-4000-8000-000000000001"
OTHER_ROW = b"dripdrop:channel_adapters:credentials:2f1c0d6e-0000-4000-8000-000000000002"


def test_generate_key_is_32_random_bytes_in_standard_base64() -> None:
    key = generate_key()
    assert len(base64.b64decode(key, validate=True)) == 32
    assert generate_key() != key


def test_round_trip() -> None:
    ring = KeyRing([generate_key()])
    blob = ring.encrypt(b"api-key-123", aad=AAD)
    assert b"api-key-123" not in blob
    assert ring.decrypt(blob, aad=AAD) == b"api-key-123"


def test_blob_layout_names_the_newest_key() -> None:
    new, old = generate_key(), generate_key()
    ring = KeyRing([new, old])
    blob = ring.encrypt(b"x", aad=AAD)
    assert blob[0] == 1
    assert blob[1:9] == key_id(base64.b64decode(new))
    assert len(blob) == 1 + 8 + 12 + 1 + 16
    assert ring.key_ids[0] == blob[1:9].hex()


def test_raw_bytes_and_base64_of_the_same_key_are_interchangeable() -> None:
    raw = os.urandom(32)
    blob = KeyRing([raw]).encrypt(b"hello", aad=AAD)
    assert KeyRing([base64.b64encode(raw).decode()]).decrypt(blob, aad=AAD) == b"hello"
    assert KeyRing([base64.urlsafe_b64encode(raw)]).decrypt(blob, aad=AAD) == b"hello"


def test_older_key_still_decrypts_after_a_new_key_is_prepended() -> None:
    old = generate_key()
    blob = KeyRing([old]).encrypt(b"secret", aad=AAD)
    rotated = KeyRing([generate_key(), old])
    assert rotated.decrypt(blob, aad=AAD) == b"secret"
    assert rotated.needs_rotation(blob) is True
    fresh = rotated.encrypt(rotated.decrypt(blob, aad=AAD), aad=AAD)
    assert rotated.needs_rotation(fresh) is False
    assert rotated.decrypt(fresh, aad=AAD) == b"secret"


def test_key_not_in_ring_raises_crypto_error_naming_the_key_id() -> None:
    gone = generate_key()
    gone_ring = KeyRing([gone])
    blob = gone_ring.encrypt(b"secret", aad=AAD)
    with pytest.raises(CryptoError) as exc:
        KeyRing([generate_key()]).decrypt(blob, aad=AAD)
    message = str(exc.value)
    assert "DRIPDROP_ENCRYPTION_KEY" in message
    assert gone_ring.key_ids[0] in message
    assert gone not in message


def test_wrong_aad_moved_to_another_row_fails() -> None:
    ring = KeyRing([generate_key()])
    blob = ring.encrypt(b"smtp-password", aad=AAD)
    with pytest.raises(CryptoError, match="wrong row or tampered") as exc:
        ring.decrypt(blob, aad=OTHER_ROW)
    assert "smtp-password" not in str(exc.value)


@pytest.mark.parametrize("index", [0, 5, 15, 25, -1])
def test_tampering_any_byte_fails(index: int) -> None:
    ring = KeyRing([generate_key()])
    blob = bytearray(ring.encrypt(b"the quick brown fox", aad=AAD))
    blob[index] ^= 0x01
    with pytest.raises(CryptoError):
        ring.decrypt(bytes(blob), aad=AAD)


def test_truncated_or_non_bytes_blob_fails_cleanly() -> None:
    ring = KeyRing([generate_key()])
    blob = ring.encrypt(b"abc", aad=AAD)
    with pytest.raises(CryptoError, match="too short"):
        ring.decrypt(blob[:20], aad=AAD)
    with pytest.raises(CryptoError):
        ring.decrypt("not bytes", aad=AAD)  # type: ignore[arg-type]


def test_needs_rotation_false_for_newest_true_for_older() -> None:
    a, b = generate_key(), generate_key()
    ring = KeyRing([a, b])
    assert ring.needs_rotation(ring.encrypt(b"x", aad=AAD)) is False
    assert ring.needs_rotation(KeyRing([b]).encrypt(b"x", aad=AAD)) is True
    # Unknown keys also need rotation (they cannot be read with the newest key).
    assert ring.needs_rotation(KeyRing([generate_key()]).encrypt(b"x", aad=AAD)) is True


def test_json_round_trip_with_sorted_keys() -> None:
    ring = KeyRing([generate_key()])
    value = {"token": "xoxb-1", "nested": {"b": 2, "a": [1, "é"]}}
    blob = ring.encrypt_json(value, aad=AAD)
    assert ring.decrypt_json(blob, aad=AAD) == value
    assert ring.decrypt(blob, aad=AAD).startswith(b'{"nested":{"a"')


def test_decrypt_json_of_non_json_does_not_echo_plaintext() -> None:
    ring = KeyRing([generate_key()])
    blob = ring.encrypt(b"hunter2 not json", aad=AAD)
    with pytest.raises(CryptoError) as exc:
        ring.decrypt_json(blob, aad=AAD)
    assert "hunter2" not in str(exc.value)


@pytest.mark.parametrize(
    ("bad", "detail"),
    [
        ("this is not base64 at all!!", "not valid base64"),
        (base64.b64encode(b"k" * 16).decode(), "16 bytes"),
        (b"\xff" * 10, "raw bytes"),
    ],
)
def test_bad_keys_raise_configuration_error_without_the_key(bad: str | bytes, detail: str) -> None:
    with pytest.raises(ConfigurationError) as exc:
        KeyRing([generate_key(), bad])
    message = str(exc.value)
    assert "key #2" in message
    assert detail in message
    text = bad if isinstance(bad, str) else bad.decode("latin-1")
    assert text not in message
    assert exc.value.__cause__ is None


def test_empty_ring_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="DRIPDROP_ENCRYPTION_KEY"):
        KeyRing([])
    with pytest.raises(ConfigurationError):
        KeyRing.from_env_value("  , ")


def test_from_env_value_parses_several_keys_newest_first() -> None:
    new, old1, old2 = generate_key(), generate_key(), generate_key()
    ring = KeyRing.from_env_value(f" {new}, {old1}\n{old2} ,")
    assert len(ring) == 3
    assert ring.key_ids == [key_id(base64.b64decode(k)).hex() for k in (new, old1, old2)]
    old_blob = KeyRing([old2]).encrypt(b"v", aad=AAD)
    assert ring.decrypt(old_blob, aad=AAD) == b"v"
    assert ring.needs_rotation(ring.encrypt(b"v", aad=AAD)) is False


def test_from_env_value_with_bad_key_names_its_position() -> None:
    with pytest.raises(ConfigurationError, match="key #3"):
        KeyRing.from_env_value(f"{generate_key()},{generate_key()},short")


def test_a_string_passed_as_the_key_list_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="from_env_value"):
        KeyRing(generate_key())  # type: ignore[arg-type]


def test_repr_shows_count_and_ids_but_no_key_material() -> None:
    keys = [os.urandom(32), os.urandom(32)]
    ring = KeyRing(keys)
    text = repr(ring)
    assert "2 key(s)" in text
    for kid in ring.key_ids:
        assert kid in text
    for raw in keys:
        assert base64.b64encode(raw).decode() not in text
        assert raw.hex() not in text
        assert repr(raw) not in text
    assert str(ring) == text


def test_nonces_are_unique_across_1000_encryptions_of_the_same_text() -> None:
    ring = KeyRing([generate_key()])
    blobs = [ring.encrypt(b"same text", aad=AAD) for _ in range(1000)]
    assert len(set(blobs)) == 1000
    assert len({blob[9:21] for blob in blobs}) == 1000
    assert all(ring.decrypt(blob, aad=AAD) == b"same text" for blob in blobs)
