"""The ``hazardloop`` CLI through click's CliRunner, against a temporary SQLite database.

One database is initialised with ``init --demo`` for the module; the tests that change it (timers
under time travel, the tampering check) restore what they touch or only add to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import time_machine
from click.testing import CliRunner
from click.testing import Result
from sqlalchemy import Engine
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import update

from engine import db as dbmod
from engine.config import PROJECT_ROOT
from engine.demo import DEMO_PASSWORD
from engine.demo import DEMO_SCENARIOS
from engine.demo import USERS
from engine.models import Event
from engine.models import Hazard
from web.cli import main


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cli")
    return {
        "DATABASE_URL": f"sqlite:///{root / 'cli.sqlite'}",
        "HAZARDLOOP_ENV": "dev",
        "HAZARDLOOP_VAR_DIR": str(root / "var"),
        "HAZARDLOOP_AUDIT_KEY": "cli-test-audit-key-0123456789",
        "HAZARDLOOP_PROCESSES_DIR": str(PROJECT_ROOT / "processes"),
        "HAZARDLOOP_TICK_SECONDS": "1",
    }


@pytest.fixture(scope="module")
def cli(cli_env: dict[str, str]):
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        return runner.invoke(main, list(args), env={**cli_env, **(env or {})}, catch_exceptions=False)

    return invoke


@pytest.fixture(scope="module")
def db_engine(cli_env: dict[str, str]) -> Iterator[Engine]:
    engine = dbmod.make_engine(cli_env["DATABASE_URL"])
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def initialised(cli, db_engine: Engine) -> Result:
    result = cli("init", "--demo")
    assert result.exit_code == 0, result.output
    return result


def hazard_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Hazard)) or 0


def test_init_demo_twice_creates_the_demo_hazards_once(cli, initialised, db_engine):
    total = len(DEMO_SCENARIOS)
    assert f"[{total}/{total}]" in initialised.stdout
    assert f"已创建 {total} 条演示隐患" in initialised.stdout
    with db_engine.connect() as conn:
        statuses = set(conn.scalars(select(Hazard.status)))
    assert {"planning", "rectifying", "verifying", "reviewing_closure", "closed", "voided"} <= statuses
    assert {"reporting"} <= statuses

    again = cli("init", "--demo")
    assert again.exit_code == 0, again.output
    assert "跳过演示隐患" in again.stdout
    assert hazard_count(db_engine) == total


def test_db_upgrade_is_repeatable(cli, initialised):
    result = cli("db", "upgrade")
    assert result.exit_code == 0, result.output
    assert "数据库已迁移到最新版本" in result.stdout


def test_deploying_a_bundled_file_again_is_unchanged(cli, initialised):
    result = cli("processes", "deploy", str(PROJECT_ROOT / "processes" / "hazard_general.bpmn"))
    assert result.exit_code == 0, result.output
    assert "hazard_general@" in result.stdout and "未变更" in result.stdout


def test_deploying_a_broken_file_names_the_element(cli, initialised, tmp_path: Path):
    source = (PROJECT_ROOT / "processes" / "hazard_general.bpmn").read_text(encoding="utf-8")
    broken = source.replace(
        'name="candidate_role" value="safety_officer"', 'name="candidate_role" value="janitor"', 1
    )
    assert broken != source
    path = tmp_path / "broken.bpmn"
    path.write_text(broken, encoding="utf-8")
    result = cli("processes", "deploy", str(path))
    assert result.exit_code == 2
    assert "assign_plan" in result.stderr and "janitor" in result.stderr
    assert "Traceback" not in result.output


def test_deploying_a_missing_file_exits_2(cli, initialised, tmp_path: Path):
    result = cli("processes", "deploy", str(tmp_path / "nope.bpmn"))
    assert result.exit_code == 2
    assert "nope.bpmn" in result.stderr


def test_tasks_list_shows_a_demo_users_inbox(cli, initialised):
    result = cli("tasks", "list", "--user", "zhang_rectifier")
    assert result.exit_code == 0, result.output
    assert "储罐区可燃气体报警器失效" in result.stdout  # claimed by him in the demo
    assert "本人" in result.stdout and "待认领" in result.stdout
    assert "YH-" in result.stdout and "限期整改" in result.stdout


def test_tasks_list_for_an_unknown_user_exits_2(cli, initialised):
    result = cli("tasks", "list", "--user", "nobody")
    assert result.exit_code == 2
    assert "nobody" in result.stderr
    assert "Traceback" not in result.output


def test_timers_run_due_fires_the_overdue_timer_of_the_demo(cli, initialised):
    result = cli("timers", "run-due")
    assert result.exit_code == 0, result.output
    assert "失败 0" in result.stdout
    # Three days on, the demo hazard whose deadline was "today" is overdue once the sweep runs.
    with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(days=3), tick=False):
        result = cli("timers", "run-due")
        assert result.exit_code == 0, result.output
        assert "失败 0" in result.stdout and "已触发 0" not in result.stdout
        tasks = cli("tasks", "list", "--user", "zhang_rectifier")
    overdue_rows = [line for line in tasks.stdout.splitlines() if "压力管道未按期进行定期检验" in line]
    assert overdue_rows and "逾期" in overdue_rows[0]


def test_worker_once_runs_one_sweep(cli, initialised):
    result = cli("worker", "--once")
    assert result.exit_code == 0, result.output
    assert "到期" in result.stdout


def test_audit_verify_ok_and_tampering_is_reported(cli, initialised, db_engine):
    result = cli("audit", "verify")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("OK")

    with db_engine.begin() as conn:
        event_id, instance_id, payload = conn.execute(
            select(Event.id, Event.instance_id, Event.payload).order_by(Event.id).limit(1)
        ).one()
        conn.execute(update(Event).where(Event.id == event_id).values(payload={**payload, "forged": 1}))
    try:
        broken = cli("audit", "verify")
        assert broken.exit_code == 1
        assert f"实例 {instance_id}" in broken.stdout and f"事件 {event_id}" in broken.stdout
    finally:
        with db_engine.begin() as conn:
            conn.execute(update(Event).where(Event.id == event_id).values(payload=payload))
    assert cli("audit", "verify").exit_code == 0


def test_demo_once_prints_every_login_and_exits_without_serving(cli, initialised, db_engine):
    result = cli("demo", "--once")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for username, (display, _memberships) in USERS.items():
        [row] = [line for line in lines if line.split()[:1] == [username]]
        assert display in row and DEMO_PASSWORD in row
    [chen] = [line for line in lines if line.split()[:1] == ["chen_safety"]]
    assert "安全管理人员（郎溪县华宇化工有限公司）" in chen and chen.split()[-1].isdigit()
    assert "网页服务" not in result.stdout  # --once: one timer sweep, no server
    assert "到期" in result.stdout
    assert hazard_count(db_engine) == len(DEMO_SCENARIOS)


def test_bad_configuration_is_a_message_not_a_traceback(cli, tmp_path: Path):
    result = cli("db", "upgrade", env={"HAZARDLOOP_ENV": "production"})
    assert result.exit_code == 2
    assert "HAZARDLOOP_SECRET_KEY" in result.stderr
    missing = cli("tasks", "list", "--user", "x", env={"DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"})
    assert missing.exit_code == 1
    assert "hazardloop init" in missing.stderr
