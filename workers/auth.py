"""API tokens: creation, hashing, checking, scopes and log redaction. Pure (no Redis).

A token reads `pt_<id>_<secret>`: `id` is 16 hex digits (not secret: it names the stored
record and may appear in logs), `secret` is 43 base62 characters (~256 bits). Only the hash is
stored. To authenticate a request: `token = parse_bearer(header)`, `record = load(token_id(token))`,
then `verify_token(token, record.hash)` and `record.allows(scope)`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import string

from pydantic import Field, field_validator

from workers.domain import Record, utc_now

TOKEN_PREFIX = "pt_"
TOKEN_ID_HEX = 16
TOKEN_SECRET_CHARS = 43  # 43 * log2(62) ≈ 256 bits
ADMIN_SCOPE = "admin"
SCOPE_PATTERN = r"^[a-z][a-z0-9_-]{0,31}(:[A-Za-z0-9_.-]{1,64})?$"  # "admin", "subscription:<id>"

_ALPHABET = string.ascii_letters + string.digits
_TOKEN = re.compile(
    rf"^{TOKEN_PREFIX}([0-9a-f]{{{TOKEN_ID_HEX}}})_([A-Za-z0-9]{{{TOKEN_SECRET_CHARS}}})$"
)
_SCOPE = re.compile(SCOPE_PATTERN)

# What redact() masks: our tokens (keeping the id, which is no secret), webhook signing secrets,
# and any credential after "Bearer" (whatever its shape).
_REDACTIONS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)\b(bearer)(\s+)(?!\[redacted\])[^\s,;\"']+"), r"\1\2[redacted]"),
    (re.compile(rf"{TOKEN_PREFIX}([0-9a-f]{{{TOKEN_ID_HEX}}})_[A-Za-z0-9]+"), r"pt_\1_[redacted]"),
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), "whsec_[redacted]"),
)


def new_token() -> tuple[str, str]:
    """A fresh API token as (token_id, plaintext); show the plaintext once, store hash_token() of it."""
    token_id = secrets.token_hex(TOKEN_ID_HEX // 2)
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(TOKEN_SECRET_CHARS))
    return token_id, f"{TOKEN_PREFIX}{token_id}_{secret}"


def token_id(plaintext: str) -> str | None:
    """The id part of a well-formed token, or None if the text is not token-shaped."""
    match = _TOKEN.match(plaintext) if isinstance(plaintext, str) else None
    return match.group(1) if match else None


def hash_token(plaintext: str) -> str:
    """The stored form of a token: `sha256:<hex>`.

    A plain fast hash is enough here, unlike for passwords: the secret part has ~256 bits of
    randomness, so a leaked hash cannot be brute-forced or looked up in a dictionary, and a slow
    KDF (bcrypt, argon2) would only cost CPU on every API request.
    """
    return "sha256:" + hashlib.sha256(plaintext.encode("utf-8", "surrogatepass")).hexdigest()


def verify_token(plaintext: str, stored_hash: str) -> bool:
    """Whether `plaintext` is the token whose hash is `stored_hash` (constant-time compare)."""
    if token_id(plaintext) is None or not isinstance(stored_hash, str):
        return False
    return hmac.compare_digest(hash_token(plaintext).encode("ascii"), stored_hash.encode("utf-8"))


def parse_bearer(header_value: str | None) -> str | None:
    """The token from an `Authorization: Bearer <token>` value, or None if absent or not token-shaped."""
    if not header_value:
        return None
    scheme, _, credential = header_value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    credential = credential.strip()
    return credential if token_id(credential) is not None else None


def redact(text: str) -> str:
    """`text` with API tokens, webhook secrets and bearer credentials masked (for logs)."""
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record's formatted message (attach it to handlers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class TokenRecord(Record):
    """A stored API token: its hash (never the plaintext), scopes, creation time and a note."""

    id: str = Field(pattern=rf"^[0-9a-f]{{{TOKEN_ID_HEX}}}$")
    hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$", repr=False)
    scopes: list[str] = Field(min_length=1, max_length=100)
    created_at: str
    note: str | None = Field(default=None, max_length=200)

    @field_validator("scopes")
    @classmethod
    def _scopes_well_formed(cls, scopes: list[str]) -> list[str]:
        cleaned = list(dict.fromkeys(scope.strip() for scope in scopes))
        for scope in cleaned:
            if not _SCOPE.match(scope):
                raise ValueError(
                    f"scope {scope[:70]!r} is not 'admin' or '<kind>:<id>' like 'subscription:sub_1'"
                )
        return cleaned

    @classmethod
    def for_token(
        cls,
        plaintext: str,
        scopes: list[str],
        note: str | None = None,
        *,
        created_at: str | None = None,
    ) -> TokenRecord:
        """The record to store for a token from new_token()."""
        identifier = token_id(plaintext)
        if identifier is None:
            raise ValueError("not a Pantau API token (pt_<16 hex>_<43 base62>)")
        return cls(
            id=identifier,
            hash=hash_token(plaintext),
            scopes=scopes,
            created_at=created_at or utc_now(),
            note=note,
        )

    def allows(self, scope: str) -> bool:
        """Whether this token grants `scope` ("admin" grants every scope)."""
        return ADMIN_SCOPE in self.scopes or scope in self.scopes

    def allows_subscription(self, subscription_id: str) -> bool:
        """Whether this token may read or change the subscription with this id."""
        return self.allows(f"subscription:{subscription_id}")


REDACTED_LOGGERS = ("", "uvicorn", "uvicorn.access", "uvicorn.error", "celery", "httpx", "workers")


def install_redaction() -> None:
    """Mask tokens and secrets in every log record of the loggers that could carry one.

    Filters sit on the loggers where records are made (uvicorn's access log carries the
    `?token=` of EventSource requests) and on the root handlers (records that propagate).
    """
    for name in REDACTED_LOGGERS:
        logger = logging.getLogger(name)
        holders = [logger, *(logger.handlers if name == "" else [])]
        for holder in holders:
            if not any(isinstance(f, RedactingFilter) for f in holder.filters):
                holder.addFilter(RedactingFilter())
