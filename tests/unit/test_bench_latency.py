"""The latency bench's pieces: percentiles, pacing, the webhook receiver, the latency figures."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from workers.alert.subscriptions import new_secret
from workers.alert.webhooks import deliver, message_id, signed_headers
from workers.bench import summary
from workers.bench_latency import (
    WebhookReceiver,
    by_window,
    epoch,
    max_depths,
    paced,
    send_paced,
    webhook_figures,
)
from workers.domain import Alert, RawArticle
from workers.ingest.urls import OutboundPolicy


class FakeClock:
    """A monotonic clock that only moves when slept on or stepped."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_summary_interpolates_percentiles() -> None:
    figures = summary([float(v) for v in range(1, 101)])
    assert figures["count"] == 100
    assert figures["p50"] == 50.5
    assert figures["p95"] == 95.0
    assert figures["p99"] == 99.0
    assert figures["max"] == 100.0
    assert figures["mean"] == 50.5


def test_summary_of_nothing_is_zero() -> None:
    assert summary([]) == {
        "count": 0,
        "p50": 0.0,
        "p95": 0.0,
        "p99": 0.0,
        "max": 0.0,
        "mean": 0.0,
    }


def test_paced_yields_each_index_on_its_schedule() -> None:
    clock = FakeClock()
    times = [(index, clock.now, lag) for index, lag in paced(5, 20, clock=clock, sleep=clock.sleep)]
    assert [t[0] for t in times] == [0, 1, 2, 3, 4]
    assert [round(t[1] - 100.0, 6) for t in times] == [0.0, 0.05, 0.1, 0.15, 0.2]
    assert all(lag == 0.0 for _, _, lag in times)


def test_paced_is_open_loop_a_slow_step_does_not_shift_the_schedule() -> None:
    clock = FakeClock()
    sent = []
    for index, lag in paced(4, 10, clock=clock, sleep=clock.sleep):
        sent.append((index, round(clock.now - 100.0, 6), round(lag, 6)))
        if index == 0:
            clock.now += 0.25  # the first send took 250 ms: two slots are late
    assert sent == [(0, 0.0, 0.0), (1, 0.25, 0.15), (2, 0.25, 0.05), (3, 0.3, 0.0)]


def test_paced_refuses_a_rate_that_is_not_positive() -> None:
    with pytest.raises(ValueError, match="rate must be positive"):
        list(paced(1, 0))


def test_send_paced_stamps_each_article_when_it_is_sent() -> None:
    published: list[list[str]] = []
    raw = [RawArticle(id=f"a{i}", text=f"Berita nomor {i} dari Jakarta.") for i in range(3)]
    sent = send_paced(raw, 1000, lambda batch: published.append([a.id for a in batch]), 10_000)
    assert published == [["a0"], ["a1"], ["a2"]]
    assert [a.id for a in sent.articles] == ["a0", "a1", "a2"]
    stamps = [epoch(a.ingested_at) for a in sent.articles]
    assert stamps == sorted(stamps)
    assert sent.first_at - 1 < stamps[0] <= sent.last_at + 0.001
    assert len(sent.lags_s) == 3


def _signed(secret: str, msg_id: str, body: bytes) -> dict[str, str]:
    stamp = int(datetime.now(UTC).timestamp())
    return {"Content-Type": "application/json", **signed_headers(secret, msg_id, stamp, body)}


def test_receiver_records_the_first_arrival_and_counts_raw_duplicates() -> None:
    secret = new_secret()
    times = iter([10.0, 11.0, 12.0])
    receiver = WebhookReceiver(secret, clock=lambda: next(times))
    body = json.dumps({"alert": {"alert_id": "x"}}).encode()
    assert receiver.receive(_signed(secret, "msg_1", body), body) == 200
    assert receiver.receive(_signed(secret, "msg_1", body), body) == 200
    assert receiver.receive(_signed(secret, "msg_2", body), body) == 200
    assert receiver.ids() == {"msg_1", "msg_2"}
    assert receiver.first_seen == {"msg_1": 10.0, "msg_2": 12.0}
    assert receiver.raw_duplicates == 1
    assert receiver.bodies["msg_1"] == {"alert": {"alert_id": "x"}}


def test_receiver_refuses_a_bad_signature_and_does_not_record_it() -> None:
    secret = new_secret()
    receiver = WebhookReceiver(secret)
    body = b'{"a": 1}'
    assert receiver.receive(_signed(new_secret(), "msg_1", body), body) == 401
    headers = _signed(secret, "msg_2", body)
    assert receiver.receive(headers, b'{"a": 2}') == 401  # body changed after signing
    assert receiver.receive({"webhook-id": "msg_3"}, body) == 401  # no signature at all
    assert receiver.ids() == set()
    assert receiver.bad_signatures == 3


