"""A small message catalogue: Simplified Chinese is the source language, English a translation.

Write user-facing text in Chinese and wrap it in ``_()``; the Chinese text *is* the message id::

    from web.i18n import _
    flash(_("已作废 {number}", number=hazard.number), "success")

    {{ _("我的待办") }}   {{ _("共 {n} 项", n=items|length) }}   (templates: ``_`` is a global)

``_()`` returns the English entry of :data:`EN` when the request's locale is ``en`` and the entry
exists, otherwise the Chinese text; ``{name}`` placeholders are filled with ``str.format``
(placeholders only — never pass user input as the message itself). To translate a new string,
add ``"中文": "English"`` to :data:`EN`. A missing entry falls back to Chinese, never fails.

The locale is the user's choice stored in the session by ``/lang/<code>`` (links in the user
menu), else the best match of the ``Accept-Language`` header, else Chinese.

Labels of enum values reuse the ``*_LABELS`` dicts of ``engine.models`` (so the CLI and the web
say the same thing) and are translated like any other text: in templates use the filters
``role_label``, ``status_label``, ``grade_label``, ``source_label``, ``handling_label``,
``region_level_label``, ``work_item_state_label``, and ``localtime`` for an aware UTC datetime
shown in business time (``{{ item.due_at|localtime }}``, ``|localtime("%Y-%m-%d")``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from flask import Blueprint
from flask import Flask
from flask import g
from flask import has_request_context
from flask import redirect
from flask import request
from flask import session
from werkzeug.wrappers import Response

from engine.models import Grade
from engine.models import HandlingType
from engine.models import HazardSource
from engine.models import HazardStatus
from engine.models import RegionLevel
from engine.models import Role
from engine.models import WorkItemState
from engine.models.hazard import GRADE_LABELS
from engine.models.hazard import SOURCE_LABELS
from engine.models.hazard import STATUS_LABELS
from engine.models.org import REGION_LEVEL_LABELS
from engine.models.org import ROLE_LABELS

from .session import engine_context

SUPPORTED_LOCALES = ("zh", "en")
DEFAULT_LOCALE = "zh"
#: session key holding the user's explicit choice
SESSION_KEY = "lang"
#: ``<html lang>`` per locale
HTML_LANG = {"zh": "zh-CN", "en": "en"}

HANDLING_LABELS = {HandlingType.IMMEDIATE: "即查即改", HandlingType.DEADLINE: "限期整改"}
WORK_ITEM_STATE_LABELS = {
    WorkItemState.OPEN: "待办",
    WorkItemState.COMPLETED: "已完成",
    WorkItemState.CANCELLED: "已取消",
}

#: Chinese source text -> English.
EN: dict[str, str] = {
    # product, navigation, layout
    "隐患排查治理闭环系统": "Hazard Rectification Closed Loop",
    "我的待办": "My tasks",
    "隐患台账": "Hazard register",
    "登记隐患": "Register hazard",
    "销号审核": "Closure reviews",
    "管理": "Administration",
    "流程设计": "Process design",
    "菜单": "Menu",
    "角色": "Roles",
    "语言": "Language",
    "退出登录": "Log out",
    "跳到主要内容": "Skip to main content",
    # login / logout
    "登录": "Log in",
    "用户登录": "Sign in",
    "用户名": "Username",
    "密码": "Password",
    "请输入用户名和密码": "Enter your username and password",
    "用户名或密码错误": "Incorrect username or password",
    "登录失败次数过多，已暂时锁定。请在 {minutes} 分钟后再试，或联系系统管理员。": (
        "Too many failed sign-in attempts; sign-in is locked for now. "
        "Try again in {minutes} minutes or contact your administrator."
    ),
    "欢迎，{name}": "Welcome, {name}",
    "您已退出登录": "You have been logged out",
    "请先登录": "Please log in first",
    "使用单位分配的账号登录。忘记密码请联系系统管理员。": (
        "Sign in with the account your organisation gave you. "
        "If you forgot your password, contact your system administrator."
    ),
    # home dashboard
    "工作台": "Dashboard",
    "待办合计": "Open tasks",
    "我已认领": "Claimed by me",
    "待认领": "Unclaimed",
    "已逾期": "Overdue",
    "待办任务列表页面尚在建设中，以上为您待办的统计。": (
        "The task list page is being built; these are the counts of your open tasks."
    ),
    "暂无待办任务": "No open tasks",
    # errors
    "错误": "Error",
    "返回首页": "Back to home",
    "请求无效": "Bad request",
    "请求内容不是有效的 JSON": "The request body is not valid JSON",
    "请求格式不受支持": "Unsupported request format",
    "需要登录": "Login required",
    "请先登录后再访问该页面。": "Please log in to see this page.",
    "无权访问": "Forbidden",
    "您没有权限执行该操作。": "You are not allowed to do this.",
    "页面不存在": "Not found",
    "您访问的页面或记录不存在，或您无权查看。": ("The page or record does not exist, or you may not see it."),
    "不支持该请求方法": "Method not allowed",
    "该地址不支持此请求方法。": "This address does not accept this request method.",
    "操作冲突": "Conflict",
    "提交内容有误": "Invalid input",
    "请检查标注的字段后重新提交。": "Check the marked fields and submit again.",
    "流程定义无效": "Invalid process definition",
    "表达式无效": "Invalid expression",
    "上传内容过大": "Request too large",
    "请求内容超过 {mb} MB 上限。": "The request exceeds the {mb} MB limit.",
    "请求过于频繁": "Too many requests",
    "请求过于频繁，请稍后再试。": "Too many requests; try again later.",
    "服务器内部错误": "Internal server error",
    "服务器出现错误，已记录。请稍后重试，或联系系统管理员。": (
        "The server hit an error, which has been logged. Try again later or contact your administrator."
    ),
    "服务暂不可用": "Service unavailable",
    "数据库暂时不可用，请稍后重试。": "The database is unavailable; try again shortly.",
    "页面已过期或请求来源无效，请刷新页面后重试。": (
        "The page has expired or the request did not come from this site; reload the page and try again."
    ),
    "需要有效的 API 令牌": "A valid API token is required",
    "API 令牌无效": "The API token is invalid",
    "API 令牌已过期": "The API token has expired",
    "API 令牌已被吊销": "The API token has been revoked",
    # the JSON API and its docs page (web/api/)
    "请求体必须是 JSON 对象": "The request body must be a JSON object",
    "API 文档": "API documentation",
    "OpenAPI 文档：": "OpenAPI document: ",
    "请启用 JavaScript 查看交互式文档，或直接下载上面的 OpenAPI 文档。": (
        "Enable JavaScript for the interactive documentation, or download the OpenAPI document above."
    ),
    # roles
    "整改责任人": "Rectifier",
    "安全管理人员": "Safety officer",
    "主要负责人": "Principal",
    "网格员": "Grid worker",
    "执法检查人员": "Inspector",
    "部门审核人员": "Department reviewer",
    "部门流程管理员": "Process administrator",
    "安委办管理员": "Safety committee office",
    "举报受理人员": "Tip officer",
    "系统管理员": "System administrator",
    # statuses
    "已登记": "Registered",
    "双报告": "Dual report",
    "方案制定": "Planning",
    "整改中": "Rectifying",
    "待验收": "Awaiting verification",
    "评估中": "Evaluating",
    "申请核销": "Applying for closure",
    "审核销号": "Closure review",
    "已销号": "Closed",
    "已作废": "Voided",
    "移交追责": "Referred for accountability",
    # grades
    "一般": "General",
    "突出": "Prominent",
    "重大": "Major",
    # sources
    "企业自查上报": "Enterprise self-check",
    "督导检查发现": "Supervisory inspection",
    "群众举报查实": "Verified public tip",
    "从业人员报告": "Employee report",
    "部门移交": "Transferred by a department",
    "监测预警": "Monitoring alert",
    "事故调查发现": "Accident investigation",
    "上级检查发现": "Higher-level inspection",
    "网格巡查": "Grid patrol",
    "专家诊查": "Expert review",
    # handling types, region levels, work item states
    "即查即改": "Fix on the spot",
    "限期整改": "Rectify by deadline",
    "省": "Province",
    "市": "City",
    "县": "County",
    "乡镇": "Township",
    "村(网格)": "Village (grid)",
    "待办": "Open",
    "已完成": "Completed",
    "已取消": "Cancelled",
    # tasks: inbox, task page, form fields, uploads (web/pages/tasks.py, web/uploads.py)
    "组待办": "Group tasks",
    "逾期": "Overdue",
    "按到期时间": "By due date",
    "按创建时间（新的在前）": "By creation (newest first)",
    "按隐患编号": "By hazard number",
    "待办分类": "Task lists",
    "搜索": "Search",
    "隐患编号、标题或部位": "Hazard number, title or location",
    "等级": "Grade",
    "状态": "Status",
    "排序": "Sort",
    "全部": "All",
    "筛选": "Filter",
    "清除": "Clear",
    "任务": "Task",
    "隐患": "Hazard",
    "期限": "Due",
    "办理人": "Assignee",
    "操作": "Actions",
    "办理": "Handle",
    "查看": "View",
    "认领": "Claim",
    "释放": "Release",
    "转办": "Delegate",
    "今日到期": "Due today",
    "即将到期": "Due soon",
    "已逾期 {n} 天": "{n} days overdue",
    "逾期完成": "Completed late",
    "您没有已认领的待办任务。可到「组待办」认领任务。": (
        "You have no claimed tasks. Claim one from “Group tasks”."
    ),
    "暂无待认领的任务": "No unclaimed tasks",
    "没有逾期的任务": "No overdue tasks",
    "仅显示前 {n} 项，请用筛选缩小范围。": "Showing the first {n}; use the filters to narrow the list.",
    "待审批的延期申请": "Extension requests awaiting decision",
    "申请延期至 {day}": "Extension requested to {day}",
    "已认领「{title}」": "Claimed “{title}”",
    "已释放「{title}」，任务回到组待办": "Released “{title}”; it is back among the group tasks",
    "已将「{title}」转办": "Delegated “{title}”",
    "已提交「{title}」": "Submitted “{title}”",
    "请选择转办对象": "Choose whom to delegate to",
    "草稿已保存": "Draft saved",
    "{reason}。您填写的内容已保存为草稿，不会丢失。": (
        "{reason}. What you entered has been saved as a draft and is not lost."
    ),
    "已载入您于 {at} 保存的草稿。": "Loaded the draft you saved at {at}.",
    "该任务已于 {at} 由 {name} 办结。": "This task was completed by {name} at {at}.",
    "您已认领此任务。": "You have claimed this task.",
    "此任务已由 {name} 认领。": "{name} has claimed this task.",
    "此任务尚未认领，认领后其他人将不能办理。": (
        "Nobody has claimed this task; once claimed, only you can do it."
    ),
    "您可以查看此任务，但不能办理（需要角色：{role}）。": (
        "You can see this task but not do it (it needs the role: {role})."
    ),
    "转办给他人": "Delegate to someone else",
    "转办对象": "Delegate to",
    "请选择": "Choose…",
    "没有其他可以办理该任务的人员。": "Nobody else may do this task.",
    "提交": "Submit",
    "保存草稿": "Save draft",
    "提交人：{name}，提交时间：{at}": "Submitted by {name} at {at}",
    "您当前不能填写此表单。": "You cannot fill in this form now.",
    "您保存的内容": "What you saved",
    "企业": "Enterprise",
    "部位": "Location",
    "整改期限": "Rectification deadline",
    "发现时间": "Discovered",
    "整改进度": "Progress",
    "整改前照片": "Photos before rectification",
    "查看隐患档案": "Hazard file",
    "其他操作": "Other actions",
    "必填": "Required",
    "元": "yuan",
    "姓名": "Name",
    "输入本人姓名作为签字": "Type your name as your signature",
    "须全部勾选": "All must be ticked",
    "整改前": "Before",
    "整改后": "After",
    "选择文件": "Choose files",
    "JPEG、PNG 或 WebP 照片": "JPEG, PNG or WebP photos",
    "照片或 PDF 文件": "Photos or PDF files",
    "最多 {n} 个": "at most {n}",
    "至少 {n} 个": "at least {n}",
    "上传": "Upload",
    "上传失败，文件将随表单一起提交": "Upload failed; the files will be sent with the form",
    "保留": "Keep",
    "保留 {name}": "Keep {name}",
    "拍摄于 {at}": "Taken {at}",
    "请选择要上传的文件": "Choose a file to upload",
    "文件 {name} 为空": "The file {name} is empty",
    "文件 {name} 超过 {mb} MB 上限": "The file {name} exceeds the {mb} MB limit",
    "文件 {name} 的类型不受支持，只接受 {kinds}": (
        "The file {name} is not supported; only {kinds} are accepted"
    ),
    "文件 {name} 不是有效的图片": "The file {name} is not a valid image",
    # actions beside the happy path (web/pages/actions.py)
    "隐患操作": "Hazard actions",
    "您对该隐患没有可执行的操作。": "There is nothing you may do to this hazard.",
    "动态更新": "Progress update",
    "报告整改进度和现场情况": "Report rectification progress and the situation on site",
    "提交进展": "Submit progress",
    "延期申请": "Extension request",
    "当前期限：{day}": "Current deadline: {day}",
    "提交申请": "Submit request",
    "审批": "Decide",
    "等待负有监管职责的部门审批。": "Waiting for the supervising department's decision.",
    "认定拒不整改/虚假整改": "Record refusal / fake rectification",
    "认定后隐患直接升级至移交追责": "The hazard is referred for accountability at once",
    "认定后隐患将直接升级至移交追责，确定吗？": "The hazard will be referred for accountability. Continue?",
    "认定类型": "Finding",
    "拒不整改": "Refusal to rectify",
    "虚假整改": "Fake rectification",
    "情况说明": "Details",
    "确认认定": "Record finding",
    "作废": "Void",
    "重复登记、经核实不成立等情形；流程终止，记录全部保留": (
        "Duplicate or unsubstantiated; the loop stops and every record is kept"
    ),
    "作废后流程终止，确定吗？": "Voiding stops the loop. Continue?",
    "确认作废": "Void hazard",
    "重开": "Reopen",
    "已销号或已作废的隐患重新进入整改流程": "A closed or voided hazard starts the rectification loop again",
    "确认重开": "Reopen hazard",
    "原因": "Reason",
    "整改进展已更新": "Progress updated",
    "延期申请已提交，等待审批": "Extension requested; waiting for a decision",
    "已认定{label}，该隐患已升级至移交追责": "Recorded: {label}; the hazard is referred for accountability",
    "已作废 {number}": "Voided {number}",
    "已重开 {number}，重新进入整改流程": "Reopened {number}; the rectification loop starts again",
    "延期审批": "Extension decision",
    "申请时间": "Requested at",
    "原期限": "Previous deadline",
    "申请延期至": "Requested deadline",
    "延期理由": "Reason for extension",
    "审批结果": "Decision",
    "已同意": "Approved",
    "未同意": "Denied",
    "提交审批": "Submit decision",
    "已同意延期申请，整改期限已变更": "Extension approved; the deadline has moved",
    "已驳回延期申请": "Extension denied",
    # hazards: registration, ledger, export, hazard file (web/pages/hazards.py, web/export.py)
    "您的账号没有可以登记隐患的企业范围，请联系系统管理员。": (
        "Your account has no enterprise to register hazards for; contact your administrator."
    ),
    "隐患主体": "Subject",
    "生产经营单位": "Enterprise",
    "行业领域": "Sector",
    "与企业所属行业相同": "Same as the enterprise's sector",
    "决定适用的判定标准和牵头部门（谁主管谁牵头）。": (
        "Decides the grading criteria and the lead department (whoever supervises the sector leads)."
    ),
    "隐患情况": "The hazard",
    "隐患名称": "Title",
    "场所/部位": "Location",
    "来源渠道": "Source",
    "隐患描述": "Description",
    "北京时间；补录存量隐患时可填写过去的时间。": (
        "Beijing time; when back-filling older hazards a past time may be entered."
    ),
    "排查人": "Found by",
    "等级与处置": "Grade and handling",
    "隐患等级": "Grade",
    "处置方式": "Handling",
    "仅一般隐患可即查即改；突出隐患限期整改，重大隐患挂账整改。": (
        "Only general hazards may be fixed on the spot; prominent ones get a deadline, major ones a plan."
    ),
    "判定依据": "Grading basis",
    "判定标准名称、条款及版本": "Standard, clause and version",
    "整改期限（补录）": "Deadline (back-fill)",
    "一般留空，由整改方案确定；补录已有期限的存量隐患时填写。": (
        "Usually left empty (the plan sets it); fill in when back-filling a hazard that has a deadline."
    ),
    "挂牌督办": "Listed for supervision",
    "未挂牌": "Not listed",
    "已责令停产停业或停止使用（重患必停）": "Production or use has been stopped (major hazards must stop)",
    "整改期间防范措施": "Interim measures",
    "监管部门": "Supervising departments",
    "留空则按“谁主管谁牵头”自动确定牵头部门。": (
        "Leave empty to choose the lead department by sector (whoever supervises leads)."
    ),
    "牵头部门": "Lead department",
    "自动确定": "Automatic",
    "协同部门": "Co-responsible departments",
    "登记": "Registered",
    "取消": "Cancel",
    "提交登记": "Register",
    "登记后可在隐患档案页面上传整改前照片。": "After registering, upload before photos on the hazard's page.",
    "导出 Excel": "Export to Excel",
    "关键词": "Keywords",
    "编号、名称、部位或企业": "Number, title, location or enterprise",
    "地区": "Region",
    "行业": "Sector",
    "来源": "Source",
    "未逾期": "Not overdue",
    "升级级别": "Escalation level",
    "发现日期从": "Found from",
    "发现日期至": "Found until",
    "顺序": "Order",
    "从新到旧（降序）": "Newest first",
    "从旧到新（升序）": "Oldest first",
    "每页": "Per page",
    "{n} 条": "{n}",
    "查询": "Search",
    "重置": "Reset",
    "符合条件": "Matching",
    "重大隐患": "Major hazards",
    "未销号": "Not closed",
    "筛选条件：": "Filters: ",
    "属地": "Region",
    "挂牌": "Listed",
    "分页": "Pages",
    "上一页": "Previous",
    "下一页": "Next",
    "第 {page}/{pages} 页，共 {total} 条": "Page {page} of {pages}, {total} in all",
    "共 {total} 条": "{total} in all",
    "没有符合条件的隐患。": "No hazard matches.",
    "一患一档": "Hazard file",
    "升级": "Escalated",
    "停产停业": "Production stopped",
    "本页目录": "On this page",
    "基本信息": "Record",
    "流程图": "Diagram",
    # working-day calendar (web/pages/admin_calendar.py, templates/admin/calendar*.html)
    "节假日日历": "Holiday calendar",
    (
        "工作日期限按法定节假日和调休计算。已有正式安排的年份来自 chinese-calendar"
        " 或管理员录入的国务院办公厅通知；其他年份按暂定规则推算（不含调休上班日，期限只会偏晚、不"
        "会偏早），录入正式安排后，涉及该年的期限自动重新计算。"
    ): (
        "Working-day deadlines follow the public holidays and adjusted working days. Official years come "
        "from chinese-calendar or from the State Council notice an administrator entered; other years are "
        "computed provisionally (without adjusted working days, so deadlines can only be later, never "
        "earlier), and deadlines touching a year are recomputed once its official schedule is entered."
    ),
    "{year} 年的正式节假日安排尚未录入，涉及该年的期限目前按暂定日历计算。": (
        "The official holiday schedule for {year} has not been entered; deadlines in {year} are provisional."
    ),
    "已有 {n} 个进行中的期限涉及该年。": "{n} running deadlines reach into that year.",
    "录入 {year} 年安排": "Enter the {year} schedule",
    "年份，如 {year}": "Year, e.g. {year}",
    "查看某一年": "Show a year",
    "年份": "Year",
    "放假": "Days off",
    "调休上班": "Adjusted working days",
    "暂定期限": "Provisional deadlines",
    "今年": "this year",
    "正式": "Official",
    "系统载入": "seeded",
    "管理员录入": "entered by an administrator",
    "暂定": "Provisional",
    "{n} 天": "{n} days",
    "{n} 个": "{n}",
    "暂定规则": "provisional rules",
    "录入": "Enter",
    "更正": "Correct",
    "“暂定期限”是进行中流程里按暂定日历计算、计数区间涉及该年的工作日期限个数。": (
        "“Provisional deadlines”: working-day deadlines of running processes computed on the provisional "
        "calendar whose counting period touches the year."
    ),
    "{year} 年节假日安排": "Holiday schedule {year}",
    "正式安排": "Official schedule",
    "录入正式安排": "Enter the official schedule",
    "更正安排": "Correct the schedule",
    (
        "暂定：尚未录入国务院办公厅通知，以下按暂定规则推算（周末、固定日期节日、农历节日与清明），"
        "不含调休上班日。据此计算的期限只会偏晚、不会偏早，录入正式安排后自动重新计算。"
    ): (
        "Provisional: the State Council notice has not been entered. The days below follow the provisional "
        "rules (weekends, fixed-date festivals, lunar festivals and Qingming), without adjusted "
        "working days. "
        "Deadlines computed on them can only be later, never earlier, and are recomputed once the official "
        "schedule is entered."
    ),
    "暂定日历不含调休上班日": "the provisional calendar has no adjusted working days",
    "放假安排": "Holidays",
    "{first} 至 {last}": "{first} to {last}",
    "（{n} 天）": "({n} days)",
    "没有放假日期": "No days off",
    "逐月安排": "Month by month",
    "休": "Off",
    "班": "Work",
    "调休上班（星期六或星期日）": "adjusted working day (a Saturday or Sunday)",
    "尚未正式公布": "not yet official",
    "本月无放假或调休": "No days off or adjusted working days this month",
    "返回节假日日历": "Back to the holiday calendar",
    "录入 {year} 年节假日安排": "Enter the {year} holiday schedule",
    "已按暂定规则预填放假日期，请对照国务院办公厅通知逐项核对；暂定日历没有调休上班日，请按通知补充。": (
        "The days off are pre-filled from the provisional rules: check each against the State Council "
        "notice, and add its adjusted working days (the provisional calendar has none)."
    ),
    "已预填现有的正式安排（来源：{source}），请按通知更正。": (
        "Pre-filled with the current official schedule (source: {source}); correct it from the notice."
    ),
    (
        "整段放假填第一天和最后一天（含周末）；只放一天时最后一天可不填。不需要的行清空即可。保存后"
        "，涉及 {year} 年的工作日期限将按新安排重新计算。"
    ): (
        "For each break enter its first and last day (weekends included); for a single day the last day "
        "may stay empty. Clear a row to drop it. Saving recomputes the working-day deadlines touching {year}."
    ),
    "通知": "Notice",
    "通知文号": "Notice reference",
    "国办发明电〔{y}〕7号": "国办发明电〔{y}〕7号",
    "国务院办公厅关于 {year} 年部分节假日安排的通知的文号，记录在日历中备查。": (
        "The reference number of the State Council notice on the {year} holidays, kept with the calendar."
    ),
    "放假第 {n} 段": "Break {n}",
    "节日名称": "Festival",
    "如 春节": "e.g. 春节",
    "第一天": "First day",
    "最后一天": "Last day",
    "通知中“某月某日（星期六或星期日）上班”的日期，名称填所调休的节日。": (
        "The Saturdays or Sundays the notice makes working days, with the festival they make up for."
    ),
    "调休上班第 {n} 天": "Adjusted working day {n}",
    "日期": "Date",
    "调休的节日": "For festival",
    "{year} 年已有正式安排（来源：{source}），确认用以上内容替换": (
        "{year} already has an official schedule (source: {source}); replace it with the above"
    ),
    "保存并重新计算期限": "Save and recompute deadlines",
    "{year} 年节假日安排已录入": "Holiday schedule {year} entered",
    "期限已重新计算并调整": "deadlines recomputed and moved",
    "期限日期不变，不再暂定": "deadlines unchanged, no longer provisional",
    "没有需要调整的期限。": "No deadline had to move.",
    "已调整的期限同步更新了待办事项的到期时间和提醒、逾期定时器，并在各隐患的事件记录中留痕。": (
        "Moved deadlines also moved their tasks' due times and reminder and overdue timers, and are "
        "recorded in each hazard's event log."
    ),
    "查看 {year} 年安排": "Show the {year} schedule",
    "年份须在 {first}–{last} 之间": "The year must be between {first} and {last}",
    "{year} 年 12 月": "December {year}",
    "{month} 月": "Month {month}",
    "行数过多（上限 {n} 行）": "Too many rows (at most {n})",
    "请填写放假第一天": "Enter the first day off",
    "请填写调休上班日期": "Enter the date of the adjusted working day",
    "请填写通知文号，例如 国办发明电〔{y}〕7号": "Enter the notice reference, e.g. 国办发明电〔{y}〕7号",
    "不能超过 300 个字符": "At most 300 characters",
    "{year} 年已有正式安排，请勾选确认后再替换": (
        "{year} already has an official schedule: tick the confirmation to replace it"
    ),
    "{year} 年节假日安排已录入：放假 {off} 天，调休上班 {work} 天，{changed} 天工作日状态改变": (
        "Holiday schedule {year} entered: {off} days off, {work} adjusted working days; "
        "{changed} days changed between working day and day off"
    ),
    "星期一": "Monday",
    "星期二": "Tuesday",
    "星期三": "Wednesday",
    "星期四": "Thursday",
    "星期五": "Friday",
    "星期六": "Saturday",
    "星期日": "Sunday",
    "挂牌督办流程图": "Listing supervision diagram",
    "督办梯度未发文（补发时只发最高一级等）": "Escalation rung not issued (catch-up sends only the highest)",
    "同一部位隐患复发": "Recurrence at the same location",
    "启动挂牌督办流程": "Listing supervision started",
    "挂牌督办流程结束": "Listing supervision finished",
    "摘牌": "Delisted",
    "挂牌督办期限同步": "Listing deadline synchronised",
    "前次隐患": "Previous hazard",
    "督办中": "Under listed supervision",
    "督办办理中": "Supervision in progress",
    "督办流程已结束": "Supervision track finished",
    "暂缓督办至（补录）": "Suppress escalation until (back-filled)",
    "补录已逾期的存量隐患时，可在此日期前暂不发出督办文书；到期后只发出当时应发的最高一级。": (
        "For back-filled overdue hazards: no escalation notice before this date; then only the highest "
        "rung due at that time is issued."
    ),
    "办理记录": "Timeline",
    "表单": "Forms",
    "附件": "Attachments",
    "督办文书": "Supervision notices",
    "隐患编号": "Number",
    "该企业的全部隐患": "All hazards of this enterprise",
    "高危企业": "High-risk enterprise",
    "统一社会信用代码": "Unified social credit code",
    "实际控制人": "Actual controller",
    "五落实": "Five assurances",
    "责任（整改责任人）": "Responsibility (person)",
    "措施": "Measures",
    "资金": "Funds",
    "逾期完成整改": "Rectified late",
    "尚未确定": "Not set yet",
    "应急预案": "Contingency plan",
    "是": "Yes",
    "否": "No",
    "督办与进展": "Supervision and progress",
    "未升级": "Not escalated",
    "验收不通过": "Failed verifications",
    "{n} 次": "{n} times",
    "销号时间": "Closed at",
    "待办任务": "Open tasks",
    "已由 {name} 认领": "Claimed by {name}",
    "当前没有待办任务。": "No open tasks.",
    "申请人": "Requested by",
    "理由": "Reason",
    "办理中": "In progress",
    "流程版本": "Process version",
    "整改流程": "Rectification loop",
    "策略配置": "Policy profile",
    "全国": "National",
    "随系统提供的表单": "Forms shipped with the system",
    "隐患在启动时固定流程、策略配置和表单的版本，之后发布的新版本只用于新登记的隐患。": (
        "A hazard keeps the process, policy profile and form versions it started with; versions "
        "published later apply to hazards registered later."
    ),
    "该隐患没有流程实例。": "This hazard has no process instance.",
    "办理表单": "Submitted forms",
    "逾期提交": "Submitted late",
    "意见": "Opinion",
    "已被退回": "Sent back",
    "（未填写理由）": "(no reason given)",
    "待审核的办理情况": "Work under review",
    "本轮已办理环节的最新提交，请核对后作出结论。": (
        "The latest submissions of this round's earlier steps; check them before deciding."
    ),
    "（附件不可用）": "(attachments unavailable)",
    "尚无办理表单。": "No forms submitted yet.",
    "尚无附件。": "No attachments yet.",
    "上传整改前照片": "Upload before photos",
    "JPEG、PNG 或 WebP 照片，一次最多 {n} 张。": "JPEG, PNG or WebP photos, at most {n} at a time.",
    # 督办文书 (web/pages/notices.py, web/templates/notices/, the hazard page's notices section)
    "尚未签发督办文书。": "No notices issued yet.",
    "签发督办文书": "Notice issued",
    "签收督办文书": "Notice acknowledged",
    "书面回复督办文书": "Notice answered",
    "办结督办文书": "Notice closed",
    "没有符合条件的督办文书。": "No notices match.",
    "文号": "Document number",
    "标题": "Title",
    "文书种类": "Kind",
    "签发机关": "Issued by",
    "签发时间": "Issued at",
    "应发": "Due",
    "应发时间": "Due at",
    "回复期限": "Response due",
    "年度": "Year",
    "主送": "Addressed to",
    "文书信息": "Notice",
    "文书正文": "Text",
    "打印": "Print",
    "下载 PDF": "Download PDF",
    "约谈时间": "Meeting at",
    "约谈地点": "Meeting place",
    "签收": "Acknowledge",
    "签收时间": "Acknowledged at",
    "书面回复": "Written response",
    "回复时间": "Responded at",
    "回复内容": "Response",
    "提交回复": "Submit response",
    "办结": "Close",
    "办结时间": "Closed at",
    "办结说明": "Closing note",
    "已签发": "Issued",
    "已签收": "Acknowledged",
    "已回复": "Responded",
    "已办结": "Closed",
    "已签收督办文书 {number}": "Acknowledged notice {number}",
    "已书面回复督办文书 {number}": "Responded to notice {number}",
    "已办结督办文书 {number}": "Closed notice {number}",
    "签收表示已收到本文书，签收后请在回复期限内书面回复整改情况。": (
        "Acknowledging confirms receipt; then respond in writing before the response deadline."
    ),
    "写明整改措施、进展和完成时间。": "State the measures, the progress and when the work will be done.",
    "企业尚未书面回复的，须说明办结理由。": "Closing an unanswered notice needs a reason.",
    "PDF 生成服务暂不可用（服务器未安装或无法启动 Chromium），请使用打印页面打印或另存为 PDF。": (
        "PDF generation is unavailable (Chromium is not installed or does not start); "
        "print the print page or save it as PDF from the browser."
    ),
    "提醒敦促函": "Reminder letter",
    "督办函（函告）": "Supervision letter",
    "约谈通知书": "Summons to an interview",
    "曝光公告": "Public exposure notice",
    "挂牌督办通知书": "Listed-supervision notice",
    "挂牌督办公告": "Listed-supervision announcement",
    "摘牌通知书": "Delisting notice",
    "摘牌公告": "Delisting announcement",
    "提请上级政府督办函": "Referral to the higher government",
    "移送追责函（参照事故调查处理）": "Referral for accountability",
    "挂账整改": "Listed rectification",
    "是否逾期": "Overdue",
    "挂牌级别": "Listing level",
    "发现人": "Found by",
    "整改措施": "Measures",
    "整改资金（元）": "Funds (yuan)",
    "登记时间": "Registered at",
    "作废原因": "Void reason",
    "导出时间：{at}；导出人：{name}；共 {n} 条": "Exported {at} by {name}; {n} hazards",
    "无（全部可见隐患）": "none (every hazard you may see)",
    "升级级别不低于": "Escalation level at least",
    "企业编号": "Enterprise id",
    "发现日期": "Found",
    "已登记隐患 {number}，请上传整改前照片。": "Registered {number}; now upload the before photos.",
    "结论": "Decision",
    "逾期办理": "late",
    "转办给 {name}": "delegated to {name}",
    "整改进度 {percent}%": "progress {percent}%",
    "新期限": "New deadline",
    "临时期限（待官方节假日安排确认）": "provisional (until the official holiday schedule is entered)",
    "系统": "System",
    "请选择要上传的照片": "Choose the photos to upload",
    "一次最多上传 {n} 张照片": "Upload at most {n} photos at a time",
    "已上传 {n} 张整改前照片": "Uploaded {n} before photos",
    # timeline (event log actions), listing levels, attachment phases, decisions
    "重开原因": "Reason for reopening",
    "生成待办": "Task created",
    "待办取消": "Task cancelled",
    "到期提醒": "Deadline reminder",
    "升级督办": "Escalated",
    "计算期限": "Deadline computed",
    "期限重算": "Deadline recomputed",
    "期限确认": "Deadline confirmed",
    "定时触发": "Timer fired",
    "销号": "Closed",
    "更新整改进展": "Progress updated",
    "申请延期": "Extension requested",
    "不同意延期": "Extension denied",
    "认定违法行为": "Violation recorded",
    "省级挂牌": "Listed by the province",
    "市级挂牌": "Listed by the city",
    "县级挂牌": "Listed by the county",
    "乡镇级挂牌": "Listed by the township",
    "文件资料": "Documents",
    "通过": "Passed",
    "不通过": "Not passed",
    "同意": "Approved",
    "待审批": "Pending",
    "函告": "Formal letter",
    "通报": "Public circular",
    "约谈": "Summons",
    "曝光": "Public exposure",
    "参照事故调查处理": "Handled like an accident investigation",
    "多次验收不通过": "repeatedly failed verification",
    "逾期未整改": "overdue, not rectified",
    # reviews (web/pages/reviews.py)
    "验收不通过 {n} 次": "failed verification {n} times",
    "同意即以 {name} 的名义签署审核意见；驳回须填写理由，隐患将退回整改。": (
        "Approving signs the review as {name}; rejecting needs a reason and sends the hazard back."
    ),
    "待我审核": "Waiting for my review",
    "审核期限": "Review due",
    "审核已逾期": "Review overdue",
    "核销文号": "Closure document number",
    "选填": "optional",
    "同意销号": "Approve closure",
    "审查合格，同意核销": "Passed; approve closure",
    "驳回理由": "Reason for rejection",
    "说明需要补充或重新整改的内容": "What must be added or rectified again",
    "驳回": "Reject",
    "暂无待审核的销号申请。": "No closures waiting for review.",
    "期限由 {old} 延至 {new}": "Deadline from {old} to {new}",
    "同意延期": "Approve extension",
    "不同意理由": "Reason for denial",
    "不同意": "Deny",
    "暂无待审批的延期申请。": "No extension requests waiting.",
    "辖区内待审核": "Reviews pending in your region",
    "由牵头部门审核；逾期未审的可督促办理。": "Reviewed by the lead department; chase the overdue ones.",
    "审核环节": "Review step",
    "已同意 {number} 销号": "Approved closing {number}",
    "已驳回 {number}，退回整改": "Rejected {number}; sent back for rectification",
    # administration (web/pages/admin.py)
    "组织机构": "Organisations",
    "仅显示您所辖地区的组织机构；如需调整请联系系统管理员。": (
        "Only the organisations of your region are shown; ask the system administrator for changes."
    ),
    "行政区划": "Regions",
    "新增地区": "Add region",
    "上级地区": "Parent region",
    "无（省级）": "None (province)",
    "区划代码": "Region code",
    "名称": "Name",
    "行政层级": "Level",
    "添加": "Add",
    "新增行业": "Add sector",
    "行业代码": "Sector code",
    "负有安全监管职责的部门": "Supervising departments",
    "部门": "Department",
    "简称": "Abbreviation",
    "所在地区": "Region",
    "牵头行业": "Leads",
    "协同行业": "Co-supervises",
    "安委办": "Safety committee office",
    "新增部门": "Add department",
    "部门名称": "Department name",
    "文号简称": "Abbreviation in document numbers",
    "如：郎应急": "e.g. 郎应急",
    "牵头行业（谁主管谁牵头）": "Leads (whoever supervises leads)",
    "协同监管行业": "Co-supervises",
    "安全生产委员会办公室（安委办）": "Work safety committee office",
    "高危": "High risk",
    "暂无企业。": "No enterprises yet.",
    "新增企业": "Add enterprise",
    "企业名称": "Enterprise name",
    "所属行业": "Sector",
    "高危行业企业": "High-risk sector enterprise",
    "系统管理": "Administration",
    "用户": "Users",
    "待处理故障事件": "Open incidents",
    "故障事件是后台多次重试仍失败的定时任务（提醒、逾期、升级），重试前请先排除错误原因。": (
        "Incidents are timer jobs (reminders, overdue marks, escalations) that kept failing; "
        "fix the cause before retrying."
    ),
    "用户与角色": "Users and roles",
    "已停用": "Deactivated",
    "新密码（仅显示这一次，请当面或通过安全渠道告知本人）：": (
        "New password (shown only this once; give it to the user in person or over a safe channel):"
    ),
    "范围": "Scope",
    "移除": "Remove",
    "该用户还没有角色，登录后看不到任何隐患。": "This user has no role yet and will see no hazards.",
    "添加角色": "Add role",
    "企业人员选所属企业；部门人员选所属部门；网格员、举报受理选所辖地区；安委办选安委办或地区。": (
        "Enterprise roles take an enterprise, department roles a department, grid workers and tip "
        "officers a region, the safety committee office its office or a region."
    ),
    "所属企业": "Enterprise",
    "所属部门": "Department",
    "所辖地区": "Region",
    "账号": "Account",
    "创建时间": "Created at",
    "启用": "Active",
    "停用账号": "Deactivate",
    "启用账号": "Activate",
    "重置密码": "Reset password",
    "新密码": "New password",
    "留空则自动生成，仅显示一次。重置后该用户的其他登录会话失效。": (
        "Leave empty to generate one (shown once). The user's other sessions end."
    ),
    "概览": "Overview",
    "故障事件": "Incidents",
    "以下定时任务多次重试仍失败，已停止执行。排除原因后点“重试”，将在下一轮重新执行。": (
        "These timer jobs kept failing and were stopped. Fix the cause, then retry: "
        "they run again at the next tick."
    ),
    "编号": "Id",
    "定时器": "Timer",
    "到期时间": "Due",
    "尝试次数": "Attempts",
    "最后错误": "Last error",
    "重试": "Retry",
    "没有故障事件，定时任务运行正常。": "No incidents: timers are running normally.",
    "定时任务": "Timer job",
    "发生时间": "Occurred at",
    "最近已重试": "Recently retried",
    "重试时间": "Retried at",
    "定时任务状态": "Job state",
    "用户名或姓名": "Username or name",
    "搜索用户": "Search users",
    "无角色": "no role",
    "没有找到用户。": "No users found.",
    "新建用户": "New user",
    "可在括号中注明单位和岗位，如：张强（整改责任人）": (
        "Unit and post may follow in brackets, e.g. 张强（整改责任人）"
    ),
    "初始密码": "Initial password",
    "留空则自动生成，仅显示一次。": "Leave empty to generate one (shown once).",
    "创建": "Create",
    "已创建用户 {username}，请为其添加角色。": "Created {username}; now add their roles.",
    "已启用 {username}": "Activated {username}",
    "已停用 {username}": "Deactivated {username}",
    "密码已重置，该用户需用新密码重新登录。": "Password reset; the user must log in with the new one.",
    "已添加角色": "Role added",
    "已移除角色": "Role removed",
    "已添加地区 {name}": "Added region {name}",
    "已添加行业 {name}": "Added sector {name}",
    "已添加部门 {name}": "Added department {name}",
    "已添加企业 {name}": "Added enterprise {name}",
    "已重新排队定时任务 {id}（{key}），将由后台任务在下一轮执行。": (
        "Timer job {id} ({key}) is queued again; the worker runs it at its next tick."
    ),
    # scheduled inspections (web/pages/inspections.py, the home dashboard)
    "排查计划": "Inspection plans",
    "我的排查任务": "My inspections",
    "排查任务": "Inspection",
    "逾期未检查": "Missed",
    "待检查": "Due",
    "检查情况": "Findings",
    "发现隐患数": "Hazards found",
    "填报": "Record",
    "填报人": "Recorded by",
    "周期": "Period",
    "逾期补报": "recorded late",
    "已逾期，仍可补报": "Missed; may still be recorded",
    "暂无需要填报的排查任务": "No inspections to record",
    "没有逾期未检查的排查任务": "No missed inspections",
    "暂无已完成的排查任务": "No recorded inspections yet",
    "各地区逾期未检查": "Missed, by region",
    "各企业逾期未检查": "Missed, by enterprise",
    "已填报：{title}": "Recorded: {title}",
    "排查任务逾期未检查": "Missed inspections",
    "主要负责人带队检查": "Principal-led inspection",
    "网格化“四查”": "Grid inspections",
    "按策略配置自动生成，周期随策略版本调整。": (
        "Generated from the policy profile; cadences follow its version."
    ),
    "主要负责人带队检查：每季度一次，高危行业领域每月一次。": (
        "Principal-led inspection: quarterly, monthly in high-risk sectors."
    ),
    "网格化“四查”：市级季检查、县级月排查、乡级周巡查、村级日排查。": (
        "Grid inspections: quarterly by the city, monthly by the county, weekly by the township, "
        "daily by the village."
    ),
    # sectors (demo data; other sectors show as entered)
    "危险化学品": "Hazardous chemicals",
    "消防安全": "Fire safety",
    "房屋市政工程": "Building and municipal works",
    "非煤矿山": "Non-coal mines",
    "工贸": "Industry and trade",
    "城镇燃气": "Urban gas",
    "道路运输": "Road transport",
    # design: the BPMN modeler (web/pages/design_diagrams.py; js/modeler.js speaks Chinese only)
    "流程图操作": "Diagram actions",
    "导入 .bpmn": "Import .bpmn",
    "导出 .bpmn": "Export .bpmn",
    "适应窗口": "Fit to window",
    "流程图画布": "Diagram canvas",
    "流程建模需要启用 JavaScript。": "The modeler needs JavaScript.",
    "流程图加载中…": "Loading the diagram…",
    "发布新版本": "Publish a new version",
    "发布前会再次检查。新版本只用于之后登记的隐患，在办隐患仍按原版本办理。": (
        "Publishing runs the check again. The new version applies to hazards registered later; "
        "hazards in progress stay on their version."
    ),
    "例如：限期整改改由安全管理人员办理": "e.g. rectification is now done by the safety officer",
    "新建本行业流程": "New process for a sector",
    "复制已发布的流程作为本行业的草稿：标识为“原标识_行业代码”，名称加行业名。": (
        "Copy a published process as a draft for your sector: its id becomes “id_sector” and the "
        "sector's name is added to its name."
    ),
    "复制自": "Copy of",
    "您所在的部门不牵头任何行业，不能新建行业流程。": (
        "Your department leads no sector, so it cannot create sector processes."
    ),
    "请选择要复制的流程和行业": "Choose the process to copy and the sector",
    "已复制为本行业的流程草稿，修改后检查并发布": (
        "Copied as a draft for the sector; edit, check and publish it"
    ),
    "已放弃草稿": "Draft discarded",
    "未通过发布检查，未发布": "The publish check failed; nothing was published",
    "草稿刚被他人创建，请重新加载页面后再发布（可先导出 .bpmn 备份您的修改）": (
        "Someone has just created a draft; reload the page before publishing "
        "(export a .bpmn first to keep your changes)."
    ),
    "请求内容应为 JSON 对象": "The request body must be a JSON object",
    "缺少流程图内容 (xml)": "The diagram (xml) is missing",
    "流程图文件超过 {mb} MB 上限": "The diagram is larger than {mb} MB",
    "不是有效的 XML 文件：{reason}": "Not a valid XML file: {reason}",
    "不允许 DOCTYPE 或实体声明 (DTD)：建模工具导出的文件不含这些内容": (
        "DOCTYPE and entity declarations (DTD) are not allowed; modelers never write them"
    ),
    "不是 BPMN 2.0 流程图文件（根元素应为 bpmn:definitions）": (
        "Not a BPMN 2.0 file (the root element must be bpmn:definitions)"
    ),
    "草稿版本号无效": "Invalid draft revision",
    "缺少草稿版本号": "The draft revision is missing",
    "发布说明应为文字": "The publish note must be text",
}

CATALOGUES: dict[str, Mapping[str, str]] = {"en": EN}


def get_locale() -> str:
    """``zh`` or ``en`` for this request (session choice, then Accept-Language, then ``zh``)."""
    if not has_request_context():
        return DEFAULT_LOCALE
    cached: str | None = g.get("hl_locale")
    if cached is not None:
        return cached
    locale = session.get(SESSION_KEY)
    if locale not in SUPPORTED_LOCALES:
        locale = request.accept_languages.best_match(SUPPORTED_LOCALES, default=DEFAULT_LOCALE)
    g.hl_locale = locale
    return str(locale)


def translate(text: str, locale: str, **params: object) -> str:
    """``text`` in ``locale`` (falling back to the Chinese source), placeholders filled."""
    catalogue = CATALOGUES.get(locale)
    translated = catalogue.get(text, text) if catalogue is not None else text
    return translated.format(**params) if params else translated


def _(text: str, **params: object) -> str:
    """Translate ``text`` (Chinese source) into the request's locale; see the module docstring."""
    return translate(text, get_locale(), **params)


