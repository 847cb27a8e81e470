"""/admin/calendar: the working-day calendar in the web administration.

The years and their status, one year's schedule, and the form that enters 2027's official
schedule — the same engine calls as ``hazardloop calendar enter-year`` — which moves a provisional
working-day deadline (the 重大 loop's 核销审查 period counted in working days, as in
tests/engine/test_deadlines.py) and refuses bad input with 422 without changing anything.

Entering 2027 is committed (the app runs on its own engine): ``restore_2027`` takes it out again
after every test, so 2027 stays provisional for the rest of the session.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from collections.abc import Callable
from collections.abc import Iterator

import pytest
import time_machine
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import Engine
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm import sessionmaker

from engine import calendar
from engine import db as dbmod
from engine import definitions
from engine.demo import DemoWorld
from engine.models import CalendarDay
from engine.models import CalendarRevision
from engine.models import CalendarYear
from engine.models import DefinitionBinding
from engine.models import DefinitionVersion
from engine.models import Event
from engine.runtime import EngineContext
from tests.engine.test_deadlines import APPLIED
from tests.engine.test_deadlines import HOLIDAYS_2027
from tests.engine.test_deadlines import OFFICIAL_DUE
from tests.engine.test_deadlines import PROVISIONAL_DUE
from tests.engine.test_deadlines import START
from tests.engine.test_deadlines import WORKDAYS_2027
from tests.engine.test_deadlines import at_regulator_review
from tests.processes.test_hazard_major import MajorDriver
from tests.web.test_admin import as_user
from tests.web.test_admin import csrf_of
from tests.web.test_admin import post
from tests.web.test_admin import text

Login = Callable[..., object]
YEAR = 2027
NOTICE = "国办发明电〔2026〕7号"
#: the 2027 schedule of tests/engine/test_deadlines.py, as an administrator types it (ranges)
HOLIDAY_ROWS = [
    ("元旦", "2027-01-01", "2027-01-03"),
    ("春节", "2027-02-05", "2027-02-12"),  # 除夕–初七, as the provisional rules have it
    ("清明", "2027-04-03", "2027-04-05"),
    ("劳动节", "2027-05-01", "2027-05-05"),
    ("端午", "2027-06-09", ""),  # one day: the last day may stay blank
    ("中秋", "2027-09-15", "2027-09-15"),
    ("国庆节", "2027-10-01", "2027-10-07"),
]
WORKDAY_ROWS = [
    ("2027-01-31", "春节"),  # Sunday before 春节: the tenth working day after 1/28 becomes 2/18
    ("2027-02-20", "春节"),
    ("2027-05-08", "劳动节"),
    ("2027-09-26", "国庆节"),
    ("2027-10-09", "国庆节"),
]
MAJOR_WD = "t_cal_major_wd"
#: a row of the month-by-month table: date, weekday, 休/班 tag
DAY = r'{day}</td>\s*<td[^>]*>{weekday}</td>\s*<td[^>]*><span class="tag {tag}">'


def form(
    holidays: list[tuple[str, str, str]] = HOLIDAY_ROWS,
    workdays: list[tuple[str, str]] = WORKDAY_ROWS,
    **fields: str,
) -> dict[str, object]:
    """The enter form as a browser posts it: one value per row and column, blank rows included."""
    holidays = [*holidays, ("", "", "")]
    workdays = [*workdays, ("", ""), ("", "")]
    return {
        "source": NOTICE,
        "holiday_name": [h[0] for h in holidays],
        "holiday_first": [h[1] for h in holidays],
        "holiday_last": [h[2] for h in holidays],
        "workday_date": [w[0] for w in workdays],
        "workday_name": [w[1] for w in workdays],
        **fields,
    }


def calendar_state(committed: sessionmaker[Session]) -> tuple[str, str, int]:
    """2027's status and source, and the calendar's revision token (any change moves it)."""
    with committed() as session:
        schedule = calendar.year_schedule(session, YEAR)
        token = session.scalar(select(CalendarRevision.token).where(CalendarRevision.id == 1))
        days = len(session.scalars(select(CalendarDay.id).where(CalendarDay.year == YEAR)).all())
    return f"{schedule.status} {schedule.source}", str(token), days


@pytest.fixture(autouse=True)
def restore_2027(engine: Engine, world: DemoWorld) -> Iterator[None]:
    """2027 provisional before and after each test (chinese-calendar 1.11.0 stops at 2026)."""
    calendar.reset_cache()
    factory = dbmod.make_sessionmaker(engine)
    with factory() as session:
        assert calendar.year_schedule(session, YEAR).status == "provisional"
    yield
    with factory.begin() as session:
        session.execute(delete(CalendarDay).where(CalendarDay.year == YEAR))
        session.execute(delete(CalendarYear).where(CalendarYear.year == YEAR))
        session.execute(
            update(CalendarRevision).where(CalendarRevision.id == 1).values(token=secrets.token_hex(16))
        )
    calendar.reset_cache()


@pytest.fixture
def working_day_major(engine: Engine, world: DemoWorld, ctx: EngineContext) -> Iterator[None]:
    """New 重大 hazards of the chem enterprise's sector start on hazard_major with its 10-day
    核销审查 period in working days (tests/engine/test_deadlines.py's variant), deployed under its
    own process key so that no other hazard ever starts on it.

    Request it before ``client``/``committed``: it is then torn down after ``committed`` deleted
    the hazards that run on the variant.
    """
    xml = (ctx.settings.processes_dir / "hazard_major.bpmn").read_bytes()
    assert xml.count(b"&quot;calendar_days&quot;") == 1
    variant = xml.replace(b"&quot;calendar_days&quot;", b"&quot;working_days&quot;")
    variant = variant.replace(b'"hazard_major"', f'"{MAJOR_WD}"'.encode())
    factory = dbmod.make_sessionmaker(engine)
    with factory.begin() as session:
        definitions.deploy(session, bpmn_xml=variant, filename=f"{MAJOR_WD}.bpmn", forms=ctx.forms)
        definitions.bind(
            session, grade="major", process_key=MAJOR_WD, sector_code=world.enterprises["chem"].sector_code
        )
    yield
    with factory.begin() as session:
        session.execute(delete(DefinitionBinding).where(DefinitionBinding.process_key == MAJOR_WD))
        session.execute(delete(DefinitionVersion).where(DefinitionVersion.process_key == MAJOR_WD))


# --- who may come in ------------------------------------------------------------------------------


PAGES = ["/admin/calendar", "/admin/calendar/2027", "/admin/calendar/2027/enter"]


@pytest.mark.parametrize("path", PAGES)
def test_calendar_pages_are_refused_to_other_roles(client: FlaskClient, login: Login, path: str) -> None:
    assert client.get(path).status_code == 302  # anonymous: to the login form
    as_user(client, login, "zhang_rectifier")
    assert client.get(path).status_code == 403


def test_only_a_system_administrator_enters_a_schedule(
    app: Flask, login: Login, committed: sessionmaker[Session]
) -> None:
    before = calendar_state(committed)
    client = as_user(app.test_client(), login, "zhang_rectifier")
    assert post(client, "/admin/calendar/2027/enter", **form()).status_code == 403  # type: ignore[attr-defined]
    # the 安委办 may look at the calendar (as at the organisations), not change it
    client = as_user(app.test_client(), login, "he_office")
    page = text(client.get("/admin/calendar"))
    assert "2027" in page and "/admin/calendar/2027/enter" not in page
    assert "/admin/calendar/2027/enter" not in text(client.get("/admin/calendar/2027"))
    assert client.get("/admin/calendar/2027/enter").status_code == 403
    assert post(client, "/admin/calendar/2027/enter", **form()).status_code == 403  # type: ignore[attr-defined]
    assert calendar_state(committed) == before


# --- looking --------------------------------------------------------------------------------------


def test_the_years_with_their_status(client: FlaskClient, login: Login) -> None:
    as_user(client, login, "admin")
    response = client.get("/admin/calendar")
    assert response.status_code == 200
    page = text(response)
    assert 'href="/admin/calendar" aria-current="page"' in page and "节假日日历" in page  # the admin nav
    row_2026 = re.search(r'<tr id="year-2026".*?</tr>', page, re.S)
    assert row_2026 and "正式" in row_2026[0] and "chinese-calendar" in row_2026[0]
    row_2027 = re.search(r'<tr id="year-2027".*?</tr>', page, re.S)
    assert row_2027 and "暂定" in row_2027[0] and 'href="/admin/calendar/2027/enter"' in row_2027[0]
    assert 'id="year-2004"' in page and 'id="year-2003"' not in page
    assert re.search(r"<td[^>]*>\d+ 天</td>\s*<td[^>]*>\d+ 天</td>", row_2026[0])  # holidays, 调休 days
    assert client.get("/admin/calendar?year=2031").headers["Location"] == "/admin/calendar/2031"


def test_an_official_year_month_by_month(client: FlaskClient, login: Login) -> None:
    as_user(client, login, "admin")
    page = text(client.get("/admin/calendar/2026"))
    assert "2026 年节假日安排" in page and "正式安排" in page and "chinese-calendar" in page
    assert "春节</strong> 2026-02-15 至 2026-02-23" in page
    february = page[page.index("<h3>2 月</h3>") : page.index("<h3>3 月</h3>")]
    assert re.search(
        r"02-14</td>\s*<td[^>]*>星期六</td>\s*<td[^>]*><span class=\"tag tag-info\">班", february
    )
    assert re.search(
        r"02-15</td>\s*<td[^>]*>星期日</td>\s*<td[^>]*><span class=\"tag tag-danger\">休", february
    )
    assert "暂定" not in february


def test_a_provisional_year_is_marked(client: FlaskClient, login: Login) -> None:
    as_user(client, login, "admin")
    page = text(client.get("/admin/calendar/2027"))
    assert "暂定：尚未录入国务院办公厅通知" in page and "暂定日历不含调休上班日" in page
    assert "春节</strong> 2027-02-05 至 2027-02-12" in page  # 除夕–初七
    february = page[page.index("<h3>2 月</h3>") : page.index("<h3>3 月</h3>")]
    assert "tag-warning" in february and "tag-info" not in february  # provisional, no 调休 workdays
    assert client.get("/admin/calendar/2003").status_code == 400  # outside 2004–2099: the engine says so


def test_the_form_is_prefilled_with_what_the_calendar_has(client: FlaskClient, login: Login) -> None:
    as_user(client, login, "admin")
    page = text(client.get("/admin/calendar/2027/enter"))
    assert 'name="csrf_token"' in page
    assert 'value="春节"' in page and 'value="2027-02-05"' in page and 'value="2027-02-12"' in page
    assert 'name="confirm"' not in page  # nothing to replace
    seeded = text(client.get("/admin/calendar/2026/enter"))
    assert (
        'value="2026-02-15"' in seeded and 'value="2026-02-23"' in seeded and 'value="2026-02-14"' in seeded
    )
    assert 'name="confirm"' in seeded and 'name="source" value=""' in seeded


# --- entering 2027 --------------------------------------------------------------------------------


def test_entering_2027_makes_it_official_and_moves_a_provisional_deadline(
    working_day_major: None,
    client: FlaskClient,
    login: Login,
    committed: sessionmaker[Session],
    ctx: EngineContext,
    world: DemoWorld,
) -> None:
    driver = MajorDriver(committed, ctx, world, False)
    with time_machine.travel(START, tick=False):
        hid = at_regulator_review(driver)  # 10 working days from 2027-01-28 on the provisional calendar
    assert driver.open_item_due(hid, "regulator_review") == PROVISIONAL_DUE
    number = driver.hazard(hid).number

    with time_machine.travel(APPLIED + dt.timedelta(days=1), tick=False):
        as_user(client, login, "admin")
        listing = text(client.get("/admin/calendar"))
        row = re.search(r'<tr id="year-2027"([^>]*)>.*?</tr>', listing, re.S)
        assert row and 'class="row-overdue"' in row[1] and "1 个" in row[0]  # one provisional deadline
        response = post(client, "/admin/calendar/2027/enter", **form())
        page = text(response)
        assert response.status_code == 200, page  # type: ignore[attr-defined]
    assert "2027 年节假日安排已录入：放假 28 天，调休上班 5 天，5 天工作日状态改变" in page
    assert number in page and "2027-02-19 23:59" in page and "2027-02-18 23:59" in page  # old → new

    with committed() as session:
        schedule = calendar.year_schedule(session, YEAR)
        recomputed = session.scalars(
            select(Event).where(Event.hazard_id == hid, Event.action == "deadline_recomputed")
        ).all()
    assert (schedule.status, schedule.source, schedule.entered_by) == ("official", NOTICE, "系统管理员")
    assert schedule.holidays == sorted(HOLIDAYS_2027) and schedule.workdays == WORKDAYS_2027
    # the work item and the timers moved, with one deadline_recomputed event (the engine's recompute)
    assert driver.open_item_due(hid, "regulator_review") == OFFICIAL_DUE
    assert driver.timer_jobs(hid) == {
        "review_remind": OFFICIAL_DUE - dt.timedelta(days=2),
        "review_overdue": OFFICIAL_DUE,
    }
    [event] = recomputed
    assert event.payload["old_due_at"] == PROVISIONAL_DUE.isoformat()
    assert event.payload["due_at"] == OFFICIAL_DUE.isoformat() and event.payload["calendar_year"] == YEAR

    with time_machine.travel(APPLIED + dt.timedelta(days=1, minutes=5), tick=False):
        listing = text(client.get("/admin/calendar"))
        year_page = text(client.get("/admin/calendar/2027"))
    row = re.search(r'<tr id="year-2027"([^>]*)>.*?</tr>', listing, re.S)
    assert row and "管理员录入" in row[0] and NOTICE in row[0] and "row-overdue" not in row[1]
    assert "正式安排" in year_page and "暂定" not in year_page.split("<h2>逐月安排</h2>")[1]
    assert re.search(
        r"01-31</td>\s*<td[^>]*>星期日</td>\s*<td[^>]*><span class=\"tag tag-info\">班", year_page
    )


def test_an_official_year_is_replaced_only_when_confirmed(
    client: FlaskClient, login: Login, committed: sessionmaker[Session]
) -> None:
    as_user(client, login, "admin")
    assert post(client, "/admin/calendar/2027/enter", **form()).status_code == 200  # type: ignore[attr-defined]
    assert calendar_state(committed)[0] == f"official {NOTICE}"
    corrected = [*WORKDAY_ROWS[:4], ("2027-10-09", "国庆节"), ("2027-02-07", "")]  # a typo: a holiday
    page = text(client.get("/admin/calendar/2027/enter"))
    assert 'name="confirm"' in page and f'value="{NOTICE}"' in page and 'value="2027-01-31"' in page

    before = calendar_state(committed)
    unconfirmed = post(client, "/admin/calendar/2027/enter", **form(source="国办发明电〔2026〕8号"))
    assert unconfirmed.status_code == 422  # type: ignore[attr-defined]
    assert "2027 年已有正式安排，请勾选确认后再替换" in text(unconfirmed)
    assert 'value="国办发明电〔2026〕8号"' in text(unconfirmed)  # what was typed stays
    assert calendar_state(committed) == before

    bad = post(client, "/admin/calendar/2027/enter", **form(workdays=corrected, confirm="1"))
    assert bad.status_code == 422  # type: ignore[attr-defined]
    assert "名称必填" in text(bad) and 'id="workdays[5]-error"' in text(bad)
    assert calendar_state(committed) == before

    replaced = post(
        client,
        "/admin/calendar/2027/enter",
        **form(workdays=WORKDAY_ROWS[1:], source="国办发明电〔2026〕8号", confirm="1"),
    )
    assert replaced.status_code == 200, text(replaced)  # type: ignore[attr-defined]
    assert "调休上班 4 天，1 天工作日状态改变" in text(replaced)  # 1/31 is a Sunday off again
    state = calendar_state(committed)
    assert state[0] == "official 国办发明电〔2026〕8号" and state[1] != before[1]


# --- bad input ------------------------------------------------------------------------------------


def _replace(rows: list, index: int, row: tuple) -> list:
    return [row if i == index else r for i, r in enumerate(rows)]


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        pytest.param(
            {"holidays": _replace(HOLIDAY_ROWS, 1, ("春节", "2027-02-12", "2027-02-05"))},
            "holidays[1]",
            "日期范围无效: 2027-02-12 至 2027-02-05",
            id="last_before_first",
        ),
        pytest.param(
            {"holidays": [*HOLIDAY_ROWS, ("元旦", "2028-01-01", "")]},
            "holidays[7]",
            "2028-01-01 不在 2027 年内",
            id="outside_the_year",
        ),
        pytest.param(
            {"workdays": [*WORKDAY_ROWS, ("2027-02-06", "春节")]},
            "workdays[5]",
            "2027-02-06 重复（已作为放假日期）",
            id="holiday_and_workday",
        ),
        pytest.param(
            {"holidays": [*HOLIDAY_ROWS, ("清明", "2027-04-04", "")]},
            "holidays[7]",
            "2027-04-04 重复（已作为放假日期）",
            id="overlapping_breaks",
        ),
        pytest.param(
            {"holidays": _replace(HOLIDAY_ROWS, 1, ("", "2027-02-05", "2027-02-12"))},
            "holidays[1]",
            "名称必填（例如 春节）",
            id="missing_name",
        ),
        pytest.param(
            {"workdays": _replace(WORKDAY_ROWS, 0, ("2027-02-01", "春节"))},
            "workdays[0]",
            "2027-02-01 是星期一：调休上班日只能是星期六或星期日",
            id="workday_on_a_monday",
        ),
        pytest.param(
            {"workdays": _replace(WORKDAY_ROWS, 2, ("2027-5-8", "劳动节"))},
            "workdays[2]",
            "日期无效: &#39;2027-5-8&#39;（应为 YYYY-MM-DD）",
            id="malformed_date",
        ),
        pytest.param(
            {"holidays": _replace(HOLIDAY_ROWS, 3, ("劳动节", "", "2027-05-05"))},
            "holidays[3]",
            "请填写放假第一天",
            id="missing_first_day",
        ),
        pytest.param({"source": " "}, "source", "请填写通知文号", id="missing_notice"),
    ],
)
def test_bad_input_is_422_with_the_message_on_its_row_and_changes_nothing(
    client: FlaskClient,
    login: Login,
    committed: sessionmaker[Session],
    changes: dict[str, object],
    field: str,
    message: str,
) -> None:
    as_user(client, login, "admin")
    before = calendar_state(committed)
    response = post(client, "/admin/calendar/2027/enter", **form(**changes))  # type: ignore[arg-type]
    page = text(response)
    assert response.status_code == 422, page  # type: ignore[attr-defined]
    assert "请检查标注的字段后重新提交。" in page
    error = re.search(rf'<span class="field-error" id="{re.escape(field)}-error">([^<]*)</span>', page)
    assert error and message in error[1], error and error[1]
    assert page.count('name="holiday_name"') == len(changes.get("holidays", HOLIDAY_ROWS)) + 1  # type: ignore[arg-type]
    assert 'value="2027-10-07"' in page and 'value="国庆节"' in page  # the typed rows are kept
    assert calendar_state(committed) == before


def test_a_post_without_the_csrf_token_is_400_and_changes_nothing(
    client: FlaskClient, login: Login, committed: sessionmaker[Session]
) -> None:
    as_user(client, login, "admin")
    before = calendar_state(committed)
    response = client.post("/admin/calendar/2027/enter", data=form())
    assert response.status_code == 400
    assert calendar_state(committed) == before
    assert csrf_of(client)  # the session still works: the same form with its token goes through
    assert post(client, "/admin/calendar/2027/enter", **form()).status_code == 200  # type: ignore[attr-defined]
