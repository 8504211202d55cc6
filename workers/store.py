"""Pantau's state in Redis: articles, extractions, dedup marks, counters, alert and dead-letter streams.

Every key starts with the deployment's namespace (`pantau:` by default); Celery's own queue keys
carry the same prefix (kombu's `global_keyprefix`), so one Redis can hold several deployments.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import redis

from workers.alert.subscriptions import Subscription
from workers.alert.watchlist import Actor
from workers.auth import TokenRecord
from workers.domain import Alert, Article, Extraction
from workers.errors import TransientError
from workers.settings import WORKER_KINDS as QUEUES
from workers.settings import Settings

COUNTERS = (
    "accepted",
    "ingested",
    "reconciled",
    "extracted",
    "duplicates",
    "completed",
    "dead_lettered",
    "alerts",
    "failed:ingest",
    "failed:extract",
    "failed:alert",
)
WORKER_HEARTBEAT_S = 5
SUBSCRIPTION_STREAM_MAXLEN = 10_000
INDEX_MAXLEN = 100_000
# In a message's attempts: an article an earlier delivery of it dead-lettered alone.
ISOLATED = -1
# KEYS = [story key if the story opens here] + band keys; ARGV = ttl, story id, signature, opens.
_REMEMBER_STORY = """
local first = 1
if ARGV[4] == '1' then
  redis.call('SET', KEYS[1], ARGV[3], 'NX', 'EX', ARGV[1])
  first = 2
end
for i = first, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2], 'NX', 'EX', ARGV[1])
end
return 0
"""
# Cooldown mark and subscription stream entry in one step (returns the entry id, or 0).
_APPEND_SUB_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'alert', ARGV[3])
end
return 0
"""
# Mark and append in one step, so a redelivered task can neither lose nor repeat an alert.
_APPEND_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', 'alert', ARGV[3], 'actor_id', ARGV[4])
  return 1
end
return 0
"""
# Once-marks and their counter in one step: a worker killed in between cannot leave a mark
# whose article is never counted. KEYS = counter, then marks; ARGV = ttl, value.
_COUNT_ONCE = """
local fresh = 0
for i = 2, #KEYS do
  if redis.call('SET', KEYS[i], ARGV[2], 'NX', 'EX', ARGV[1]) then
    fresh = fresh + 1
  end
end
if fresh > 0 then
  redis.call('INCRBY', KEYS[1], fresh)
end
return fresh
"""
# KEYS: evidence indexes. ARGV: the score, the oldest score kept, the length bound, the TTL,
# then for each key the number of its members and the members. Server-side, so that a batch's
# index writes (three to four commands per index, ~10 per article) cost one reply to parse.
_INDEX = """
local score, oldest, maxlen, ttl = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4]
local at = 5
for _, key in ipairs(KEYS) do
  local n = tonumber(ARGV[at])
  for j = at + 1, at + n do
    redis.call('ZADD', key, score, ARGV[j])
  end
  at = at + n + 1
  redis.call('ZREMRANGEBYSCORE', key, '-inf', oldest)
  redis.call('ZREMRANGEBYRANK', key, 0, -maxlen - 1)
  redis.call('EXPIRE', key, ttl)