def _label(labels: Mapping[object, str], value: object) -> str:
    """The translated label of an enum value (member or its string); unknown values as given."""
    if value is None:
        return ""
    for member, text in labels.items():
        if member == value:  # StrEnum members compare equal to their string values
            return _(text)
    return str(value)


def role_label(value: Role | str | None) -> str:
    return _label(ROLE_LABELS, value)


def status_label(value: HazardStatus | str | None) -> str:
    return _label(STATUS_LABELS, value)


def grade_label(value: Grade | str | None) -> str:
    return _label(GRADE_LABELS, value)


def source_label(value: HazardSource | str | None) -> str:
    return _label(SOURCE_LABELS, value)


def handling_label(value: HandlingType | str | None) -> str:
    return _label(HANDLING_LABELS, value)


def region_level_label(value: RegionLevel | str | None) -> str:
    return _label(REGION_LEVEL_LABELS, value)


def work_item_state_label(value: WorkItemState | str | None) -> str:
    return _label(WORK_ITEM_STATE_LABELS, value)


def localtime(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """An aware datetime in business time (Asia/Shanghai by default); ``""`` for None."""
    if value is None:
        return ""
    return value.astimezone(engine_context().tz).strftime(fmt)


bp = Blueprint("i18n", __name__)


@bp.get("/lang/<code>")
def set_language(code: str) -> Response:
    """Store the language choice in the session and go back (``?next=`` relative URLs only)."""
    # Imported here: web.security (through web.errors) imports this module for ``_``.
    from .security import safe_next

    if code in SUPPORTED_LOCALES:
        session[SESSION_KEY] = code
    return redirect(safe_next(request.args.get("next")))


LABEL_FILTERS = {
    "role_label": role_label,
    "status_label": status_label,
    "grade_label": grade_label,
    "source_label": source_label,
    "handling_label": handling_label,
    "region_level_label": region_level_label,
    "work_item_state_label": work_item_state_label,
    "localtime": localtime,
}


def init_app(app: Flask) -> None:
    """Register ``/lang/<code>``, the ``_`` and ``get_locale`` globals and the label filters."""
    app.register_blueprint(bp)
    app.add_template_global(_, "_")
    app.add_template_global(get_locale, "get_locale")
    app.add_template_global(lambda: HTML_LANG[get_locale()], "html_lang")
    for name, fn in LABEL_FILTERS.items():
        app.add_template_filter(fn, name)
