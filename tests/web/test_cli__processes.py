"""``hazardloop processes …``: publish with author and note, versions, diff, bind, rollback, migrate.

One SQLite database for the module, initialised with the demo hazards (they run on the shipped
hazard_general version 1); the tests run in order and build on each other.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from click.testing import Result
from sqlalchemy import select

from engine import db as dbmod
from engine.config import PROJECT_ROOT
from engine.models import DefinitionVersion
from engine.models import Event
from engine.models import ProcessInstance
from web.cli import main

GENERAL = (PROJECT_ROOT / "processes" / "hazard_general.bpmn").read_text(encoding="utf-8")
#: verify renamed, and the 销号审核 reminder moved (a hazard waiting in the review cannot move)
V2 = GENERAL.replace(
    '<bpmn:userTask id="verify" name="整改验收">', '<bpmn:userTask id="verify" name="整改验收（复核）">'
).replace("days_before(review_due_at, 2)", "days_before(review_due_at, 3)")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("cli_processes")
    return {
        "DATABASE_URL": f"sqlite:///{root / 'cli.sqlite'}",
        "HAZARDLOOP_ENV": "dev",
        "HAZARDLOOP_VAR_DIR": str(root / "var"),
        "HAZARDLOOP_AUDIT_KEY": "cli-test-audit-key-0123456789",
        "HAZARDLOOP_PROCESSES_DIR": str(PROJECT_ROOT / "processes"),
    }


@pytest.fixture(scope="module")
def cli(env: dict[str, str]):
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    result = invoke("init", "--demo")
    assert result.exit_code == 0, result.output
    return invoke


@pytest.fixture(scope="module")
def v2_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert V2.count("整改验收（复核）") == 1 and "days_before(review_due_at, 3)" in V2
    path = tmp_path_factory.mktemp("bpmn") / "hazard_general.bpmn"
    path.write_text(V2, encoding="utf-8")
    return path


def test_deploy_records_author_and_note(cli, v2_file: Path):
    result = cli("processes", "deploy", str(v2_file), "--by", "gao_modeler", "--note", "验收改称复核")
    assert result.exit_code == 0, result.output
    assert "hazard_general@2  新版本已部署" in result.stdout
    versions = cli("processes", "versions", "hazard_general")
    assert versions.exit_code == 0, versions.output
    lines = versions.stdout.splitlines()
    assert lines[0] == "hazard_general：2 个版本"
    newest = next(line for line in lines if line.strip().startswith("2 "))
    assert "gao_modeler" in newest and "验收改称复核" in newest and "general" in newest


def test_diff_lists_the_changed_elements(cli):
    result = cli("processes", "diff", "hazard_general", "1", "2")
    assert result.exit_code == 0, result.output
    assert "hazard_general@1 → hazard_general@2" in result.stdout
    assert "~ verify  userTask  整改验收（复核）" in result.stdout
    assert "name: 整改验收 → 整改验收（复核）" in result.stdout
    assert "~ review_remind" in result.stdout
    assert cli("processes", "diff", "hazard_general", "1", "9").exit_code == 2


def test_bind_and_rollback_by_sector_and_region(cli):
    result = cli(
        "processes", "bind", "hazard_general", "--grade", "general", "--sector", "hazchem",
        "--region", "341821", "--version", "1", "--by", "gao_modeler",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "general/hazchem@341821 → hazard_general@1" in result.stdout
    refused = cli("processes", "bind", "hazard_general", "--grade", "major")
    assert refused.exit_code == 2 and "双报告" in refused.stderr
    undone = cli("processes", "rollback", "--grade", "general", "--sector", "hazchem", "--region", "341821")
    assert undone.exit_code == 0, undone.output
    assert "绑定已撤销" in undone.stdout
    nothing = cli("processes", "rollback", "--grade", "general", "--sector", "hazchem", "--region", "341821")
    assert nothing.exit_code == 2 and "可回退的绑定变更" in nothing.stderr


def test_migrate_dry_run_then_migrate(cli, env: dict[str, str]):
    preview = cli("processes", "migrate", "hazard_general", "--from", "1", "--to", "2", "--dry-run")
    assert preview.exit_code == 0, preview.output
    assert "实例" in preview.stdout and "可以" in preview.stdout
    assert "review_remind" in preview.stdout and "不能" in preview.stdout  # waiting in the review
    assert "未做改动" in preview.stdout
    engine = dbmod.make_engine(env["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            v1 = conn.scalar(
                select(DefinitionVersion.id).where(
                    DefinitionVersion.version == 1, DefinitionVersion.process_key == "hazard_general"
                )
            )
            on_v1 = conn.scalar(
                select(ProcessInstance.id)
                .where(ProcessInstance.definition_version_id == v1, ProcessInstance.status == "running")
                .limit(1)
            )
            assert on_v1 is not None
            assert conn.scalar(select(Event.id).where(Event.action == "migrated")) is None
        result = cli(
            "processes", "migrate", "hazard_general", "--from", "1", "--to", "2", "--by", "gao_modeler"
        )
        assert result.exit_code == 1  # some could not move
        assert "[1/" in result.stdout and "已迁移" in result.stdout
        assert "完成：已迁移" in result.stdout
        with engine.connect() as conn:
            assert conn.scalar(select(Event.id).where(Event.action == "migrated")) is not None
        audit = cli("audit", "verify")
        assert audit.exit_code == 0, audit.output
    finally:
        engine.dispose()
