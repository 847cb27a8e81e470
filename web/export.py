"""The ledger as an Excel workbook (openpyxl write-only mode: rows go to a temporary file, not a tree).

Layout of the one sheet 隐患台账: row 1 the title, row 2 who exported it and when (business time),
row 3 the filters in use, row 4 the column headers (frozen, with an auto-filter), then one row per
hazard. Times are written as Excel dates in business time (Excel has no time zones), formatted
``yyyy-mm-dd hh:mm``; enumerations are written as their Chinese (or English) labels.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from decimal import Decimal
from typing import IO
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from flask import send_file
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment
from openpyxl.styles import Font
from openpyxl.styles import PatternFill
from openpyxl.utils import get_column_letter
from werkzeug.wrappers import Response

from engine import ledger
from engine.models import Hazard
from notifiers.rendering import LEVEL_LABELS

from .i18n import _
from .i18n import grade_label
from .i18n import handling_label
from .i18n import source_label
from .i18n import status_label

XLSX_MIMETYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DATETIME_FORMAT = "yyyy-mm-dd hh:mm"
#: rows above the column headers (title, generated, filters)
HEADER_ROW = 4

Getter = Callable[[Hazard], Any]


def _local(tz: ZoneInfo) -> Callable[[dt.datetime | None], dt.datetime | None]:
    def convert(value: dt.datetime | None) -> dt.datetime | None:
        return value.astimezone(tz).replace(tzinfo=None) if value is not None else None

    return convert


def _columns(
    sectors: Mapping[str, str], tz: ZoneInfo, now: dt.datetime
) -> list[tuple[str, float, Getter, str | None]]:
    """(header, width, value of a hazard, number format) per column, in order."""
    local = _local(tz)

    def region(h: Hazard) -> str:
        return h.region.name if h.region is not None else ""

    def level(h: Hazard) -> str:
        n = h.escalation_level or 0
        return f"L{n} {_(LEVEL_LABELS[n])}" if n in LEVEL_LABELS else _("未升级")

    def funds(h: Hazard) -> float | None:
        return float(h.funds) if isinstance(h.funds, Decimal) else None

    return [
        (_("隐患编号"), 24, lambda h: h.number, None),
        (_("隐患名称"), 36, lambda h: h.title, None),
        (_("生产经营单位"), 30, lambda h: h.enterprise.name, None),
        (_("统一社会信用代码"), 22, lambda h: h.enterprise.credit_code, None),
        (_("属地"), 12, region, None),
        (_("行业"), 14, lambda h: _(sectors.get(h.sector_code, h.sector_code)), None),
        (_("牵头部门"), 24, lambda h: h.lead_department.name if h.lead_department else "", None),
        (_("来源"), 14, lambda h: source_label(h.source), None),
        (_("等级"), 8, lambda h: grade_label(h.grade), None),
        (_("处置方式"), 12, lambda h: handling_label(h.handling_type), None),
        (_("状态"), 12, lambda h: status_label(h.status), None),
        (_("是否逾期"), 10, lambda h: _("是") if ledger.is_overdue(h, now) else _("否"), None),
        (_("升级级别"), 16, level, None),
        (_("挂牌级别"), 10, lambda h: h.listed_level or "", None),
        (_("发现时间"), 17, lambda h: local(h.discovered_at), DATETIME_FORMAT),
        (_("发现人"), 14, lambda h: h.discovered_by or "", None),
        (_("整改期限"), 17, lambda h: local(h.deadline), DATETIME_FORMAT),
        (_("整改责任人"), 14, lambda h: h.responsible_person or "", None),
        (_("整改措施"), 40, lambda h: h.measures or "", None),
        (_("整改资金（元）"), 14, funds, "#,##0.00"),
        (_("应急预案"), 30, lambda h: h.contingency_plan or "", None),
        (_("整改期间防范措施"), 30, lambda h: h.interim_measures or "", None),
        (_("停产停业"), 10, lambda h: _("是") if h.stop_production else _("否"), None),
        (
            _("整改进度"),
            10,
            lambda h: f"{h.progress_percent}%" if h.progress_percent is not None else "",
            None,
        ),
        (_("判定依据"), 36, lambda h: h.determination_basis or "", None),
        (_("场所/部位"), 20, lambda h: h.location, None),
        (_("隐患描述"), 50, lambda h: h.description, None),
        (_("登记时间"), 17, lambda h: local(h.created_at), DATETIME_FORMAT),
        (_("销号时间"), 17, lambda h: local(h.closed_at), DATETIME_FORMAT),
        (_("作废原因"), 24, lambda h: h.void_reason or "", None),
    ]


def ledger_workbook(
    rows: Sequence[Hazard],
    *,
    filters: Sequence[str],
    sectors: Mapping[str, str],
    generated_at: dt.datetime,
    generated_by: str,
    tz: ZoneInfo,
) -> IO[bytes]:
    """The workbook of ``rows`` (loaded with enterprise, region and lead department), in memory, rewound.

    50,000 rows (the export limit) make a workbook of a few MB; the response streams it in chunks.

    Call inside the read session: the rows' relationships are read while writing.
    """
    columns = _columns(sectors, tz, generated_at)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(_("隐患台账"))
    for index, (_header, width, _getter, _fmt) in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(index)].width = width
    ws.freeze_panes = f"C{HEADER_ROW + 1}"
    last = get_column_letter(len(columns))
    ws.auto_filter.ref = f"A{HEADER_ROW}:{last}{HEADER_ROW + max(len(rows), 1)}"

    def cell(value: Any, *, font: Font | None = None, fill: PatternFill | None = None) -> WriteOnlyCell:
        c = WriteOnlyCell(ws, value=value)
        if font is not None:
            c.font = font
        if fill is not None:
            c.fill = fill
        return c

    local = generated_at.astimezone(tz)
    ws.append([cell(_("隐患台账"), font=Font(bold=True, size=14))])
    ws.append(
        [
            _(
                "导出时间：{at}；导出人：{name}；共 {n} 条",
                at=local.strftime("%Y-%m-%d %H:%M"),
                name=generated_by,
                n=len(rows),
            )
        ]
    )
    ws.append([_("筛选条件：") + ("；".join(filters) if filters else _("无（全部可见隐患）"))])
    header_font = Font(bold=True, color="FFFFFF")
    header_fill = PatternFill("solid", fgColor="1D4F91")
    ws.append([cell(header, font=header_font, fill=header_fill) for header, _w, _g, _f in columns])
    wrap = Alignment(vertical="top", wrap_text=False)
    for hazard in rows:
        out = []
        for _header, _width, getter, fmt in columns:
            c = WriteOnlyCell(ws, value=getter(hazard))
            c.alignment = wrap
            if fmt:
                c.number_format = fmt
            out.append(c)
        ws.append(out)
    target = io.BytesIO()
    wb.save(target)
    target.seek(0)
    return target


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the real (Chinese) name per RFC 5987/6266."""
    fallback = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "-_.") else "_" for ch in filename)
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def xlsx_response(workbook: IO[bytes], title: str, local_now: dt.datetime) -> Response:
    """Stream ``workbook`` as ``<title>_<YYYYmmdd-HHMM>.xlsx``, never cached."""
    filename = f"{title}_{local_now.strftime('%Y%m%d-%H%M')}.xlsx"
    response = send_file(workbook, mimetype=XLSX_MIMETYPE, as_attachment=True, download_name=filename)
    response.headers["Content-Disposition"] = content_disposition(filename)
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
