"""API tokens: shape, hashing, constant-time checks, bearer parsing, scopes and redaction."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from workers.auth import (
    RedactingFilter,
    TokenRecord,
    hash_token,
    new_token,
    parse_bearer,
    redact,
    token_id,
    verify_token,
)

TOKEN_ID, TOKEN = new_token()
STORED = hash_token(TOKEN)


def test_new_token_shape_and_uniqueness() -> None:
    assert TOKEN.startswith(f"pt_{TOKEN_ID}_") and len(TOKEN_ID) == 16
    assert token_id(TOKEN) == TOKEN_ID
    assert len({new_token()[1] for _ in range(100)}) == 100
    assert STORED.startswith("sha256:") and TOKEN not in STORED


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=10))
def test_verify_token_accepts_every_new_token(_: int) -> None:
    plaintext = new_token()[1]
    assert verify_token(plaintext, hash_token(plaintext))


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_verify_token_refuses_any_other_string(other: str) -> None:
    if other != TOKEN:
        assert not verify_token(other, STORED)


@settings(max_examples=100, deadline=None)
@given(st.integers(min_value=3 + 16 + 1, max_value=len(TOKEN) - 1), st.sampled_from("aZ09"))
def test_verify_token_refuses_one_character_changed(position: int, char: str) -> None:
    changed = TOKEN[:position] + char + TOKEN[position + 1 :]
    assert verify_token(changed, STORED) == (changed == TOKEN)


def test_verify_token_refuses_other_token_and_bad_hash() -> None:
    assert not verify_token(new_token()[1], STORED)
    assert not verify_token(TOKEN, "")
    assert not verify_token(TOKEN, "sha256:" + "0" * 64)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"Bearer {TOKEN}", TOKEN),
        (f"bearer   {TOKEN}  ", TOKEN),
        (f"Basic {TOKEN}", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer not-a-token", None),
        (f"Bearer {TOKEN} extra", None),
        (TOKEN, None),
        ("", None),
        (None, None),
    ],
)
def test_parse_bearer(header: str | None, expected: str | None) -> None:
    assert parse_bearer(header) == expected


def test_token_record_scopes_and_round_trip() -> None:
    record = TokenRecord.for_token(TOKEN, ["subscription:sub_1"], note="for the dashboard")
    assert record.id == TOKEN_ID and verify_token(TOKEN, record.hash)
    assert record.allows_subscription("sub_1") and not record.allows_subscription("sub_2")
    assert not record.allows("admin")
    assert TokenRecord.model_validate_json(record.model_dump_json()) == record
    assert record.hash not in repr(record)
    admin = TokenRecord.for_token(TOKEN, ["admin"])
    assert admin.allows_subscription("anything") and admin.allows("admin")
    with pytest.raises(ValidationError, match="scope"):
        TokenRecord.for_token(TOKEN, ["sub scription"])
    with pytest.raises(ValidationError):
        TokenRecord.for_token(TOKEN, [])
    with pytest.raises(ValueError, match="not a Pantau API token"):
        TokenRecord.for_token("hunter2", ["admin"])


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_redact_masks_tokens_anywhere(before: str, after: str) -> None:
    plaintext = new_token()[1]
    secret = plaintext.rsplit("_", 1)[1]
    masked = redact(f"{before}{plaintext}{after}")
    assert secret not in masked


def test_redact_keeps_id_and_masks_secrets_and_bearer() -> None:
    line = (
        f"GET /alerts token={TOKEN} Authorization: Bearer abc.def-ghi, "
        "secret=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw done"
    )
    masked = redact(line)
    assert f"pt_{TOKEN_ID}_[redacted]" in masked
    assert "abc.def-ghi" not in masked and "Bearer [redacted]" in masked
    assert "MfKQ9r8" not in masked and "whsec_[redacted]" in masked
    assert masked.endswith("done") and redact(masked) == masked
    assert redact("nothing secret here") == "nothing secret here"


def test_redacting_filter_masks_log_arguments(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("pantau.test.auth")
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level(logging.INFO, logger="pantau.test.auth"):
        logger.info("caller sent %s", f"Bearer {TOKEN}")
    assert TOKEN not in caplog.text and "[redacted]" in caplog.text
