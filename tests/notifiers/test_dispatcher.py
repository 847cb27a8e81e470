"""The dispatcher against real local servers: retries while they are down, exactly one arrival each
once they are up, dead letters and ``retry``, expired leases, and two dispatchers at once."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import threading
from collections import Counter
from dataclasses import replace

import pytest
import time_machine
from sqlalchemy import select
from sqlalchemy import update

from engine.models import InAppNotification
from engine.models import OutboxMessage
from engine.models import UserContact
from engine.runtime import EngineContext
from engine.timers import run_due
from notifiers import OutgoingMessage
from notifiers.dispatcher import backoff
from notifiers.dispatcher import build_channels
from notifiers.dispatcher import dispatch_due
from notifiers.dispatcher import retry_message
from notifiers.email import message_id
from tests.driver import Driver
from tests.factories import plan_form

from .conftest import SMTP_DOMAIN
from .conftest import WEBHOOK_SECRET

START = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # Monday 09:00 in Shanghai
AFTER_DEADLINE = dt.datetime(2026, 12, 1, 2, 0, tzinfo=dt.UTC)  # the plan's deadline is 11-30 23:59:59 local
VERIFY_PASS = {"decision": "pass", "opinion": "整改到位", "verifier_signature": "陈静"}
REVIEW_PASS = {"decision": "pass", "opinion": "同意销号", "reviewer_signature": "吴刚"}


def add_contacts(driver, http_sink) -> None:
    users = driver.world.users

    def step(session):
        session.add_all(
            [
                UserContact(
                    user_id=users["chen_safety"].id,
                    email="chen@chem.test",
                    mobile="13800000001",
                    webhook_url=http_sink.url("/robot/chen"),
                ),
                UserContact(
                    user_id=users["zhang_rectifier"].id,
                    email="zhang@chem.test",
                    mobile="13800000002",
                    channels=["inapp", "sms"],
                ),
                UserContact(
                    user_id=users["wu_reviewer"].id,
                    email="wu@gov.test",
                    webhook_url=http_sink.url("/robot/wu"),
                    channels=["email", "webhook"],
                ),
                UserContact(user_id=users["wang_principal"].id, email="wang@chem.test"),
            ]
        )

    driver.step(step)


def drive_to_closure(driver) -> int:
    """Register, plan, let the deadline pass (reminder, overdue), rectify, verify, close."""
    hid = driver.register()
    driver.complete(hid, "assign_plan", "chen_safety", plan_form(dt.date(2026, 11, 30)))
    with time_machine.travel(AFTER_DEADLINE, tick=False):
        result = run_due(driver.sessions, driver.ctx)
        assert result.failed == 0 and result.fired >= 2
        photo = driver.upload(hid, b"after-photo")
        form = {"summary": "已更换探头", "after_photos": [photo], "completed_on": "2026-12-01"}
        driver.complete(hid, "rectify", "zhang_rectifier", form)
        driver.complete(hid, "verify", "chen_safety", VERIFY_PASS)
        driver.complete(hid, "closure_review", "wu_reviewer", REVIEW_PASS)
    assert driver.hazard(hid).status == "closed"
    return hid


def outbox(sessions, **where) -> list[OutboxMessage]:
    with sessions() as session:
        query = select(OutboxMessage).order_by(OutboxMessage.id)
        for key, value in where.items():
            query = query.where(getattr(OutboxMessage, key) == value)
        return list(session.scalars(query))


@pytest.fixture
def driver(sessions, notify_ctx, world):
    with time_machine.travel(START, tick=False):
        yield Driver(sessions, notify_ctx, world, round_trip=False)


def test_messages_wait_while_servers_are_down_and_arrive_once_when_up(
    driver, sessions, notify_settings, smtp_sink, http_sink
):
    add_contacts(driver, http_sink)
    hid = drive_to_closure(driver)
    rows = outbox(sessions, hazard_id=hid)
    # the 提醒敦促函 of the deadline day is a notice as well as a reminder
    assert {r.kind for r in rows} == {"task_created", "reminder", "overdue", "notice_issued", "closed"}
    by_channel = Counter(r.channel for r in rows)
    assert by_channel["email"] and by_channel["webhook"] and by_channel["sms"] and by_channel["inapp"]
    assert len({r.idempotency_key for r in rows}) == len(rows)
    network = [r for r in rows if r.channel in ("email", "webhook", "sms")]
    channels = build_channels(notify_settings, sessions)
    console = channels["console"]

    # 1. every server is down: connection refused, each network message waits for its retry
    down_at = AFTER_DEADLINE + dt.timedelta(hours=1)
    with time_machine.travel(down_at, tick=False):
        first = dispatch_due(sessions, notify_settings, owner="w1", batch=500, channels=channels)
    assert first.claimed == len(rows)
    assert first.retried == len(network) and first.dead == 0
    assert first.sent == len(rows) - len(network)  # in-app and console need no server
    for row in outbox(sessions, hazard_id=hid):
        if row.channel in ("email", "webhook", "sms"):
            assert row.state == "pending" and row.attempts == 1 and row.sent_at is None
            assert "ConnectionRefused" in row.last_error
            assert (
                row.next_attempt_at
                == down_at + backoff(notify_settings, 1)
                == down_at + dt.timedelta(minutes=1)
            )
            assert row.lock_owner is None
        else:
            assert row.state == "sent" and row.attempts == 1
    # a second pass before the backoff has run out sends nothing (and loses nothing)
    with time_machine.travel(down_at + dt.timedelta(seconds=30), tick=False):
        assert dispatch_due(sessions, notify_settings, owner="w1", channels=channels).claimed == 0

    # 2. the servers come up; past the backoff every message arrives
    smtp_sink.start()
    http_sink.start()
    with time_machine.travel(down_at + dt.timedelta(seconds=61), tick=False):
        second = dispatch_due(sessions, notify_settings, owner="w2", batch=500, channels=channels)
        assert second.claimed == len(network) and second.sent == len(network) and second.retried == 0
        assert dispatch_due(sessions, notify_settings, owner="w2", channels=channels).claimed == 0
    assert {r.state for r in outbox(sessions, hazard_id=hid)} == {"sent"}

    # e-mail: one per row, Message-ID from the key, UTF-8 Chinese subject and body
    emails = [r for r in rows if r.channel == "email"]
    assert len(smtp_sink.messages) == len(emails)
    received = {m["X-Hazardloop-Idempotency-Key"]: m for m in smtp_sink.messages}
    assert set(received) == {r.idempotency_key for r in emails}
    for row in emails:
        mail = received[row.idempotency_key]
        assert mail["Message-ID"] == message_id(row.idempotency_key, SMTP_DOMAIN)
        assert mail["To"].addresses[0].addr_spec == row.recipient_address
        assert mail["Subject"].startswith("【")
        assert "YH-" in mail["Subject"] and "隐患编号" in mail.get_content()
    closed_mail = next(m for m in smtp_sink.messages if "已销号" in m["Subject"])
    assert "http://hazardloop.test/hazards/" in closed_mail.get_content()

    # webhooks: one per row, with the key and a signature that verifies over the exact body
    hooks = [r for r in rows if r.channel == "webhook"]
    robot_requests = [q for q in http_sink.requests if q.path.startswith("/robot/")]
    assert len(robot_requests) == len(hooks)
    assert sorted(q.headers["idempotency-key"] for q in robot_requests) == sorted(
        r.idempotency_key for r in hooks
    )
    for request in robot_requests:
        expected = hmac.new(WEBHOOK_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(request.headers["x-hazardloop-signature"], expected)
        body = request.json()
        assert body["msgtype"] == "markdown" and "隐患编号" in body["markdown"]["content"]

    # SMS: one GET per row, key in the URL and the header, the Chinese text URL-decoded intact
    texts = [r for r in rows if r.channel == "sms"]
    sms_requests = http_sink.on("/sms/send")
    assert len(sms_requests) == len(texts)
    for request in sms_requests:
        assert request.method == "GET"
        assert request.query["id"] == request.headers["idempotency-key"]
    by_mobile = Counter(q.query["to"] for q in sms_requests)
    # zhang_rectifier (rectify task, reminder, overdue, the notice) and chen_safety, who left all
    # channels on; each message once
    assert set(by_mobile) == {"13800000001", "13800000002"} and by_mobile["13800000002"] == 4
    assert sorted(r.kind for r in texts if r.recipient_address == "13800000002") == [
        "notice_issued",
        "overdue",
        "reminder",
        "task_created",
    ]
    assert {q.query["id"] for q in sms_requests} == {r.idempotency_key for r in texts}
    assert any("逾期" in q.query["msg"] for q in sms_requests)

    # in-app: one row per in-app message
    with sessions() as session:
        notes = session.scalars(select(InAppNotification).where(InAppNotification.hazard_id == hid)).all()
    assert sorted(n.idempotency_key for n in notes) == sorted(
        r.idempotency_key for r in rows if r.channel == "inapp"
    )
    assert len(console.sent) == by_channel["console"]


def test_dead_letter_after_max_attempts_and_retry_resurrects_it(driver, sessions, notify_settings, smtp_sink):
    settings = replace(notify_settings, notify_channels=("email",), notify_max_attempts=3)
    driver.ctx = EngineContext(settings=settings)

    def contact(session):
        session.add(UserContact(user_id=driver.world.users["chen_safety"].id, email="chen@chem.test"))

    driver.step(contact)
    hid = driver.register()
    [row] = outbox(sessions, hazard_id=hid)
    assert (row.kind, row.channel, row.recipient_address) == ("task_created", "email", "chen@chem.test")
    now = START
    for attempt in range(1, 4):
        with time_machine.travel(now, tick=False):
            result = dispatch_due(sessions, settings, owner="w")
        assert result.claimed == 1
        [row] = outbox(sessions, hazard_id=hid)
        assert row.attempts == attempt
        if attempt < 3:
            assert result.retried == 1 and row.state == "pending"
            assert row.next_attempt_at == now + dt.timedelta(seconds=60 * 2 ** (attempt - 1))
            now = row.next_attempt_at
        else:
            assert result.dead == 1 and row.state == "dead"
    with time_machine.travel(now + dt.timedelta(days=1), tick=False):
        assert dispatch_due(sessions, settings, owner="w").claimed == 0  # dead stays dead

    smtp_sink.start()
    later = now + dt.timedelta(days=1)
    with sessions.begin() as session:
        retry_message(session, row.id, now=later)
    [row] = outbox(sessions, hazard_id=hid)
    assert (row.state, row.attempts, row.next_attempt_at) == ("pending", 0, later)
    with time_machine.travel(later, tick=False):
        assert dispatch_due(sessions, settings, owner="w").sent == 1
    assert len(smtp_sink.messages) == 1
    assert outbox(sessions, hazard_id=hid)[0].state == "sent"


def test_a_permanent_failure_is_dead_at_once(driver, sessions, notify_settings, http_sink):
    settings = replace(notify_settings, notify_channels=("webhook",))
    driver.ctx = EngineContext(settings=settings)

    def contact(session):
        session.add(
            UserContact(user_id=driver.world.users["chen_safety"].id, webhook_url=http_sink.url("/robot/x"))
        )

    driver.step(contact)
    hid = driver.register()
    http_sink.status = 400
    http_sink.start()
    result = dispatch_due(sessions, settings, owner="w")
    assert (result.claimed, result.dead) == (1, 1)
    [row] = outbox(sessions, hazard_id=hid)
    assert row.state == "dead" and row.attempts == 1 and "HTTP 400" in row.last_error


class Crash(BaseException):
    """Stands for the dispatcher process dying mid-batch (not an Exception: nothing catches it)."""


class CrashingChannel:
    def __init__(self) -> None:
        self.calls = 0

    def send(self, message: OutgoingMessage) -> None:
        self.calls += 1
        raise Crash


class Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self._lock = threading.Lock()

    def send(self, message: OutgoingMessage) -> None:
        with self._lock:
            self.sent.append(message.idempotency_key)


def test_a_crashed_dispatchers_lease_expires_and_nothing_is_lost(driver, sessions, notify_settings):
    settings = replace(notify_settings, notify_channels=("console",), notify_lease_seconds=120)
    driver.ctx = EngineContext(settings=settings)
    hid = driver.register()
    rows = outbox(sessions, hazard_id=hid)
    assert rows
    with pytest.raises(Crash):
        dispatch_due(sessions, settings, owner="dying", channels={"console": CrashingChannel()})
    assert {(r.state, r.lock_owner) for r in outbox(sessions, hazard_id=hid)} == {("leased", "dying")}
    recorder = Recorder()
    # the lease still runs: nobody else takes the rows
    assert dispatch_due(sessions, settings, owner="other", channels={"console": recorder}).claimed == 0
    with time_machine.travel(START + dt.timedelta(seconds=121), tick=False):
        result = dispatch_due(sessions, settings, owner="other", channels={"console": recorder})
    assert result.claimed == result.reclaimed == result.sent == len(rows)
    assert sorted(recorder.sent) == sorted(r.idempotency_key for r in rows)
    assert {r.state for r in outbox(sessions, hazard_id=hid)} == {"sent"}


def test_an_unknown_channel_error_is_retried_not_lost(driver, sessions, notify_settings):
    settings = replace(notify_settings, notify_channels=("console",))
    driver.ctx = EngineContext(settings=settings)
    hid = driver.register()

    class Broken:
        def send(self, message: OutgoingMessage) -> None:
            raise RuntimeError("bug in a channel")

    result = dispatch_due(sessions, settings, owner="w", channels={"console": Broken()})
    assert result.retried == result.claimed > 0
    assert all("RuntimeError: bug in a channel" in r.last_error for r in outbox(sessions, hazard_id=hid))
    # a channel not enabled in this process: retried later too
    with time_machine.travel(START + dt.timedelta(hours=1), tick=False):
        result = dispatch_due(sessions, settings, owner="w", channels={})
    assert result.retried == result.claimed > 0
    assert all("未在本进程启用" in r.last_error for r in outbox(sessions, hazard_id=hid))


def test_retry_refuses_sent_and_unknown_messages(driver, sessions, notify_settings):
    from engine.errors import Conflict
    from engine.errors import NotFound

    settings = replace(notify_settings, notify_channels=("console",))
    driver.ctx = EngineContext(settings=settings)
    hid = driver.register()
    dispatch_due(sessions, settings, owner="w", channels={"console": Recorder()})
    row = outbox(sessions, hazard_id=hid)[0]
    with sessions.begin() as session, pytest.raises(Conflict):
        retry_message(session, row.id, now=START)
    with sessions.begin() as session, pytest.raises(NotFound):
        retry_message(session, 10**9, now=START)


# --- two dispatchers at once ---------------------------------------------------------------------------


FACTS = {
    "hazard_id": None,
    "hazard_number": "YH-RACE",
    "hazard_title": "并发发送测试",
    "enterprise_name": "郎溪县华宇化工有限公司",
    "location": "1号储罐区",
    "grade": "general",
    "deadline": None,
    "escalation_level": 0,
    "event": "task_created",
    "event_at": "2026-11-23T01:00:00+00:00",
    "task_key": "rectify",
    "task_title": "整改",
    "task_due_at": None,
    "recipient_name": "陈静",
}


def _race(factory, settings, world, *, count: int = 60) -> None:
    user_id = world.users["chen_safety"].id
    with factory.begin() as session:
        session.execute(update(OutboxMessage).values(state="sent"))  # only ours are due
        session.add_all(
            OutboxMessage(
                idempotency_key=f"race:{i}",
                kind="task_created",
                channel="console",
                recipient_user_id=user_id,
                recipient_address="chen_safety",
                payload={**FACTS, "hazard_number": f"YH-RACE-{i:05d}"},
                state="pending",
                attempts=0,
                next_attempt_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
            )
            for i in range(count)
        )

    class SlowRecorder(Recorder):
        def send(self, message: OutgoingMessage) -> None:
            threading.Event().wait(0.002)  # keep the other dispatcher's claims interleaved
            super().send(message)

    recorder = SlowRecorder()
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []
    claimed_by: dict[str, int] = {}

    def run(owner: str) -> None:
        try:
            barrier.wait(timeout=10)
            total = 0
            while True:
                result = dispatch_due(factory, settings, owner=owner, batch=7, channels={"console": recorder})
                total += result.claimed
                if result.claimed == 0:
                    break
            claimed_by[owner] = total
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
        assert not t.is_alive(), "a dispatcher hung"
    assert not errors, errors
    keys = recorder.sent
    assert len(keys) == count and len(set(keys)) == count, Counter(keys).most_common(3)
    assert sum(claimed_by.values()) == count
    with factory() as session:
        states = Counter(
            session.scalars(select(OutboxMessage.state).where(OutboxMessage.idempotency_key.like("race:%")))
        )
    assert states == {"sent": count}


@pytest.mark.postgres
def test_two_dispatchers_on_postgresql_never_send_a_message_twice(committed, notify_settings, world):
    if committed.kw["bind"].dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL (HAZARDLOOP_TEST_DATABASE_URL=postgresql+psycopg://…)")
    _race(committed, notify_settings, world)
    assert committed.kw["bind"].pool.checkedout() == 0, "a connection leaked"


def test_two_dispatchers_on_an_sqlite_file_never_send_a_message_twice(committed, notify_settings, world):
    if committed.kw["bind"].dialect.name != "sqlite":
        pytest.skip("the SQLite variant runs when the suite runs on SQLite")
    _race(committed, notify_settings, world)


@pytest.mark.postgres
def test_a_claim_skips_rows_another_transaction_holds(committed, notify_settings, world):
    """SKIP LOCKED: rows locked by a claim still in progress are neither waited for nor taken."""
    if committed.kw["bind"].dialect.name != "postgresql":
        pytest.skip("needs PostgreSQL (HAZARDLOOP_TEST_DATABASE_URL=postgresql+psycopg://…)")
    user_id = world.users["chen_safety"].id
    with committed.begin() as session:
        session.execute(update(OutboxMessage).values(state="sent"))
        rows = [
            OutboxMessage(
                idempotency_key=f"held:{i}",
                kind="task_created",
                channel="console",
                recipient_user_id=user_id,
                recipient_address="chen_safety",
                payload={**FACTS, "hazard_number": f"YH-HELD-{i}"},
                state="pending",
                attempts=0,
                next_attempt_at=dt.datetime(2020, 1, 1, tzinfo=dt.UTC),
            )
            for i in range(6)
        ]
        session.add_all(rows)
    held_ids = [r.id for r in rows[:3]]
    recorder = Recorder()
    with committed.begin() as holder:
        holder.execute(select(OutboxMessage.id).where(OutboxMessage.id.in_(held_ids)).with_for_update())
        result = dispatch_due(committed, notify_settings, owner="b", channels={"console": recorder})
        assert result.claimed == result.sent == 3
        assert sorted(recorder.sent) == [f"held:{i}" for i in range(3, 6)]
    result = dispatch_due(committed, notify_settings, owner="b", channels={"console": recorder})
    assert result.sent == 3 and len(set(recorder.sent)) == 6
    assert committed.kw["bind"].pool.checkedout() == 0, "a connection leaked"
