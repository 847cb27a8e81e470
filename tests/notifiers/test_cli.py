"""``hazardloop notifications list|retry`` and the worker's dispatch round, on committed data."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from engine.models import OutboxMessage
from web.cli import main

from .test_dispatcher import FACTS


@pytest.fixture
def cli(committed, settings):
    runner = CliRunner()
    cli_settings = replace(settings, notify_channels=("console",))

    def invoke(*args: str):
        return runner.invoke(main, list(args), obj=cli_settings, catch_exceptions=False)

    return invoke


@pytest.fixture
def messages(committed, world):
    past = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

    def row(key: str, state: str, **extra) -> OutboxMessage:
        return OutboxMessage(
            idempotency_key=key,
            kind="task_created",
            channel="console",
            recipient_user_id=world.users["chen_safety"].id,
            recipient_address="chen_safety",
            payload=FACTS,
            state=state,
            next_attempt_at=past,
            created_at=past,
            **extra,
        )

    with committed.begin() as session:
        dead = row("cli:dead", "dead", attempts=8, last_error="DeliveryError: ConnectionRefusedError")
        sent = row("cli:sent", "sent", attempts=1, subject="【新的待办】整改", sent_at=past)
        session.add_all([dead, sent])
    return dead.id, sent.id


def test_list_retry_and_the_worker_delivers(cli, committed, messages):
    dead_id, sent_id = messages
    listed = cli("notifications", "list", "--state", "dead")
    assert listed.exit_code == 0, listed.output
    lines = listed.stdout.splitlines()
    assert lines[0].split()[:4] == ["ID", "状态", "通道", "类型"]
    assert len(lines) == 2 and lines[1].split()[:3] == [str(dead_id), "dead", "console"]
    assert "ConnectionRefusedError" in lines[1]
    everything = cli("notifications", "list").stdout
    assert any(line.split()[:2] == [str(sent_id), "sent"] for line in everything.splitlines())
    assert "【新的待办】整改" in everything

    retried = cli("notifications", "retry", str(dead_id))
    assert retried.exit_code == 0, retried.output
    assert f"通知 {dead_id}" in retried.stdout and "重新排队" in retried.stdout
    with committed() as session:
        row = session.get(OutboxMessage, dead_id)
        assert (row.state, row.attempts) == ("pending", 0)

    worked = cli("worker", "--once")
    assert worked.exit_code == 0, worked.output
    assert "通知：处理 1 条，成功 1" in worked.stdout
    assert "[通知 task_created] chen_safety: 您有新的待办「整改」" in worked.stdout
    with committed() as session:
        assert session.scalar(select(OutboxMessage.state).where(OutboxMessage.id == dead_id)) == "sent"
    assert cli("notifications", "list", "--state", "dead").stdout.startswith("没有通知")


def test_retry_refuses_a_sent_or_unknown_message(cli, messages):
    _, sent_id = messages
    sent = cli("notifications", "retry", str(sent_id))
    assert sent.exit_code == 2 and "已发送" in sent.stderr
    unknown = cli("notifications", "retry", "999999999")
    assert unknown.exit_code == 2 and "999999999" in unknown.stderr
