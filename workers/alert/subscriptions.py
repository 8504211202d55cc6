"""Alert subscriptions: who wants which alerts, how and where. Pure (no Redis, no HTTP).

Matching semantics of `select_alerts` (one Alert per watched actor comes in from
`rules.match_watchlist`; a subset of those goes out, never a new or combined record):

* **languages**: when set, the article's language (primary subtag, case-insensitive) must be one
  of them, else nothing is selected.
* **per alert**: an actor's alert qualifies when it has at least `min_mentions` spans and, if
  `event_types` is set or `role` is not "any", the actor takes part in one of the article's events
  of those types (any type when `event_types` is empty) in the given `role` (source, target, or
  either). Participation is matched on `EntityRef.actor_id`, or on `EntityRef.canonical`
  (case-insensitive) when the id is missing. Negated and hypothetical events count too: the
  subscription names event types, not the coder's context labels.
* **actors_any**: the qualifying alerts of these actors.
* **actors_all** (co-mention): every one of these actors must be mentioned in the article with at
  least `min_mentions` spans; then the qualifying alerts of these actors are selected, still one
  per actor (so dedup and cooldown stay per actor and story, like everywhere else). The event and
  role condition applies per actor: "A and B together, A or B as the source of an AGREE" selects
  the alert of whichever of them is that source.
* **both lists set**: both conditions must hold (like "all of these words" plus "any of these
  words" in a search form); the selection is the union of both lists' qualifying alerts. A
  subscriber who wants "either" creates two subscriptions.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from workers.domain import Alert, EntityRef, Extraction, short_hash, utc_now
from workers.errors import InputError
from workers.extract.events import PLOVER_TYPES

MAX_ACTORS = 1000
MAX_URL_CHARS = 2048
MAX_COOLDOWN_S = 30 * 24 * 3600
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32  # Standard Webhooks: 24 to 64 random bytes; we generate 32
ACTOR_ID_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"  # as workers.alert.watchlist.Actor.id
SUBSCRIPTION_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # safe in Redis keys and token scopes

Role = Literal["source", "target", "any"]
Mode = Literal["realtime", "digest"]
DigestEvery = Literal["hourly", "daily"]
Channel = Literal["webhook", "sse", "redis"]

_ACTOR_ID = re.compile(ACTOR_ID_PATTERN)
_LANGUAGE = re.compile(r"^[a-z]{2,3}$")


def new_secret() -> str:
    """A fresh Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def secret_bytes(secret: str) -> bytes:
    """The key bytes of a `whsec_<base64>` secret (the prefix is optional); ValueError if malformed."""
    encoded = secret[len(SECRET_PREFIX) :] if secret.startswith(SECRET_PREFIX) else secret
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("secret is not whsec_ followed by base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError(f"secret decodes to {len(key)} bytes; expected 24 to 64")
    return key


def new_subscription_id() -> str:
    """A fresh subscription id, `sub_` + 16 hex digits."""
    return "sub_" + secrets.token_hex(8)


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


class SubscriptionIn(BaseModel):
    """What an API caller sends to create or replace a subscription."""

    model_config = ConfigDict(extra="forbid")

    actors_any: list[str] = Field(default_factory=list, max_length=MAX_ACTORS)
    actors_all: list[str] = Field(default_factory=list, max_length=MAX_ACTORS)
    event_types: list[str] = Field(default_factory=list, max_length=len(PLOVER_TYPES))
    role: Role = "any"
    min_mentions: int = Field(default=1, ge=1, le=1000)
    languages: list[str] = Field(default_factory=list, max_length=50)
    cooldown_s: int = Field(default=3600, ge=0, le=MAX_COOLDOWN_S)
    mode: Mode = "realtime"
    digest_every: DigestEvery | None = None
    channel: Channel
    webhook_url: str | None = None

    @field_validator("actors_any", "actors_all")
    @classmethod
    def _actor_ids(cls, actors: list[str]) -> list[str]:
        cleaned = _unique(actor.strip() for actor in actors)
        for actor in cleaned:
            if not _ACTOR_ID.match(actor):
                raise ValueError(
                    f"{actor[:70]!r} is not an actor id (lower-case letters, digits, _ . -;"
                    " at most 64 characters)"
                )
        return cleaned

    @field_validator("event_types")
    @classmethod
    def _known_event_types(cls, event_types: list[str]) -> list[str]:
        cleaned = _unique(t.strip().upper() for t in event_types)
        unknown = [t for t in cleaned if t not in PLOVER_TYPES]
        if unknown:
            raise ValueError(
                f"unknown event type(s) {', '.join(map(repr, unknown))}; "
                f"known PLOVER types: {', '.join(PLOVER_TYPES)}"
            )
        return cleaned

    @field_validator("languages")
    @classmethod
    def _language_codes(cls, languages: list[str]) -> list[str]:
        cleaned = _unique(lang.strip().lower() for lang in languages)
        for lang in cleaned:
            if not _LANGUAGE.match(lang):
                raise ValueError(f"{lang[:20]!r} is not an ISO 639 language code like 'id' or 'en'")
        return cleaned

    @field_validator("webhook_url")
    @classmethod
    def _http_url(cls, url: str | None) -> str | None:
        if url is None:
            return None
        url = url.strip()
        if len(url) > MAX_URL_CHARS:
            raise ValueError(f"webhook_url is longer than {MAX_URL_CHARS} characters")
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
            raise ValueError("webhook_url contains whitespace or control characters")
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018 - raises ValueError on a bad port
        except ValueError as err:
            raise ValueError(f"webhook_url is not a valid URL ({err})") from None
        if parts.scheme.lower() not in ("http", "https"):
            raise ValueError(
                f"webhook_url scheme {parts.scheme or '(none)'!r} refused: only http and https"
            )
        if not parts.hostname:
            raise ValueError("webhook_url has no host")
        if parts.username is not None or parts.password is not None:
            raise ValueError(
                "webhook_url must not carry credentials (user:password@); the signature"
                " authenticates Pantau to the receiver"
            )
        return url

    @model_validator(mode="after")
    def _consistent(self) -> SubscriptionIn:
        if not self.actors_any and not self.actors_all:
            raise ValueError("name at least one actor in actors_any or actors_all")
        total = len(set(self.actors_any) | set(self.actors_all))
        if total > MAX_ACTORS:
            raise ValueError(f"{total} actors; at most {MAX_ACTORS} per subscription")
        if self.channel == "webhook" and self.webhook_url is None:
            raise ValueError("webhook_url is required when channel is 'webhook'")
        if self.channel != "webhook" and self.webhook_url is not None:
            raise ValueError(
                f"webhook_url is only allowed when channel is 'webhook', not {self.channel!r}"
            )
        if self.mode == "digest" and self.digest_every is None:
            raise ValueError("digest_every ('hourly' or 'daily') is required when mode is 'digest'")
        if self.mode == "realtime" and self.digest_every is not None:
            raise ValueError("digest_every is only allowed when mode is 'digest'")
        return self

    @property
    def actor_ids(self) -> frozenset[str]:
        """Every actor this subscription names (for indexing subscriptions by actor)."""
        return frozenset(self.actors_any) | frozenset(self.actors_all)


def _fields_in(data: SubscriptionIn) -> dict[str, Any]:
    return data.model_dump(include=set(SubscriptionIn.model_fields))


class Subscription(SubscriptionIn):
    """A stored subscription: the caller's fields plus id, signing secret and creation time.

    `secret` is the plaintext signing key (needed to sign): store the record as is, but show
    the secret to the caller only once, on creation; `public()` is the view without it.
    """

    id: str = Field(pattern=SUBSCRIPTION_ID_PATTERN)
    secret: str = Field(repr=False)
    created_at: str

    @field_validator("secret")
    @classmethod
    def _standard_webhooks_secret(cls, secret: str) -> str:
        if not secret.startswith(SECRET_PREFIX):
            raise ValueError("secret must start with 'whsec_'")
        secret_bytes(secret)
        return secret

    @classmethod
    def create(
        cls, data: SubscriptionIn, *, id: str | None = None, created_at: str | None = None
    ) -> Subscription:
        """A new subscription from the caller's fields, with a fresh id and secret."""
        return cls(
            **_fields_in(data),
            id=id or new_subscription_id(),
            secret=new_secret(),
            created_at=created_at or utc_now(),
        )

    def replace(self, data: SubscriptionIn) -> Subscription:
        """This subscription with the caller's fields replaced (id, secret, created_at kept)."""
        return Subscription(
            **_fields_in(data), id=self.id, secret=self.secret, created_at=self.created_at
        )

    def rotate_secret(self) -> Subscription:
        """This subscription with a fresh signing secret."""
        return self.model_copy(update={"secret": new_secret()})

    def public(self) -> dict[str, Any]:
        """The JSON view for API responses and listings: everything but the secret."""
        return self.model_dump(mode="json", exclude={"secret"})


def parse_subscription_in(data: Mapping[str, Any], source: str = "subscription") -> SubscriptionIn:
    """A SubscriptionIn from JSON-like data; InputError naming the field and the problem."""
    try:
        return SubscriptionIn.model_validate(data)
    except ValidationError as err:
        raise InputError(source, validation_message(err)) from err


def validation_message(err: ValidationError) -> str:
    """Every problem of a pydantic ValidationError as `field: message`, joined by `; `."""
    problems = []
    for error in err.errors():
        loc = ".".join(str(p) for p in error["loc"])
        msg = error["msg"].removeprefix("Value error, ")
        problems.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(problems)


# ---------------------------------------------------------------------------------------------
# Matching
# ---------------------------------------------------------------------------------------------


def _is_actor(ref: EntityRef | None, actor_id: str) -> bool:
    if ref is None:
        return False
    if ref.actor_id is not None:
        return ref.actor_id == actor_id
    return ref.canonical is not None and ref.canonical.casefold() == actor_id.casefold()


def _takes_part(subscription: SubscriptionIn, extraction: Extraction, actor_id: str) -> bool:
    """Whether the actor plays `role` in an event of one of the wanted types."""
    wanted = set(subscription.event_types)
    for event in extraction.events:
        if wanted and event.type not in wanted:
            continue
        as_source = _is_actor(event.source, actor_id)
        as_target = _is_actor(event.target, actor_id)
        if subscription.role == "source" and as_source:
            return True
        if subscription.role == "target" and as_target:
            return True
        if subscription.role == "any" and (as_source or as_target):
            return True
    return False


def _language_ok(subscription: SubscriptionIn, language: str) -> bool:
    if not subscription.languages:
        return True
    return language.split("-", 1)[0].strip().lower() in subscription.languages


def select_alerts(
    subscription: SubscriptionIn, extraction: Extraction, alerts: list[Alert]
) -> list[Alert]:
    """The article's alerts this subscription wants, in the order given (see the module doc)."""
    if not _language_ok(subscription, extraction.language):
        return []
    by_actor = {alert.actor_id: alert for alert in alerts}
    needs_event = bool(subscription.event_types) or subscription.role != "any"

    def qualifies(alert: Alert) -> bool:
        if len(alert.spans) < subscription.min_mentions:
            return False
        return not needs_event or _takes_part(subscription, extraction, alert.actor_id)

    wanted: set[str] = set()
    if subscription.actors_any:
        hits = {a for a in subscription.actors_any if a in by_actor and qualifies(by_actor[a])}
        if not hits:
            return []
        wanted |= hits
    if subscription.actors_all:
        co_mentioned = all(
            a in by_actor and len(by_actor[a].spans) >= subscription.min_mentions
            for a in subscription.actors_all
        )
        hits = {a for a in subscription.actors_all if co_mentioned and qualifies(by_actor[a])}
        if not hits:
            return []
        wanted |= hits
    return [alert for alert in alerts if alert.actor_id in wanted]


def dedup_key(subscription_id: str, actor_id: str, story_id: str) -> str:
    """Key part for "one alert per (subscription, actor, story) within the cooldown".

    Set it with NX and EX=cooldown_s (e.g. `store.key("sub-sent", dedup_key(...))`); the
    subscription id comes first so a deleted subscription's marks can be found by prefix.
    """
    return (
        f"{subscription_id}:{short_hash('subscription-alert', subscription_id, actor_id, story_id)}"
    )
