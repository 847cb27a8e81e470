"""``hazardloop inspections generate|list`` through click's CliRunner, and the demo's inspections
after ``init --demo``, on a temporary SQLite database of this module."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from click.testing import Result
from sqlalchemy import Engine
from sqlalchemy import func
from sqlalchemy import select

from engine import db as dbmod
from engine.config import PROJECT_ROOT
from engine.models import InspectionOccurrence
from web.cli import main


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root: Path = tmp_path_factory.mktemp("cli_inspections")
    return {
        "DATABASE_URL": f"sqlite:///{root / 'cli.sqlite'}",
        "HAZARDLOOP_ENV": "dev",
        "HAZARDLOOP_VAR_DIR": str(root / "var"),
        "HAZARDLOOP_AUDIT_KEY": "cli-test-audit-key-0123456789",
        "HAZARDLOOP_PROCESSES_DIR": str(PROJECT_ROOT / "processes"),
    }


@pytest.fixture(scope="module")
def cli(cli_env: dict[str, str]):  # type: ignore[no-untyped-def]
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), env=cli_env, catch_exceptions=False)

    return invoke


@pytest.fixture(scope="module")
def db_engine(cli_env: dict[str, str]) -> Iterator[Engine]:
    engine = dbmod.make_engine(cli_env["DATABASE_URL"])
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def initialised(cli) -> Result:  # type: ignore[no-untyped-def]
    result = cli("init")
    assert result.exit_code == 0, result.output
    return result


def rows(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(InspectionOccurrence)) or 0


def test_generate_is_idempotent_and_marks_missed_periods(cli, initialised, db_engine: Engine) -> None:
    first = cli("inspections", "generate", "--at", "2026-05-20T10:00")
    assert first.exit_code == 0, first.output
    # 4 enterprises, and a city, two counties, a township and a village of the demo organisations
    assert "[2026-05-20 10:00] 排查计划：检查对象 9 个，新建排查任务 9 条，标记逾期 0 条" in first.stdout
    assert rows(db_engine) == 9
    again = cli("inspections", "generate", "--at", "2026-05-20T18:00+08:00")
    assert "新建排查任务 0 条，标记逾期 0 条" in again.stdout
    assert rows(db_engine) == 9

    next_day = cli("inspections", "generate", "--at", "2026-05-21")
    assert "新建排查任务 1 条，标记逾期 1 条" in next_day.stdout  # 东门村: 20 May missed, 21 May new

    missed = cli("inspections", "list", "--state", "missed")
    assert missed.exit_code == 0, missed.output
    lines = missed.stdout.splitlines()
    assert lines[0].split() == ["ID", "排查任务", "周期", "期限", "状态", "填报"]
    assert len(lines) == 2 and "东门村 村级网格排查（2026年5月20日）" in lines[1]
    assert "2026-05-20～2026-05-20" in lines[1] and "逾期未检查" in lines[1]

    mine = cli("inspections", "list", "--user", "wang_principal")
    assert "郎溪县华宇化工有限公司 主要负责人带队检查（高危行业领域）（2026年5月）" in mine.stdout
    assert "东门村" not in mine.stdout
    assert "没有符合条件的排查任务" in cli("inspections", "list", "--state", "done").stdout


def test_a_horizon_creates_the_coming_periods(cli, initialised, db_engine: Engine) -> None:
    before = rows(db_engine)
    result = cli("inspections", "generate", "--at", "2026-05-21T09:00", "--horizon", "3")
    assert result.exit_code == 0, result.output
    assert "新建排查任务 3 条" in result.stdout  # 东门村 22–24 May
    assert rows(db_engine) == before + 3


def test_bad_input_is_one_line_on_stderr(cli, initialised) -> None:
    result = cli("inspections", "generate", "--at", "next tuesday")
    assert result.exit_code == 2
    assert "--at 应为 ISO 8601 时间" in result.stderr and "Traceback" not in result.output
    unknown = cli("inspections", "list", "--user", "nobody")
    assert unknown.exit_code == 2 and "nobody" in unknown.stderr
    assert cli("inspections", "list", "--state", "late").exit_code == 2


def test_init_demo_leaves_inspections_recorded_missed_and_late(cli, initialised, db_engine: Engine) -> None:
    with db_engine.begin() as conn:
        conn.execute(InspectionOccurrence.__table__.delete())
    result = cli("init", "--demo")
    assert result.exit_code == 0, result.output
    with db_engine.connect() as conn:
        states = dict(
            conn.execute(
                select(InspectionOccurrence.state, func.count()).group_by(InspectionOccurrence.state)
            ).all()
        )
        late = conn.scalar(
            select(func.count()).select_from(InspectionOccurrence).where(InspectionOccurrence.completed_late)
        )
        today = dt.datetime.now(ZoneInfo("Asia/Shanghai")).date()
        current = conn.scalar(
            select(func.count())
            .select_from(InspectionOccurrence)
            .where(InspectionOccurrence.period_start <= today, InspectionOccurrence.period_end >= today)
        )
    assert current == 9  # every subject has its current period (华宇化工's month may be done already)
    assert states.get("open", 0) >= 7
    assert states.get("missed", 0) >= 1
    assert states.get("done", 0) >= 2 and late == 1
    # running init again adds nothing
    again = cli("init", "--demo")
    assert again.exit_code == 0, again.output
    assert rows(db_engine) == sum(states.values())
