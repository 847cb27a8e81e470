"""``hazardloop calendar …`` and ``hazardloop policy …`` through click's CliRunner (own SQLite database)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from click.testing import Result

from engine import calendar
from engine.config import PROJECT_ROOT
from web.cli import main

SCHEDULE_2027 = {
    "source": "国办发明电〔2026〕7号",
    "holidays": [
        {"from": "2027-01-01", "to": "2027-01-03", "name": "元旦"},
        {"from": "2027-02-05", "to": "2027-02-12", "name": "春节"},
        {"from": "2027-04-03", "to": "2027-04-05", "name": "清明"},
        {"from": "2027-05-01", "to": "2027-05-05", "name": "劳动节"},
        {"date": "2027-06-09", "name": "端午"},
        {"date": "2027-09-15", "name": "中秋"},
        {"from": "2027-10-01", "to": "2027-10-07", "name": "国庆节"},
    ],
    "workdays": [
        {"date": "2027-01-31", "name": "春节"},
        {"date": "2027-02-20", "name": "春节"},
        {"date": "2027-05-08", "name": "劳动节"},
        {"date": "2027-09-26", "name": "国庆节"},
        {"date": "2027-10-09", "name": "国庆节"},
    ],
}


@pytest.fixture(autouse=True)
def fresh_calendar_cache() -> Iterator[None]:
    calendar.reset_cache()
    yield
    calendar.reset_cache()


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("cli_calendar")
    env = {
        "DATABASE_URL": f"sqlite:///{root / 'cli.sqlite'}",
        "HAZARDLOOP_ENV": "dev",
        "HAZARDLOOP_VAR_DIR": str(root / "var"),
        "HAZARDLOOP_AUDIT_KEY": "cli-test-audit-key-0123456789",
        "HAZARDLOOP_PROCESSES_DIR": str(PROJECT_ROOT / "processes"),
    }
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(main, list(args), env=env, catch_exceptions=False)

    result = invoke("init")
    assert result.exit_code == 0, result.output
    assert "工作日历：已载入 2004–2026 年节假日安排（23 年，chinese-calendar 1.11.0）" in result.stdout
    assert "策略配置：national@1、fire@1" in result.stdout
    return invoke


def write(tmp_path: Path, name: str, data: object) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return str(path)


def test_show_an_official_year_with_its_breaks_and_adjusted_workdays(cli):
    result = cli("calendar", "show", "2026")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "2026 年：正式安排" in out and "来源：chinese-calendar 1.11.0" in out
    assert "春节  2026-02-15 至 2026-02-23（9 天）" in out
    assert "国庆节  2026-10-01 至 2026-10-07（7 天）" in out
    assert "2026-02-14（星期六）  春节" in out and "2026-02-28（星期六）  春节" in out


def test_show_a_provisional_year(cli):
    result = cli("calendar", "show", "2028")
    assert result.exit_code == 0, result.output
    assert "2028 年：暂定（尚未录入国务院办公厅通知）" in result.stdout
    assert "春节  2028-01-25 至 2028-02-01（8 天）" in result.stdout
    assert "暂定日历不含调休上班日" in result.stdout


def test_add_days_prints_the_day_and_whether_it_is_provisional(cli):
    result = cli("calendar", "add-days", "2026-02-13", "1")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "2026-02-13 + 1 个工作日 = 2026-02-14（星期六，春节调休上班）"
    back = cli("calendar", "add-days", "2026-02-24", "-1")
    assert back.exit_code == 0, back.output
    assert "2026-02-24 - 1 个工作日 = 2026-02-14" in back.stdout
    later = cli("calendar", "add-days", "2028-01-20", "5")
    assert later.exit_code == 0, later.output
    assert "= 2028-02-04（星期五，工作日（暂定））" in later.stdout  # 1/21, 1/24, (春节), 2/2–2/4
    assert "暂定：" in later.stdout


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("calendar", "add-days", "2100-01-01", "1"), "2004–2099"),
        (("calendar", "add-days", "2099-12-31", "3"), "超出范围"),
        (("calendar", "add-days", "2026-13-01", "1"), "日期无效"),
        (("calendar", "show", "2003"), "超出范围"),
    ],
)
def test_out_of_range_and_bad_dates_exit_2(cli, args, fragment):
    result = cli(*args)
    assert result.exit_code == 2
    assert fragment in result.stderr and "Traceback" not in result.output


def test_enter_year_refuses_bad_input_and_changes_nothing(cli, tmp_path):
    bad = dict(SCHEDULE_2027, workdays=[{"date": "2027-02-01", "name": "春节"}])  # a Monday
    for path, fragment in (
        (write(tmp_path, "bad.json", bad), "workdays[0]: 2027-02-01 是星期一"),
        (write(tmp_path, "broken.json", "{"), "不是合法的 JSON"),
        (write(tmp_path, "shape.json", {"holidays": "春节"}), "holidays: 必须是列表"),
        (str(tmp_path / "missing.json"), "无法读取文件"),
    ):
        result = cli("calendar", "enter-year", "2027", path)
        assert result.exit_code == 2, result.output
        assert fragment in result.stderr
    assert "2027 年：暂定" in cli("calendar", "show", "2027").stdout
    unknown = cli(
        "calendar", "enter-year", "2027", write(tmp_path, "ok.json", SCHEDULE_2027), "--by", "nobody"
    )
    assert unknown.exit_code == 2 and "nobody" in unknown.stderr


def test_enter_year_makes_it_official(cli, tmp_path):
    before = cli("calendar", "add-days", "2027-01-29", "1")
    assert "= 2027-02-01" in before.stdout and "暂定" in before.stdout
    result = cli(
        "calendar", "enter-year", "2027", write(tmp_path, "2027.json", SCHEDULE_2027), "--by", "admin"
    )
    assert result.exit_code == 0, result.output
    assert "2027 年节假日安排已录入：放假 28 天，调休上班 5 天；5 天的工作日状态与原日历不同" in result.stdout
    assert "已重新计算 0 个期限" in result.stdout
    shown = cli("calendar", "show", "2027").stdout
    assert "2027 年：正式安排" in shown and "来源：国办发明电〔2026〕7号" in shown and "系统管理员" in shown
    assert "2027-01-31（星期日）  春节" in shown
    after = cli("calendar", "add-days", "2027-01-29", "1")
    assert after.stdout.strip() == "2027-01-29 + 1 个工作日 = 2027-01-31（星期日，春节调休上班）"
    assert cli("calendar", "seed").stdout.strip().startswith("节假日安排已是最新")
    assert cli("calendar", "recompute").stdout.strip().startswith("已重新计算 0 个期限")


def test_policy_show_and_import(cli, tmp_path):
    listing = cli("policy", "show")
    assert listing.exit_code == 0, listing.output
    assert "national@1" in listing.stdout and "fire@1" in listing.stdout
    assert "listing_announcement" in listing.stdout and "5 个工作日" in listing.stdout
    fire = cli("policy", "show", "--sector", "fire", "--region", "341821")
    assert fire.exit_code == 0, fire.output
    assert fire.stdout.startswith("fire@1  消防安全（重大火灾隐患）")
    assert "继承 national@1" in fire.stdout and "major_fire_unresolved_escalation" in fire.stdout
    assert "6 个月" in fire.stdout

    national = PROJECT_ROOT / "processes" / "policies" / "national.json"
    same = cli("policy", "import", str(national))
    assert same.stdout.strip() == "national@1  未变更（与最新版本内容相同）"
    changed = json.loads(national.read_text(encoding="utf-8"))
    changed["values"]["closure_review"]["value"] = 7
    new = cli("policy", "import", write(tmp_path, "national.json", changed))
    assert new.exit_code == 0, new.output
    assert "national@2  新版本已导入" in new.stdout
    assert "提示：fire 继承自 national 的旧版本" in new.stdout
    assert "7 日" in cli("policy", "show").stdout

    changed["values"]["closure_review"]["unit"] = "weeks"
    bad = cli("policy", "import", write(tmp_path, "bad.json", changed))
    assert bad.exit_code == 2
    assert "values.closure_review: unit 必须是" in bad.stderr
    unknown = cli("policy", "show", "--region", "999999")
    assert unknown.exit_code == 2 and "999999" in unknown.stderr