def test_receiver_verifies_a_real_delivery_over_http() -> None:
    secret = new_secret()
    policy = OutboundPolicy.from_setting("127.0.0.1")
    with WebhookReceiver(secret) as receiver:
        body = b'{"type": "alert.created"}'
        good = deliver(f"{receiver.url}/hook", body, msg_id="msg_a", secret=secret, policy=policy)
        again = deliver(f"{receiver.url}/hook", body, msg_id="msg_a", secret=secret, policy=policy)
        forged = deliver(
            f"{receiver.url}/hook", body, msg_id="msg_b", secret=new_secret(), policy=policy
        )
    assert good.delivered and again.delivered
    assert forged.status == 401 and not forged.retry
    assert receiver.ids() == {"msg_a"}
    assert receiver.raw_duplicates == 1
    assert receiver.bad_signatures == 1


def test_receiver_refuses_connections_while_stopped_and_comes_back_on_its_port() -> None:
    secret = new_secret()
    policy = OutboundPolicy.from_setting("127.0.0.1")
    receiver = WebhookReceiver(secret)
    receiver.start()
    port = receiver.port
    receiver.stop()
    down = deliver(receiver.url, b"{}", msg_id="msg_1", secret=secret, policy=policy)
    receiver.start()
    try:
        up = deliver(receiver.url, b"{}", msg_id="msg_1", secret=secret, policy=policy)
    finally:
        receiver.stop()
    assert down.status is None and down.retry
    assert up.delivered and receiver.port == port
    assert receiver.raw_duplicates == 0


def _alert(article_id: str, actor_id: str, ingested: str, alerted: str) -> Alert:
    return Alert(
        alert_id=f"{article_id}-{actor_id}",
        article_id=article_id,
        story_id=article_id,
        actor_id=actor_id,
        actor_name=actor_id,
        spans=[],
        snippet="",
        language="id",
        ingested_at=ingested,
        alerted_at=alerted,
    )


def test_webhook_figures_time_each_measured_alert_from_ingest_to_receipt() -> None:
    ingested = "2026-11-26T10:00:00.000Z"
    start = epoch(ingested)
    alerts = [
        _alert("a1", "kpk", ingested, "2026-11-26T10:00:00.060Z"),
        _alert("a2", "kpk", ingested, "2026-11-26T10:00:00.100Z"),
        _alert("warm", "kpk", ingested, "2026-11-26T10:00:00.050Z"),  # not measured
        _alert("a3", "kpk", ingested, "2026-11-26T10:00:00.070Z"),  # never arrived
    ]
    expected = {message_id("sub", a.alert_id): a for a in alerts}
    receiver = WebhookReceiver()
    ids = list(expected)
    receiver.first_seen = {ids[0]: start + 0.080, ids[1]: start + 0.150, ids[2]: start + 0.07}
    figures = webhook_figures(
        expected,
        receiver,
        {"a1": start, "a2": start, "a3": start},
        {"a1": start + 0.050, "a2": start + 0.090},
    )
    assert figures["alerts_recorded"] == 3
    assert figures["alerts_delivered"] == 2
    assert figures["missing_alerts"] == 1
    assert figures["webhook_latency_ms"]["count"] == 2
    assert figures["webhook_latency_ms"]["max"] == pytest.approx(150.0, abs=0.2)
    assert figures["webhook_latency_ms"]["mean"] == pytest.approx(115.0, abs=0.2)
    stages = figures["webhook_stages_ms"]
    assert stages["ingest_to_extracted"]["max"] == pytest.approx(90.0, abs=0.2)
    assert stages["extracted_to_alerted"]["max"] == pytest.approx(10.0, abs=0.2)
    assert stages["alerted_to_received"]["max"] == pytest.approx(50.0, abs=0.2)


def test_by_window_splits_latency_and_queue_depth_by_minute_of_the_run() -> None:
    points = [(1000.0 + t, float(t)) for t in range(0, 120, 10)]  # latency grows with time
    depths = [(1005.0, {"extract": 2, "alert": 0}), (1070.0, {"extract": 40, "alert": 1})]
    rows = by_window(points, depths, start=1000.0)
    assert [r["from_s"] for r in rows] == [0, 60]
    assert rows[0]["p50"] == 25.0 and rows[1]["p50"] == 85.0
    assert [r["extract_queue_max"] for r in rows] == [2, 40]
    assert max_depths(depths) == {"extract": 40, "alert": 1}