end
return #KEYS
"""
WORKER_ALIVE_TTL_S = 15


class Store:
    """Typed access to the deployment's Redis keys. One per process; thread-safe via redis-py's pool."""

    def __init__(self, client: redis.Redis, settings: Settings) -> None:
        self.redis = client
        self.settings = settings
        self.ns = settings.namespace
        self._append_once = client.register_script(_APPEND_ONCE)
        self._append_sub_once = client.register_script(_APPEND_SUB_ONCE)
        self._remember_story = client.register_script(_REMEMBER_STORY)
        self._count_once = client.register_script(_COUNT_ONCE)
        self._index = client.register_script(_INDEX)

    @classmethod
    def connect(cls, url: str, settings: Settings) -> Store:
        """A store on the Redis at `url`."""
        client = redis.Redis.from_url(
            url,
            decode_responses=True,
            socket_timeout=30,
            socket_connect_timeout=10,
            health_check_interval=25,
        )
        return cls(client, settings)

    def key(self, *parts: str) -> str:
        """A key in this deployment's namespace."""
        return ":".join((self.ns, *parts))

    # Articles and extractions -------------------------------------------------------------

    def save_articles(self, articles: Sequence[Article]) -> None:
        """Store normalised articles for the extract stage (with the article TTL)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for article in articles:
                pipe.set(
                    self.key("article", article.id),
                    article.model_dump_json(),
                    ex=self.settings.article_ttl_s,
                )
            pipe.execute()

    def load_articles(self, article_ids: Sequence[str]) -> list[Article]:
        """The stored articles among `article_ids` (expired ones are missing)."""
        if not article_ids:
            return []
        raw = self.redis.mget([self.key("article", i) for i in article_ids])
        return [Article.model_validate_json(r) for r in raw if r]

    def save_extractions(self, extractions: Sequence[Extraction]) -> None:
        """Store what the extract stage found (the alert stage's input and the evidence)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for extraction in extractions:
                pipe.set(
                    self.key("extraction", extraction.article_id),
                    extraction.model_dump_json(),
                    ex=self.settings.article_ttl_s,
                )
            pipe.execute()

    def load_extractions(self, article_ids: Sequence[str]) -> list[Extraction]:
        """The stored extractions among `article_ids`."""
        if not article_ids:
            return []
        raw = self.redis.mget([self.key("extraction", i) for i in article_ids])
        return [Extraction.model_validate_json(r) for r in raw if r]

    # Dedup ----------------------------------------------------------------------------------

    def track_inflight(self, article_ids: Sequence[str], at: float) -> None:
        """Articles that entered the pipeline and have not yet completed or been dead-lettered."""
        if article_ids:
            self.redis.zadd(self.key("inflight"), {i: at for i in article_ids})

    def settle(self, article_ids: Sequence[str]) -> None:
        """Articles that completed or were dead-lettered: no longer in flight."""
        if article_ids:
            self.redis.zrem(self.key("inflight"), *article_ids)

    def stale_inflight(self, before: float, limit: int = 1000) -> list[str]:
        """In-flight articles that entered the pipeline before a Unix time."""
        return list(
            self.redis.zrangebyscore(self.key("inflight"), "-inf", before, start=0, num=limit)
        )

    def hold_batch(self, batch_id: str, records: Sequence[dict[str, Any]], at: float) -> None:
        """Keep a copy of an ingest message's records until the ingest stage has stored them.

        The ingest message is the only other copy of an accepted article before that stage runs:
        the reconciler sends a batch held past `reconcile_after_s` again (docs/RELIABILITY.md).
        """
        payload = json.dumps(list(records), separators=(",", ":"))
        pipe = self.redis.pipeline(transaction=False)
        pipe.set(self.key("held", batch_id), payload, ex=self.settings.article_ttl_s)
        pipe.zadd(self.key("held_batches"), {batch_id: at})
        pipe.execute()

    def release_batch(self, batch_id: str) -> None:
        """The ingest stage stored this batch: drop the copy."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.delete(self.key("held", batch_id))
        pipe.zrem(self.key("held_batches"), batch_id)
        pipe.execute()

    def stale_batches(self, before: float, limit: int = 1000) -> list[str]:
        """Held batches sent before a Unix time and not yet stored by the ingest stage."""
        return list(
            self.redis.zrangebyscore(self.key("held_batches"), "-inf", before, start=0, num=limit)
        )

    def held_batch(self, batch_id: str) -> list[dict[str, Any]] | None:
        """A held batch's records (None once its copy expired)."""
        raw = self.redis.get(self.key("held", batch_id))
        return None if raw is None else list(json.loads(raw))

    def retrack_batch(self, batch_id: str, at: float) -> None:
        """Restart a held batch's clock (it was just sent again), unless it was released since."""
        self.redis.zadd(self.key("held_batches"), {batch_id: at}, xx=True)

    def forget_batch(self, batch_id: str) -> None:
        """Stop tracking a held batch whose copy is gone."""
        self.redis.zrem(self.key("held_batches"), batch_id)

    def seen_article_ids(self, content_hashes: Sequence[str]) -> list[str | None]:
        """For each content hash, the id of the article first seen with it, if any."""
        if not content_hashes:
            return []
        return list(self.redis.mget([self.key("seen", h) for h in content_hashes]))

    def mark_seen(self, articles: Iterable[Article]) -> None:
        """Remember each article's content hash (first writer wins) for the dedup TTL."""
        with self.redis.pipeline(transaction=False) as pipe:
            for article in articles:
                pipe.set(
                    self.key("seen", article.content_hash),
                    article.id,
                    nx=True,
                    ex=self.settings.dedup_ttl_s,
                )
            pipe.execute()

    def story_candidates(
        self, band_keys_per_text: Sequence[Sequence[str]]
    ) -> list[list[tuple[str, str]]]:
        """For each text's band keys, the stories that share a band with it, as
        (story_id, stored signature) in band order. Two MGETs for the whole batch."""
        bands = list(dict.fromkeys(k for keys in band_keys_per_text for k in keys))
        if not bands:
            return [[] for _ in band_keys_per_text]
        band_story = dict(
            zip(bands, self.redis.mget([self.key("band", k) for k in bands]), strict=True)
        )
        story_ids = list(dict.fromkeys(s for s in band_story.values() if s))
        signatures = self.redis.mget([self.key("story", s) for s in story_ids]) if story_ids else []
        stored = dict(zip(story_ids, signatures, strict=True))
        found = []
        for keys in band_keys_per_text:
            ids = dict.fromkeys(band_story[k] for k in keys if band_story[k])
            found.append([(s, stored[s]) for s in ids if stored.get(s)])
        return found

    def remember_stories(self, stories: Sequence[tuple[str, str, Sequence[str], bool]]) -> None:
        """For each (story_id, signature, band keys, opens_story): keep a new story's first
        signature and point the band keys at the story (first writer wins), for the story
        window. One pipeline of script calls for the batch."""
        if not stories:
            return
        with self.redis.pipeline(transaction=False) as pipe:
            for story_id, signature, band_keys, opens_story in stories:
                keys = [self.key("story", story_id)] if opens_story else []
                keys += [self.key("band", band) for band in band_keys]
                args = [self.settings.story_window_s, story_id, signature, int(opens_story)]
                self._remember_story(keys=keys, args=args, client=pipe)
            pipe.execute()

    def count_delivery(self, task_id: str, retries: int) -> tuple[int, int]:
        """How many times this message (task id and retry number) has now been delivered: in
        all, and since the delivery before the last one that dead-lettered one of its articles
        alone (`isolate`). The delivery limit applies to the second."""
        key = self.key("deliveries", task_id, str(retries))
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, 24 * 3600)
            pipe.get(self.key("deliveries-base", task_id, str(retries)))
            count, _, base = pipe.execute()
        return int(count), int(count) - int(base or 0)

    def isolate(self, task_id: str, retries: int, delivery: int, article_id: str) -> None:
        """Note that delivery number `delivery` of this message dead-lettered one article alone:
        `ISOLATED` in its attempts (later deliveries skip it), and the delivery limit counts
        from this delivery again (as its second), so a second poison article in the message
        gets the same turns as the first instead of the limit taking the whole message."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(self.key("attempts", task_id), article_id, ISOLATED)
            pipe.expire(self.key("attempts", task_id), 24 * 3600)
            base = self.key("deliveries-base", task_id, str(retries))
            pipe.set(base, max(delivery - 1, 0), ex=24 * 3600)
            pipe.execute()

    def note_cut(self, task_id: str, kept: Sequence[str]) -> None:
        """Remember the ids a message kept when it sent its second half on (24 h TTL)."""
        self.redis.set(self.key("cut", task_id), json.dumps(list(kept)), ex=24 * 3600)

    def kept_after_cut(self, task_id: str) -> list[str] | None:
        """The ids a message kept after a cut (`note_cut`), or None if it was not cut."""
        raw = self.redis.get(self.key("cut", task_id))
        return [str(i) for i in json.loads(raw)] if raw else None

    def note_attempt(self, task_id: str, article_id: str) -> None:
        """Note that a message's task starts extracting one of its articles alone."""
        key = self.key("attempts", task_id)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(key, article_id, 1)
            pipe.expire(key, 24 * 3600)
            pipe.execute()

    def attempts(self, task_id: str) -> dict[str, int]:
        """How often each article of a message was started alone (see `note_attempt`);
        `ISOLATED` for one the message already dead-lettered alone (see `isolate`)."""
        return {k: int(v) for k, v in self.redis.hgetall(self.key("attempts", task_id)).items()}

    def forget_attempts(self, task_id: str) -> None:
        """The message's task finished: its attempts are no longer evidence."""
        self.redis.delete(self.key("attempts", task_id))

    def oldest_message_age_s(self) -> dict[str, float | None]:
        """Seconds since the oldest waiting message of each queue was published (None: empty)."""
        now = time.time()
        ages: dict[str, float | None] = {}
        for queue in QUEUES:
            raw = self.redis.lindex(self.key(queue), -1)
            sent = None
            if raw:
                try:
                    sent = json.loads(raw).get("headers", {}).get("pantau_sent_at")
                except ValueError:
                    sent = None
            ages[queue] = round(now - float(sent), 3) if sent else None
        return ages

    def claim(self, *parts: str, ttl_s: int | None = None) -> bool:
        """Set a one-time mark; True only for the first caller (idempotency of redelivered work)."""
        ttl = ttl_s or self.settings.article_ttl_s
        return bool(self.redis.set(self.key("claim", *parts), "1", nx=True, ex=ttl))

    # Feeds ----------------------------------------------------------------------------------

    def _feed_key(self, url: str) -> str:
        return self.key("feed", hashlib.sha1(url.encode(), usedforsecurity=False).hexdigest()[:16])

    def feed_state(self, url: str) -> dict[str, str]:
        """A feed's polling state: etag, last_modified, failures, next_due, last_error..."""
        return dict(self.redis.hgetall(self._feed_key(url)))

    def claim_feed_poll(self, url: str) -> bool:
        """True when the feed is due and no other poll of it is in flight (the lock expires)."""
        key = self._feed_key(url)
        due = float(self.redis.hget(key, "next_due") or 0)
        if due > time.time():
            return False
        return bool(self.redis.set(f"{key}:polling", "1", nx=True, ex=300))

    def update_feed_state(self, url: str, delay_s: float, **fields: object) -> None:
        """Record a poll's outcome and when the next one is due; release the poll lock."""
        key = self._feed_key(url)
        mapping = {k: str(v) for k, v in fields.items()}
        mapping.update(
            url=url, next_due=f"{time.time() + delay_s:.3f}", polled_at=f"{time.time():.3f}"
        )
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hset(key, mapping=mapping)
            pipe.expire(key, 30 * 24 * 3600)
            pipe.delete(f"{key}:polling")
            pipe.execute()

    # Counters -------------------------------------------------------------------------------

    def count(self, name: str, n: int = 1) -> None:
        """Add n to one of the deployment's article counters."""
        if n:
            self.redis.incrby(self.key("count", name), n)

    def count_once(self, name: str, article_ids: Iterable[str], value: str = "1") -> int:
        """Count each article once under `name`, however often it is redelivered.

        The mark holds `value` (the alert stage stores the completion time there).
        """
        ids = list(article_ids)
        if not ids:
            return 0
        keys = [self.key("count", name), *(self.key("once", name, i) for i in ids)]
        return int(self._count_once(keys=keys, args=[self.settings.article_ttl_s, value]))

    def counters(self) -> dict[str, int]:
        """Every counter's current value."""
        values = self.redis.mget([self.key("count", name) for name in COUNTERS])
        return {name: int(v or 0) for name, v in zip(COUNTERS, values, strict=True)}

    def is_ingested(self, article_id: str) -> bool:
        """Whether the ingest stage already took this article."""
        return bool(self.redis.exists(self.key("once", "ingested", article_id)))

    def is_completed(self, article_id: str) -> bool:
        """Whether the article already passed every stage."""
        return bool(self.redis.exists(self.key("once", "completed", article_id)))

    def completion_times(self, article_ids: Sequence[str]) -> list[float | None]:
        """When each article completed the alert stage (Unix time), or None."""
        if not article_ids:
            return []
        raw = self.redis.mget([self.key("once", "completed", i) for i in article_ids])
        return [float(v) if v else None for v in raw]

    def dead_lettered_count(self, article_ids: Sequence[str]) -> int:
        """How many of these articles are in the dead-letter stream."""
        if not article_ids:
            return 0
        return int(self.redis.exists(*[self.key("once", "dead_lettered", i) for i in article_ids]))

    # Alerts ---------------------------------------------------------------------------------

    def append_alert_once(self, alert: Alert) -> bool:
        """Record an alert in the stream unless its alert id was recorded before (atomic)."""
        payload = alert.model_dump_json()
        added = self._append_once(
            keys=[self.key("alerted", alert.alert_id), self.key("alerts")],
            args=[
                self.settings.article_ttl_s,
                self.settings.alert_stream_maxlen,
                payload,
                alert.actor_id,
            ],
        )
        if added:
            self.redis.publish(self.key("alerts", "live"), payload)
        return bool(added)

    def recent_alerts(
        self, actor: str | None, since_ms: int, limit: int
    ) -> list[tuple[str, Alert]]:
        """Newest alerts first, optionally of one actor, since a Unix time in milliseconds."""
        found: list[tuple[str, Alert]] = []
        last = "+"
        while len(found) < limit:
            entries = self.redis.xrevrange(
                self.key("alerts"), max=last, min=f"{since_ms}-0", count=500
            )
            for entry_id, fields in entries:
                if actor is None or fields.get("actor_id") == actor:
                    found.append((entry_id, Alert.model_validate_json(fields["alert"])))
            if len(entries) < 500:
                break
            last = f"({entries[-1][0]}"
        return found[:limit]

    def read_alerts(self, after: str = "0-0", count: int = 10_000) -> list[tuple[str, Alert]]:
        """Alerts in the stream after stream id `after`, oldest first."""
        entries = self.redis.xrange(
            self.key("alerts"), min=f"({after}" if after != "0-0" else "-", count=count
        )
        return [
            (entry_id, Alert.model_validate_json(fields["alert"])) for entry_id, fields in entries
        ]

    def last_alert_id(self) -> str:
        """The id of the newest alert in the stream, or 0-0."""
        last = self.redis.xrevrange(self.key("alerts"), count=1)
        return last[0][0] if last else "0-0"

    def append_subscription_alert_once(
        self, subscription_id: str, dedup: str, cooldown_s: int, alert: Alert
    ) -> str | None:
        """Record an alert for a subscription once per cooldown; the stream id, or None if seen."""
        added = self._append_sub_once(
            keys=[self.key("sub-sent", dedup), self.key("sub", subscription_id, "alerts")],
            args=[max(1, cooldown_s), SUBSCRIPTION_STREAM_MAXLEN, alert.model_dump_json()],
        )
        return str(added) if added else None

    def publish(self, subscription_id: str, message: dict[str, Any]) -> None:
        """Publish a message on the subscription's Redis pub/sub channel."""
        self.redis.publish(self.key("sub", subscription_id), json.dumps(message))

    def read_subscription_alerts(
        self, subscription_id: str, start: str = "-", end: str = "+", count: int = 10_000
    ) -> list[tuple[str, Alert]]:
        """A subscription's alerts between two stream ids (ids are millisecond timestamps)."""
        entries = self.redis.xrange(
            self.key("sub", subscription_id, "alerts"), min=start, max=end, count=count
        )
        return [
            (entry_id, Alert.model_validate_json(fields["alert"])) for entry_id, fields in entries
        ]

    # Subscriptions, tokens, watchlist overrides ---------------------------------------------

    def save_subscription(self, subscription: Subscription) -> None:
        """Create or replace a subscription (alert workers see it on their next task)."""
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key("subs"), subscription.id, subscription.model_dump_json())
            pipe.incr(self.key("subs", "version"))
            pipe.execute()

    def delete_subscription(self, subscription_id: str) -> bool:
        """Remove a subscription; False when there was none."""
        with self.redis.pipeline() as pipe:
            pipe.hdel(self.key("subs"), subscription_id)
            pipe.incr(self.key("subs", "version"))
            pipe.delete(self.key("sub", subscription_id, "alerts"))
            removed, _, _ = pipe.execute()
        return bool(removed)

    def subscriptions(self) -> list[Subscription]:
        """Every subscription."""
        return [Subscription.model_validate_json(v) for v in self.redis.hvals(self.key("subs"))]

    def subscription(self, subscription_id: str) -> Subscription | None:
        """One subscription, or None."""
        raw = self.redis.hget(self.key("subs"), subscription_id)
        return Subscription.model_validate_json(raw) if raw else None

    def version(self, name: str) -> int:
        """A change counter (`subs`, `watchlist`) that workers compare to reload."""
        return int(self.redis.get(self.key(name, "version")) or 0)

    def save_token(self, record: TokenRecord) -> None:
        """Store a token's hash and scopes (never the token)."""
        self.redis.hset(self.key("tokens"), record.id, record.model_dump_json())

    def token(self, token_id: str) -> TokenRecord | None:
        """A token record by id."""
        raw = self.redis.hget(self.key("tokens"), token_id)
        return TokenRecord.model_validate_json(raw) if raw else None

    def watchlist_overrides(self) -> dict[str, Actor | None]:
        """Actors put (or deleted: None) through the API, over the watchlist file."""
        raw = self.redis.hgetall(self.key("watchlist"))
        return {k: (Actor.model_validate_json(v) if v != "null" else None) for k, v in raw.items()}

    def put_actor(self, actor: Actor) -> None:
        """Add or replace a watched actor."""
        self._change_watchlist(actor.id, actor.model_dump_json())

    def delete_actor(self, actor_id: str) -> None:
        """Stop watching an actor (also one from the watchlist file)."""
        self._change_watchlist(actor_id, "null")

    def _change_watchlist(self, actor_id: str, value: str) -> None:
        with self.redis.pipeline() as pipe:
            pipe.hset(self.key("watchlist"), actor_id, value)
            pipe.incr(self.key("watchlist", "version"))
            pipe.execute()

    # Evidence indexes -----------------------------------------------------------------------

    def index_extractions(self, extractions: Sequence[Extraction], at: float) -> None:
        """Index processed articles by actor and event type for `GET /v1/articles` (bounded).

        One script call for a batch: each index gets the batch's articles (score `at`) and is
        trimmed (age, length) and given its TTL once.
        """
        members: dict[str, set[str]] = defaultdict(set)
        for extraction in extractions:
            keys = {self.key("idx", "articles")}
            keys |= {
                self.key("idx", "actor", e.canonical) for e in extraction.entities if e.canonical
            }
            keys |= {self.key("idx", "event", ev.type) for ev in extraction.events}
            for key in keys:
                members[key].add(extraction.article_id)
        if not members:
            return
        ttl = self.settings.article_ttl_s
        args: list[str | float | int] = [at, at - ttl, INDEX_MAXLEN, ttl]
        for ids in members.values():
            args += [len(ids), *ids]
        self._index(keys=list(members), args=args)

    def find_articles(
        self, actor: str | None, event: str | None, since: float, limit: int
    ) -> list[str]:
        """Newest article ids mentioning `actor` and/or coding `event`, since a Unix time."""
        keys = []
        if actor:
            keys.append(self.key("idx", "actor", actor))
        if event:
            keys.append(self.key("idx", "event", event))
        if not keys:
            keys.append(self.key("idx", "articles"))
        if len(keys) == 1:
            return list(self.redis.zrevrangebyscore(keys[0], "+inf", since, start=0, num=limit))
        found = [set(self.redis.zrevrangebyscore(k, "+inf", since)) for k in keys]
        both = found[0] & found[1]
        scores = self.redis.zmscore(keys[0], list(both)) if both else []
        ranked = sorted(zip(both, scores, strict=True), key=lambda item: -(item[1] or 0))
        return [article_id for article_id, _ in ranked[:limit]]

    # Dead letters ---------------------------------------------------------------------------

    def dead_letter(self, entry: dict[str, Any]) -> str:
        """Append a failed message with its reason to the dead-letter stream."""
        fields = {k: v if isinstance(v, str) else json.dumps(v) for k, v in entry.items()}
        return str(self.redis.xadd(self.key("dlq"), fields, maxlen=100_000, approximate=True))

    def dead_letters(self, count: int = 100) -> list[tuple[str, dict[str, str]]]:
        """The oldest entries of the dead-letter stream."""
        return list(self.redis.xrange(self.key("dlq"), count=count))

    def dlq_depth(self) -> int:
        """How many messages wait in the dead-letter stream."""
        return int(self.redis.xlen(self.key("dlq")))

    # Queues and workers ---------------------------------------------------------------------

    def queue_depths(self) -> dict[str, int]:
        """Messages waiting in each Celery queue (not counting those reserved by workers)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for queue in QUEUES:
                pipe.llen(self.key(queue))
            return dict(zip(QUEUES, (int(n) for n in pipe.execute()), strict=True))

    def unacked(self) -> int:
        """Messages delivered to workers and not yet acknowledged (kombu's unacked hash)."""
        return int(self.redis.hlen(self.key("unacked")))

    def register_worker(
        self, nodename: str, kind: str, pid: int, host: str, concurrency: int = 1
    ) -> None:
        """Record a worker's main process (and its pool size) and mark it alive."""
        record = {
            "kind": kind,
            "pid": pid,
            "host": host,
            "concurrency": concurrency,
            "started_at": time.time(),
        }
        self.redis.hset(self.key("workers"), nodename, json.dumps(record))
        self.heartbeat(nodename)

    def heartbeat(self, nodename: str) -> None:
        """Keep a worker marked alive for a few more seconds."""
        self.redis.set(self.key("worker", nodename, "alive"), "1", ex=WORKER_ALIVE_TTL_S)

    def unregister_worker(self, nodename: str) -> None:
        """Forget a worker that shut down cleanly."""
        self.redis.hdel(self.key("workers"), nodename)
        self.redis.delete(self.key("worker", nodename, "alive"))

    def workers(self) -> list[dict[str, Any]]:
        """Registered workers with `alive` from their heartbeat."""
        records = self.redis.hgetall(self.key("workers"))
        names = sorted(records)
        alive = self.redis.mget([self.key("worker", n, "alive") for n in names]) if names else []
        result = []
        for name, is_alive in zip(names, alive, strict=True):
            record = json.loads(records[name])
            result.append(
                {
                    "name": name,
                    "kind": record["kind"],
                    "pid": record["pid"],
                    "host": record["host"],
                    "concurrency": int(record.get("concurrency", 1)),
                    "alive": bool(is_alive),
                }
            )
        return result

    def worker_slots(self, kind: str) -> int:
        """Pool processes of the live workers of one kind, on every host."""
        return sum(w["concurrency"] for w in self.workers() if w["kind"] == kind and w["alive"])

    def status(self) -> dict[str, Any]:
        """What `pantau status --json` prints."""
        counters = self.counters()
        return {
            "queues": self.queue_depths(),
            "unacked": self.unacked(),
            "articles": {
                "accepted": counters["accepted"],
                "ingested": counters["ingested"],
                "duplicates": counters["duplicates"],
                "completed": counters["completed"],
                "dead_lettered": counters["dead_lettered"],
            },
            "stages": {
                "ingest": {"processed": counters["ingested"], "failed": counters["failed:ingest"]},
                "extract": {
                    "processed": counters["extracted"],
                    "failed": counters["failed:extract"],
                },
                "alert": {"processed": counters["completed"], "failed": counters["failed:alert"]},
            },
            "oldest_message_age_s": self.oldest_message_age_s(),
            "alerts": counters["alerts"],
            "dead_letter_depth": self.dlq_depth(),
            "workers": self.workers(),
        }

    def drop_namespace(self) -> int:
        """Delete every key of this namespace (tests and demo runs on a shared Redis)."""
        deleted = 0
        for key in self.redis.scan_iter(match=f"{self.ns}:*", count=1000):
            deleted += int(self.redis.delete(key))
        return deleted

    def ping(self) -> None:
        """Raise TransientError when Redis does not answer."""
        try:
            self.redis.ping()
        except redis.RedisError as err:
            raise TransientError(f"Redis unreachable: {err}") from err
