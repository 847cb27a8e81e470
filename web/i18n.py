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
    (
        "存在未发布的共享草稿（第 {n} 次修改）：发布会取代它。请在请求中给出 revision 确认，"
        "或先在流程设计页面处理该草稿。"
    ): (
        "There is an unpublished shared draft (revision {n}) that publishing would replace: give its "
        "revision in the request to confirm, or deal with the draft on the process design pages first."
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
    # --- process design (流程设计): web/pages/design.py, design_diagrams.py, design_versions.py and
    # their templates (templates/design/, design_diagrams/, design_versions/) ---
    # overview and tabs (templates/design/index.html, _nav.html)
    "设计内容": "Design areas",
    "任务表单": "Task forms",
    "期限与督办策略": "Deadlines and escalation policy",
    (
        "本行业的流程图、任务表单和期限与督办策略由牵头部门的流程管理员维护：先保存草稿，"
        "检查无误后发布为新版本。已启动的隐患流程继续使用启动时固定的版本，新版本只对此后启动的流程生效。"
        "每次保存、发布都记入设计日志。"
    ): (
        "A sector's diagrams, task forms and deadline and escalation policy are maintained by the lead "
        "department's process administrators: save a draft, check it, then publish it as a new version. "
        "Hazard processes already started keep the version fixed at their start; a new version applies only "
        "to processes started afterwards. Every save and publish is recorded in the design log."
    ),
    "全国默认": "National default",
    "流程": "Process",
    "已发布版本": "Published version",
    "草稿": "Draft",
    "适用于": "Applies to",
    "运行中": "Running",
    "第 {n} 版": "Version {n}",
    "尚未发布": "Not published yet",
    "有草稿": "Has draft",
    "未绑定": "Not bound",
    "编辑流程图": "Edit diagram",
    "版本与绑定": "Versions and bindings",
    "本行业还没有自己的流程，隐患按全国流程办理。": (
        "The sector has no process of its own yet; hazards follow the national process."
    ),
    "没有全国流程。": "No national processes.",
    "以全国流程为基础新建本行业流程": "New sector process based on a national process",
    "复制并编辑": "Copy and edit",
    "您所在的部门不是任何行业的牵头部门，没有可编辑的流程设计。": (
        "Your department is not the lead department of any sector, so there is no process design you can "
        "edit."
    ),
    "设计日志": "Design log",
    "时间": "Time",
    "人员": "Person",
    "内容": "Item",
    "版本": "Version",
    "说明": "Note",
    "基于第 {n} 版": "Based on version {n}",
    "等 {n} 处": "({n} problems in all)",
    "还没有设计记录。": "No design records yet.",
    "导入": "Imported",
    "发布被拒绝": "Publish refused",
    # task forms (templates/design/forms.html, form_edit.html, web/pages/design.py)
    "本行业发布的表单版本覆盖全国版本，只对此后启动的隐患流程生效。未发布本行业版本的表单沿用全国版本。": (
        "Form versions published by the sector override the national versions and apply only to hazard "
        "processes started afterwards. Forms without a sector version use the national version."
    ),
    "全国版本是各行业表单的默认版本；行业可以发布自己的版本覆盖它。": (
        "The national version is every sector's default; a sector may publish its own version to override it."
    ),
    "全国版本": "National version",
    "本行业版本": "Sector version",
    "随系统提供": "Shipped with the system",
    "沿用全国": "Uses national",
    "编辑": "Edit",
    "没有表单。": "No forms.",
    "编辑表单": "Edit form",
    "字段 {n}": "Field {n}",
    "上移": "Move up",
    "下移": "Move down",
    "删除": "Remove",
    "已删除": "Removed",
    "发布后本行业新登记的{grade}隐患即按此流程办理（绑定）": (
        "After publishing, new {grade} hazards of this sector follow this process (bind it)"
    ),
    "不勾选则只发布版本，稍后在“版本与绑定”页绑定。": (
        "Leave unticked to publish the version only and bind it later on the versions page."
    ),
    "数据刚被他人同时修改，本次操作未保存，请重新加载后再试。": (
        "Someone else changed the same data at the same moment; nothing was saved. Reload and try again."
    ),
    "字段名（标识）": "Field name (id)",
    "如 responsible_person": "e.g. responsible_person",
    "标签": "Label",
    "如 整改责任人": "e.g. 整改责任人",
    "类型": "Type",
    "填写说明": "Help text",
    "显示在输入框下方（可不填）": "Shown below the input (optional)",
    "最多字数": "Max characters",
    "最少字数": "Min characters",
    "多行文本": "Multi-line",
    "最小值": "Minimum",
    "最大值": "Maximum",
    "只能填整数": "Whole numbers only",
    "日期用途": "Date purpose",
    "普通日期": "Ordinary date",
    "整改期限（写入隐患的期限，须必填）": (
        "Rectification deadline (sets the hazard's deadline; must be required)"
    ),
    "选项 / 检查项（每行一项：值=标签）": "Options / checklist items (one per line: value=label)",
    "pass=通过": "pass=Passed",
    "reject=不通过": "reject=Not passed",
    "值只能用小写字母、数字和下划线，提交后保存的是值；标签是显示的文字。": (
        "Values may contain only lowercase letters, digits and underscores; the value is what is stored, the "
        "label is what is shown."
    ),
    "可多选": "Allow several",
    "照片阶段": "Photo phase",
    "不区分": "Any",
    "最少个数": "Min count",
    "最多个数": "Max count",
    "该类型没有其他属性。": "This type has no other settings.",
    "保存冲突": "Save conflict",
    "您输入的内容仍在下方，尚未保存。可以先复制需要保留的内容，再": (
        "What you entered is still below and has not been saved. Copy what you want to keep, then "
    ),
    "重新加载最新草稿": "reload the latest draft",
    "草稿还不能发布：请修正标注的字段。": "The draft cannot be published yet: fix the marked fields.",
    "表单标题": "Form title",
    "未命名字段": "Unnamed field",
    "表单标识": "Form id",
    "尚未发布，沿用全国版本": "Not published yet; the national version applies",
    "{who} 于 {at} 保存（第 {n} 次修改）": "Saved by {who} at {at} (revision {n})",
    "无草稿，下方是当前发布的版本": "No draft; below is the published version",
    "预览": "Preview",
    "套用模板": "Apply a template",
    (
        "整改方案可按本地规定采用“五落实”“五到位”“四落实”或“定人、定时间、定措施”。套用后字段替换为模板内容（"
        "尚未保存），可继续修改。"
    ): (
        "Following local rules, the rectification plan may use the five implementations (五落实), the five in"
        "-place requirements (五到位), the four implementations (四落实) or “person, time, measures” (定人、"
        "定时间、定措施). Applying a template replaces the fields with its content (not saved yet); you can k"
        "eep editing."
    ),
    "模板": "Template",
    "请选择模板": "Choose a template",
    "表单说明": "Form description",
    "字段": "Fields",
    (
        "字段名是数据中保存的标识（小写字母开头，只含小写字母、数字和下划线），发布后不宜再改；"
        "标签是填写人看到的名称。选择类型后显示该类型可设置的属性。"
    ): (
        "The field name is the id stored in the data (a lowercase letter first, then only lowercase letters, "
        "digits and underscores) and should not change once published; the label is the name the person "
        "filling in sees. Choosing a type shows the settings of that type."
    ),
    "添加字段": "Add field",
    "流程路由": "Process routing",
    (
        "以下字段的取值决定流程走向（流程图的条件引用这些字段和选项值），发布时不能删除这些字段或修改其选项值"
        "。"
    ): (
        "The values of these fields decide the process path (the diagram's conditions refer to these fields "
        "and option values); publishing may not remove these fields or change their option values."
    ),
    "流程变量": "Process variable",
    "发布说明": "Publish note",
    "如 按市应急局通知改为“五到位”": (
        "e.g. switched to the five in-place requirements (五到位) per the city emergency management bureau's "
        "notice"
    ),
    "发布": "Publish",
    "确定放弃草稿？草稿中的修改将丢失。": "Discard the draft? Its changes will be lost.",
    "放弃草稿": "Discard draft",
    "发布后，此后启动的隐患流程使用新版本；已启动的流程继续使用启动时的版本。": (
        "Once published, hazard processes started from then on use the new version; processes already "
        "started keep the version they started with."
    ),
    "预览：填写人看到的表单": "Preview: the form as the person filling it in sees it",
    "版本记录": "Version history",
    "发布人": "Published by",
    "发布时间": "Published at",
    "当前": "Current",
    "尚未发布过版本，当前使用随系统提供的表单。": (
        "No version published yet; the form shipped with the system is in use."
    ),
    "文本": "Text",
    "数字": "Number",
    "金额": "Amount",
    "选项": "Choice",
    "照片": "Photo",
    "文件": "File",
    "签字": "Signature",
    "检查清单": "Checklist",
    "已套用模板「{name}」：请检查字段后保存草稿或发布（尚未保存）。": (
        "Applied the template “{name}”: check the fields, then save the draft or publish (not saved yet)."
    ),
    "请选择要套用的模板": "Choose the template to apply",
    "草稿已放弃": "Draft discarded",
    "草稿已保存（第 {n} 次修改）": "Draft saved (revision {n})",
    "草稿已保存（第 {n} 次修改），但还不能发布：请修正标注的字段。": (
        "Draft saved (revision {n}), but it cannot be published yet: fix the marked fields."
    ),
    "草稿已被其他管理员发布或放弃，请重新加载页面后再修改。": (
        "Another administrator has published or discarded the draft; reload the page before making changes."
    ),
    "其他管理员": "Another administrator",
    "草稿已被 {who} 修改，请重新加载页面后再发布。": (
        "{who} has changed the draft; reload the page before publishing."
    ),
    "请填写表单标题": "Enter the form title",
    "表单至少需要一个字段": "A form needs at least one field",
    "字段名 {name} 重复（与前面的字段相同）": "Field name {name} is a duplicate (an earlier field has it)",
    "已发布「{title}」第 {version} 版，此后新启动的隐患流程使用该版本。": (
        "Published version {version} of “{title}”; hazard processes started from now on use it."
    ),
    "内容与已发布的第 {version} 版相同，未产生新版本。": (
        "The content is the same as published version {version}; no new version was created."
    ),
    # policy profile: deadlines and the escalation ladder (templates/design/policy.html, web/pages/design.py)
    (
        "本行业的策略配置在全国默认配置之上覆盖部分数值、督办梯度和触发条件；未覆盖的沿用全国配置（灰色显示）"
        "。发布后只对此后登记的隐患生效，已登记的隐患继续使用登记时固定的版本。"
    ): (
        "The sector's policy profile overrides some values, escalation rungs and triggers of the national "
        "default profile; everything not overridden follows the national profile (shown in grey). A "
        "published version applies only to hazards registered afterwards; hazards already registered keep "
        "the version fixed at registration."
    ),
    (
        "全国默认策略配置：各行业未覆盖的数值、督办梯度和触发条件都采用这里的设置。发布后，"
        "各行业配置需重新发布才会采用修改后的全国数值。"
    ): (
        "The national default policy profile: the values, escalation rungs and triggers a sector does not "
        "override use these settings. After publishing, sector profiles adopt the changed national values "
        "only once they are published again."
    ),
    "您输入的内容仍在下方，尚未保存。可以先记下需要保留的修改，再": (
        "What you entered is still below and has not been saved. Note down the changes you want to keep, "
        "then "
    ),
    "请检查标注的行后重新提交。": "Check the marked rows and submit again.",
    "配置名称": "Profile name",
    "配置标识": "Profile id",
    "当前版本": "Current version",
    "（基于 {base}）": "(based on {base})",
    "尚未发布，沿用全国配置": "Not published yet; the national profile applies",
    "全国配置": "National profile",
    "无草稿，下方是当前发布的配置": "No draft; below is the published profile",
    "配置说明": "Profile description",
    "依据的地方规定、适用范围等": "The local rules it follows, where it applies, etc.",
    "督办升级梯度": "Escalation ladder",
    (
        "逾期后按梯度逐级升级：每一级在“时间点”所指的期限届满时签发相应文书。修改某一级的期限数值，"
        "直接改该行的数字和单位（即修改下方对应的策略值）。"
    ): (
        "Once overdue, a hazard climbs the ladder rung by rung: each rung issues its notice when the period "
        "named by its “time point” ends. To change a rung's period, edit the number and unit on its row "
        "(this changes the matching policy value below)."
    ),
    "本行业设置": "Set by the sector",
    "全国配置中没有这一级，无法在此设置。": (
        "The national profile has no such rung, so it cannot be set here."
    ),
    "文书说明": "Notice description",
    "时间点（期限届满时签发）": "Time point (issued when the period ends)",
    "无（仅由触发条件启动）": "None (started by triggers only)",
    "{rung} 的期限数值": "Period of {rung}",
    "单位": "Unit",
    "签发层级": "Issuing level",
    "牵头部门本级": "The lead department's own level",
    "回复/公布期限": "Response/publication period",
    "无": "None",
    "文书模板": "Notice template",
    "送达对象": "Recipients",
    "触发条件": "Triggers",
    "不按时间计算的情形直接启动某一级督办。": (
        "Situations not measured in time start an escalation rung directly."
    ),
    "不启动督办": "No escalation",
    "策略值": "Policy values",
    "灰色的行沿用全国配置；勾选“覆盖”后按本行业的数值执行（修改数值时自动勾选）。": (
        "Grey rows follow the national profile; tick “Override” to use the sector's value (ticked "
        "automatically when you change a value)."
    ),
    "每个值都要写明单位和出处。": "Every value needs a unit and a source.",
    "覆盖": "Override",
    "数值": "Value",
    "出处": "Source",
    "本行业": "This sector",
    "覆盖 {name}": "Override {name}",
    "（本行业新增）": "(added by the sector)",
    "新增策略值": "New policy values",
    "名称（标识）": "Name (id)",
    "如 stop_decision_after_report": "e.g. stop_decision_after_report",
    "再添加一行": "Add another row",
    "如 按市安委办通知，逾期5个工作日即通报": (
        "e.g. circular after 5 working days overdue, per the city safety committee office's notice"
    ),
    "配置": "Profile",
    "基于": "Based on",
    "本行业还没有发布过策略配置，隐患按全国默认配置办理。": (
        "The sector has not published a policy profile yet; hazards follow the national default profile."
    ),
    "策略配置已发布为第 {version} 版，此后新登记的隐患使用该版本。": (
        "Policy profile published as version {version}; hazards registered from now on use it."
    ),
    "新增策略值第 {n} 行": "New policy value, row {n}",
    "请填写名称（小写字母、数字和下划线，以字母开头）": (
        "Enter a name (lowercase letters, digits and underscores, starting with a letter)"
    ),
    "名称只能由小写字母、数字和下划线组成，并以字母开头": (
        "The name may contain only lowercase letters, digits and underscores, and must start with a letter"
    ),
    "策略值 {name} 已存在，请直接修改上面的行": "Policy value {name} already exists; change its row above",
    "个工作日": "working days",
    "日": "calendar days",
    "小时": "hours",
    "分钟": "minutes",
    "个月": "months",
    "次": "times",
    "省级": "Province",
    "市级": "City",
    "县级": "County",
    "乡镇级": "Township",
    "负有安全监管职责的牵头部门": "Lead department with safety supervision duties",
    "安全生产委员会（安委会）": "Work safety committee (安委会)",
    "人民政府": "People's government",
    "隐患所在生产经营单位": "The enterprise where the hazard is",
    "生产经营单位主要负责人": "The enterprise's principal",
    "生产经营单位实际控制人": "The enterprise's actual controller",
    "行业主管（牵头）部门": "The sector's competent (lead) department",
    "安委会各成员单位": "Member units of the safety committee",
    "社会公众": "The public",
    "上一级人民政府": "The next higher people's government",
    "纪检监察机关": "Discipline inspection and supervision authorities",
    "整改期限临近或届满": "Rectification deadline near or reached",
    "逾期（按工作日计）": "Overdue (in working days)",
    "长期未更新整改进展": "No progress update for a long time",
    "验收/审查多次不通过": "Repeatedly failed verification/review",
    "同一企业同一部位的已销号隐患再次发生": "A closed hazard recurs at the same place of the same enterprise",
    "提醒敦促函（整改期限届满前）": "Reminder letter (before the rectification deadline)",
    "提醒敦促函（整改期限届满）": "Reminder letter (at the rectification deadline)",
    "提醒敦促函（长期未更新整改进展）": "Reminder letter (no progress update for a long time)",
    "参照事故调查处理（移送追责）": "Handled like an accident investigation (referral for accountability)",
    # the modeler page (templates/design_diagrams/edit.html, web/pages/design_diagrams.py)
    "检查": "Check",
    "撤销": "Undo",
    "重做": "Redo",
    "属性": "Properties",
    "确认发布": "Confirm and publish",
    "全国通用": "National (all sectors)",
    # versions, bindings, diff, migration, heatmap (templates/design_versions/, web/pages/design_versions.py)
    "全国通用流程": "National process",
    "只读": "Read-only",
    "比较版本": "Compare versions",
    "迁移实例": "Migrate instances",
    "热力图": "Heatmap",
    "（运行中 {r} 个）": "({r} running)",
    "（最新）": "(latest)",
    "{name} · 版本与绑定": "{name} · Versions and bindings",
    "已发布的版本": "Published versions",
    (
        "每次发布生成新版本 v(n+1)，记录发布人、说明和文件的 sha256。运行中的实例始终留在开始时的版本上，"
        "直到管理员把它们迁移到新版本。"
    ): (
        "Every publish creates a new version v(n+1), recording who published it, the note and the file's "
        "sha256. Running instances stay on the version they started on until an administrator migrates them "
        "to a new version."
    ),
    "运行中实例": "Running instances",
    "绑定": "Binding",
    "最新": "Latest",
    "查看流程图": "View diagram",
    "比较两个版本": "Compare two versions",
    "从版本": "From version",
    "到版本": "To version",
    "比较": "Compare",
    "按 BPMN 元素标识比较：新增、删除和改变的元素（名称、属性、定时器、条件等），图形布局的移动不算改变。": (
        "Compared by BPMN element id: added, removed and changed elements (name, properties, timers, "
        "conditions, etc.); moving shapes in the layout is not a change."
    ),
    (
        "绑定（隐患等级 + 行业 + 地区）决定新登记的隐患从哪个版本开始；最具体的绑定优先（行业和地区 > 仅行业 "
        "> 仅地区 > 等级默认）。改变绑定不影响运行中的实例。回退撤销该绑定最近一次变更，"
        "恢复此前新隐患使用的版本；再次回退继续向前撤销。"
    ): (
        "A binding (hazard grade + sector + region) decides which version newly registered hazards start on; "
        "the most specific binding wins (sector and region > sector only > region only > grade default). "
        "Changing a binding does not affect running instances. Rolling back undoes the binding's latest "
        "change and restores the version new hazards used before; rolling back again undoes the change "
        "before that."
    ),
    "新隐患使用": "New hazards use",
    "变更记录": "History",
    "回退": "Roll back",
    "所有行业": "All sectors",
    "所有地区": "All regions",
    "固定版本": "Pinned version",
    "始终最新": "Always latest",
    "{n} 次变更": "{n} changes",
    "回退说明": "Rollback note",
    "回退说明（必填）": "Rollback note (required)",
    "无权回退": "You may not roll back",
    "目前没有绑定指向该流程：新登记的隐患不会使用它。": (
        "No binding points to this process: newly registered hazards will not use it."
    ),
    "新建或修改绑定": "Create or change a binding",
    "始终最新（当前 v{n}）": "Always latest (now v{n})",
    "固定为 v{n}": "Pinned to v{n}",
    "如：危化行业一般隐患改用 v3（验收环节改称复核）": (
        "e.g. general hazards in hazardous chemicals move to v3 (the verification step is renamed re-check)"
    ),
    (
        "记录在绑定历史中。地区绑定对其下级地区同样有效。重大隐患的绑定要求流程保留双报告、"
        "五落实和部门审核环节。"
    ): (
        "Recorded in the binding history. A region binding also applies to the regions below it. A binding fo"
        "r major hazards requires the process to keep the dual report, five implementations (五落实) and depa"
        "rtment review steps."
    ),
    "保存绑定": "Save binding",
    "迁移运行中的实例": "Migrate running instances",
    (
        "运行中的实例留在开始时的版本上。需要时可把它们迁移到另一个版本：先预览哪些实例可以迁移、"
        "哪些不能及原因，确认后才迁移。已迁移实例保留原有的绝对期限和历史，迁移记录在每个隐患的事件日志中。"
    ): (
        "Running instances stay on the version they started on. When needed they can be migrated to another "
        "version: first preview which instances can migrate and which cannot, and why; nothing migrates "
        "until you confirm. Migrated instances keep their absolute deadlines and history, and the migration "
        "is recorded in each hazard's event log."
    ),
    "v{n}（运行中 {r} 个）": "v{n} ({r} running)",
    "迁移到": "Migrate to",
    "预览迁移": "Preview migration",
    "没有可迁移的运行中实例。": "No running instances to migrate.",
    "该流程只有一个版本。": "The process has only one version.",
    "{name} · 比较版本": "{name} · Compare versions",
    "该流程只有一个版本，没有可比较的版本。": (
        "The process has only one version; there is nothing to compare."
    ),
    (
        "按 BPMN 元素标识比较：新增、删除和改变的元素（名称、属性、定时器、条件、处理器、连线的起止等），"
        "图形布局的移动不算改变。"
    ): (
        "Compared by BPMN element id: added, removed and changed elements (name, properties, timers, "
        "conditions, handlers, flow ends, etc.); moving shapes in the layout is not a change."
    ),
    "两个版本的流程元素相同（仅布局或文本格式不同）。": (
        "The two versions have the same process elements (only the layout or text formatting differs)."
    ),
    "新增 {n}": "Added {n}",
    "删除 {n}": "Removed {n}",
    "改变 {n}": "Changed {n}",
    "变化": "Change",
    "元素": "Element",
    "改变的属性": "Changed attributes",
    "新增": "Added",
    "改变": "Changed",
    "v{n} 流程图": "v{n} diagram",
    "聚焦变更环节": "Focus on the changed steps",
    "v{n} 流程图，标出新增和改变的元素": "v{n} diagram with added and changed elements marked",
    "v{n} 流程图（标出删除的元素）": "v{n} diagram (removed elements marked)",
    "v{n} 流程图，标出删除的元素": "v{n} diagram with removed elements marked",
    "{name} v{n} 热力图": "{name} v{n} heatmap",
    "热力图 · v{n}": "Heatmap · v{n}",
    "v{n} 各环节的在办与逾期事项": "Open and overdue tasks by step, v{n}",
    "切换版本": "Switch version",
    "运行中 {n} 个": "{n} running",
    "运行中实例 {r} 个；在办事项 {open} 件，其中逾期 {overdue} 件（统计时间 {at}）。": (
        "{r} running instances; {open} open tasks, {overdue} of them overdue (as of {at})."
    ),
    "有在办事项": "Has open tasks",
    "有逾期事项": "Has overdue tasks",
    "在办件数": "Open tasks",
    "逾期件数": "Overdue tasks",
    "v{n} 热力图": "v{n} heatmap",
    "各环节统计": "By step",
    "环节": "Step",
    "标识": "Id",
    "在办": "Open",
    "其中已认领": "Of which claimed",
    "该版本没有人工任务。": "This version has no user tasks.",
    "合计": "Total",
    (
        "统计该版本上运行中实例的待办（待认领和已认领）；逾期指已过办理期限仍未完成。已迁移到其他版本的实例计"
        "入新版本。"
    ): (
        "Counts the open tasks (unclaimed and claimed) of the instances running on this version; overdue "
        "means past the due time and not yet done. Instances migrated to another version count under the new "
        "version."
    ),
    "{name} · 迁移实例": "{name} · Migrate instances",
    (
        "运行中的实例留在开始时的版本上；只有在这里确认后才会迁移。已迁移实例保留原有的绝对期限和历史："
        "已办理的环节、表单数据和计时器的到期时间都不变，迁移记录在每个隐患的事件日志中。"
        "所在环节在新版本中不存在或类型改变等情况下，实例不能迁移，原样留在原版本。"
    ): (
        "Running instances stay on the version they started on; they migrate only once you confirm here. "
        "Migrated instances keep their absolute deadlines and history: completed steps, form data and timer "
        "due times do not change, and the migration is recorded in each hazard's event log. An instance "
        "whose current step is missing from the new version or has changed type (among other cases) cannot "
        "migrate and stays on its version as it is."
    ),
    "预览：v{a} → v{b}": "Preview: v{a} → v{b}",
    "可以迁移 {n} 个": "{n} can migrate",
    "不能迁移 {n} 个": "{n} cannot migrate",
    "该版本共有 {r} 个运行中实例，这里只列出您可管理的（本部门牵头行业、本辖区）。": (
        "This version has {r} running instances; only those you manage are listed (sectors your department "
        "leads, in your region)."
    ),
    "两个版本的流程元素相同。": "The two versions have the same process elements.",
    "两个版本的差异：新增 {a} 个、删除 {r} 个、改变 {c} 个元素。": (
        "Differences between the versions: {a} elements added, {r} removed, {c} changed."
    ),
    "查看差异": "View differences",
    "迁移": "Migrate",
    "当前环节": "Current step",
    "能否迁移": "Can migrate",
    "原因 / 说明": "Reasons / notes",
    "迁移 {number}": "Migrate {number}",
    "可以": "Yes",
    "不能": "No",
    (
        "确认后逐个迁移勾选的实例（每个实例单独加锁、单独提交）；预览后状态已变化（如计时器已到期）"
        "的实例会再次检查，不能迁移的原样保留。"
    ): (
        "Confirming migrates the ticked instances one by one (each locked and committed on its own); "
        "instances whose state changed after the preview (a timer fired, for example) are checked again, and "
        "those that cannot migrate are left as they are."
    ),
    "确认迁移所选实例": "Migrate the selected instances",
    "v{n} 上没有您可管理的运行中实例。": "No running instances you manage on v{n}.",
    "{name} · 迁移结果": "{name} · Migration result",
    "迁移结果：v{a} → v{b}": "Migration result: v{a} → v{b}",
    (
        "已迁移 {moved} 个，未迁移 {left} 个。已迁移实例保留原有的绝对期限和历史，每个隐患的事件日志中记录了"
        "这次迁移；未迁移的实例原样留在 v{a}。"
    ): (
        "{moved} migrated, {left} not migrated. Migrated instances keep their absolute deadlines and "
        "history, and each hazard's event log records the migration; instances not migrated stay on v{a} as "
        "they are."
    ),
    "实例": "Instance",
    "结果": "Result",
    "已迁移": "Migrated",
    "未迁移": "Not migrated",
    "返回版本与绑定": "Back to versions and bindings",
    "再次预览": "Preview again",
    "查看 v{n} 热力图": "View the v{n} heatmap",
    "版本 v{n}": "Version v{n}",
    "版本信息": "Version details",
    "与 v{n} 比较": "Compare with v{n}",
    "流程图 v{n}": "Diagram v{n}",
    "（无此绑定）": "(no such binding)",
    "（固定版本）": " (pinned)",
    "（跟随最新版本）": " (follows the latest version)",
    "所有行业（全国默认）": "All sectors (national default)",
    "您没有权限查看该流程": "You may not view this process",
    "请填写说明（记录在绑定历史中）": "Enter a note (it is recorded in the binding history)",
    "说明不能超过 {n} 个字符": "The note may not exceed {n} characters",
    "请选择列表中的地区": "Choose a region from the list",
    "请选择隐患等级": "Choose the hazard grade",
    "请选择版本": "Choose a version",
    "请选择本部门牵头的行业": "Choose a sector your department leads",
    "只能绑定本部门牵头的行业": "You can only bind sectors your department leads",
    "没有版本 v{n}": "There is no version v{n}",
    "最新版本": "the latest version",
    "已绑定 {label} → {key} {target}：新登记的隐患从该版本开始，运行中的实例保留原版本。": (
        "Bound {label} → {key} {target}: newly registered hazards start on that version; running instances "
        "stay on theirs."
    ),
    "只能回退本部门牵头行业的绑定": "You can only roll back bindings of sectors your department leads",
    "已回退 {label}：该绑定已撤销，改用更上一级的绑定。": (
        "Rolled back {label}: the binding is removed and the next broader binding applies."
    ),
    "已回退 {label} → {target}：新登记的隐患从该版本开始，运行中的实例不受影响。": (
        "Rolled back {label} → {target}: newly registered hazards start on that version; running instances "
        "are not affected."
    ),
    "请选择两个不同的版本": "Choose two different versions",
    "请至少选择一个可以迁移的实例": "Choose at least one instance that can migrate",
    "一般（含突出）": "General (incl. prominent)",
    "条件": "Condition",
    "处理器": "Handler",
    "附着于": "Attached to",
    "中断原任务": "Interrupts the task",
    "默认连线": "Default flow",
    "起点": "Source",
    "终点": "Target",
    "调用": "Calls",
    "人工任务": "User task",
    "服务任务": "Service task",
    "脚本任务": "Script task",
    "决策任务": "Business rule task",
    "手工任务": "Manual task",
    "调用子流程": "Call activity",
    "子流程": "Subprocess",
    "连线": "Sequence flow",
    "排他网关": "Exclusive gateway",
    "并行网关": "Parallel gateway",
    "包容网关": "Inclusive gateway",
    "事件网关": "Event-based gateway",
    "开始事件": "Start event",
    "结束事件": "End event",
    "边界事件": "Boundary event",
    "中间捕获事件": "Intermediate catch event",
    "中间抛出事件": "Intermediate throw event",
    # versions of forms and policy profiles: one version, two compared (templates/design_history/,
    # web/pages/design_history.py; links in design/form_edit.html and policy.html)
    "与上一版比较": "Compare with the previous version",
    "返回编辑表单": "Back to the form editor",
    "返回策略配置": "Back to the policy profile",
    "{title} · 第 {n} 版": "{title} · version {n}",
    "填写人看到的表单（只读）": "The form as the person filling it in sees it (read-only)",
    "已发布的版本不能修改；此后启动的隐患流程使用最新版本，已启动的流程继续使用启动时的版本。": (
        "A published version cannot be changed; hazard processes started from now on use the latest "
        "version, processes already started keep the version they started with."
    ),
    "比较表单版本": "Compare form versions",
    "比较策略配置版本": "Compare policy profile versions",
    (
        "版本号在同一范围（{scope}）内计数，这里比较该范围的两个版本；本行业的第 1 版与它取代的全国版本比较，"
        "请使用版本记录中的“与上一版比较”。"
    ): (
        "Version numbers count within one scope ({scope}); this compares two versions of that scope. To "
        "compare a sector's version 1 with the national version it replaced, use “Compare with the "
        "previous version” in the version history."
    ),
    (
        "比较的是每个版本生效的全部内容（含沿用的全国数值）：策略值、督办升级梯度（含时间点的期限）和触发条件。"
    ): (
        "Compares everything in force in each version (including the national values it inherits): "
        "policy values, the escalation ladder (with the time each rung is issued) and the triggers."
    ),
    "版本号必须是正整数（得到 {value}）": "A version number must be a positive whole number (got {value})",
    "第 {n} 版是第一个版本，没有可比较的上一版。": (
        "Version {n} is the first version; there is no previous version to compare with."
    ),
    "两个版本相同。": "The two versions are the same.",
    "两个版本的内容相同。": "The two versions have the same content.",
    "内容或改变的属性": "Content or changed attributes",
    "字段顺序": "Field order",
    "原顺序": "Old order",
    "新顺序": "New order",
    "查看第 {n} 版": "View version {n}",
    "查看{scope}第 {n} 版": "View {scope} version {n}",
    "梯度": "Rung",
    "设置": "Settings",
    "没有触发条件。": "No triggers.",
    "下面是该版本生效的全部数值：标为“本行业设置”的由本行业设置，其余沿用发布时的全国配置。": (
        "Below is every value in force in this version: those marked “Set by this sector” are the "
        "sector's own, the others come from the national profile as it was when this version was published."
    ),
    "本行业设置的策略值": "Values set by this sector",
    "备注": "Note",
    "级别": "Level",
    "文书": "Notice",
    "时间点": "Issued at",
    "时间点期限": "Time until issue",
    "回复/公布期限时长": "Response/publication period",
    "检查项": "Checklist items",
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
