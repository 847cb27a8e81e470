"""The allow-list expression evaluator: conditions, timers, DMN cells, and refused sandbox escapes."""

from __future__ import annotations

import ast

import pytest

from engine import expressions
from engine.errors import ExpressionError
from engine.errors import UnsafeExpression
from engine.expressions import FUNCTIONS
from engine.expressions import check
from engine.expressions import evaluate
from engine.expressions import names_used
from engine.expressions import register_function

DATA: dict[str, object] = {
    "decision": "pass",
    "failed_verifications": 3,
    "max_rejects": 3,
    "grade": "major",
    "handling": "immediate",
    "stop_production": False,
    "deadline_at": "2026-01-10T08:00:00+08:00",
    "reported_at": "2026-01-05T00:00:00Z",
    "score": 5,
    "hazard": {"grade": "major", "photos": ["a.jpg", "b.jpg"]},
    "items": [1, 2, 3, 4],
    "note": None,
    "x": 1,
    "y": 2,
}


# --------------------------------------------------------------------------------------------------
# Conditions and timers


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('decision == "pass"', True),
        ('decision != "pass"', False),
        ("failed_verifications >= max_rejects", True),
        ("failed_verifications < max_rejects", False),
        ('grade in ("major", "prominent")', True),
        ('grade not in ["major", "prominent"]', False),
        ('handling == "immediate" and not stop_production', True),
        ('handling == "deferred" or stop_production', False),
        ("4 < score < 6", True),
        ("4 < score < 5", False),
        ("1 <= x < y <= 2", True),
        ("note is None", True),
        ("None is not note", False),
        ('hazard["grade"] == "major"', True),
        ('len(hazard["photos"]) >= 2', True),
        ("items[-1] + items[0]", 5),
        ("items[1:3]", [2, 3]),
        ("items[:2]", [1, 2]),
        ('"immediate"[:3]', "imm"),
        ('"yes" if score > 3 else "no"', "yes"),
        ("(x + y) * 3 - 1", 8),
        ("7 / 2", 3.5),
        ("7 // 2", 3),
        ("7 % 3", 1),
        ("-x + +y", 1),
        ("not items", False),
        ("[x, y] + [3]", [1, 2, 3]),
        ("(x, y)", (1, 2)),
        ('{"a": x, "b": [y]}', {"a": 1, "b": [2]}),
        ("{x, y, x}", {1, 2}),
        ('"ab" * 3', "ababab"),
        ("[0] * 3", [0, 0, 0]),
        ("min(items) + max(items)", 5),
        ("min(x, y, 0)", 0),
        ("max([], default=7)", 7),
        ("abs(-3)", 3),
        ('int("42") + int("ff", base=16)', 297),
        ('float("1.5")', 1.5),
        ("str(score)", "5"),
        ("bool(note)", False),
        ("round(2.675, 2)", 2.67),
        ("round(7.5)", 8),
        ("sum(items)", 10),
        ("sum(items, start=10)", 20),
        ("any([False, x])", True),
        ("all([x, y, note])", False),
        ("True and 0", 0),
        ("0 or '' or 'fallback'", "fallback"),
    ],
)
def test_conditions(expression: str, expected: object) -> None:
    check(expression)
    assert evaluate(expression, DATA) == expected


def test_and_or_short_circuit() -> None:
    # The right-hand side would fail (unknown name / division by zero) if it were evaluated.
    assert evaluate("stop_production and missing_name", DATA) is False
    assert evaluate("x or 1 / 0", DATA) == 1
    assert evaluate("x if True else 1 / 0", DATA) == 1
    assert evaluate("5 < score < missing_name", DATA) is False


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ('"P7D"', "P7D"),
        ('"PT48H"', "PT48H"),
        ("deadline_at", "2026-01-10T08:00:00+08:00"),
        ("days_before(deadline_at, 3)", "2026-01-07T00:00:00+00:00"),
        ("days_after(deadline_at, 1)", "2026-01-11T00:00:00+00:00"),
        ("hours_before(deadline_at, 12)", "2026-01-09T12:00:00+00:00"),
        ("hours_after(reported_at, 1.5)", "2026-01-05T01:30:00+00:00"),
        ("days_between(reported_at, deadline_at)", 5.0),
        ("days_between(deadline_at, reported_at)", -5.0),
        ('days_after("2026-03-01T00:00:00-05:00", 0)', "2026-03-01T05:00:00+00:00"),
    ],
)
def test_timer_expressions(expression: str, expected: object) -> None:
    assert evaluate(expression, DATA) == expected


@pytest.mark.parametrize(
    "expression",
    [
        'days_after("2026-01-10T08:00:00", 1)',  # naive
        'days_before("2026-01-10", 1)',  # a date is naive too
        'days_after("next tuesday", 1)',
        "days_after(x, 1)",
        'days_after(deadline_at, "3")',
        "days_after(deadline_at, True)",
        "days_after(deadline_at, 10 ** 1)",  # refused: ** (UnsafeExpression is a ValueError)
        "days_after(deadline_at, 100000000)",  # overflows datetime
        'days_between(deadline_at, "2026-01-10T08:00:00")',
    ],
)
def test_date_helpers_refuse_bad_input(expression: str) -> None:
    with pytest.raises((ExpressionError, UnsafeExpression)):
        evaluate(expression, DATA)


def test_naive_timestamp_is_expression_error() -> None:
    with pytest.raises(ExpressionError, match="时区"):
        evaluate("days_before(ts, 3)", {"ts": "2026-01-10T08:00:00"})


# --------------------------------------------------------------------------------------------------
# Name resolution and runtime errors


def test_external_context_wins_over_context() -> None:
    assert evaluate("x + y", {"x": 1, "y": 2}, {"x": 10}) == 12
    assert evaluate("x", {"x": 1}, None) == 1
    assert evaluate("v", {}, {"v": None}) is None


def test_variable_may_share_a_function_name() -> None:
    assert evaluate("max >= 3 and max(1, 2) == 2", {"max": 4})


@pytest.mark.parametrize(
    "expression",
    [
        "unknown_name",
        "1 / 0",
        "7 // 0",
        "7 % 0",
        '1 + "a"',
        '1 < "a"',
        'hazard["missing"]',
        "items[10]",
        'items["0"]',
        "x[0]",
        "{[1]: 2}",
        'int("abc")',
        "max([])",
        "-grade",
        "round(10, -100)",
        'sum(["a", "b"])',
        "sum([[1], [2]], start=[])",
        "'%s' % grade",
        "'%(a)s' % {'a': 1}",
        "'a' * 100000000",
        "[0] * 10001",
        "[[0] * 100] * 101",
        "100000000000000000000 * 100000000000000000000",
        "1000000000000000000000000000000 + 1",
        'int("9" * 40)',
        "round(1e40)",
        "str([" + ", ".join(["'aaaaaaaaaa' * 1000"] * 11) + "])",  # too big to render
    ],
)
def test_runtime_failures_are_expression_errors(expression: str) -> None:
    check(expression)  # all of these are allowed syntax
    with pytest.raises(ExpressionError):
        evaluate(expression, DATA)


def test_repetition_at_the_limit_is_allowed() -> None:
    assert len(evaluate('"a" * 10000', {})) == 10_000  # type: ignore[arg-type]
    assert len(evaluate("[0] * 10000", {})) == 10_000  # type: ignore[arg-type]
    assert evaluate("[0] * -5", {}) == []
    assert evaluate("1000000000000000000000000000000 - 1", {}) == 10**30 - 1


def test_unknown_name_reason() -> None:
    with pytest.raises(ExpressionError, match="nope"):
        evaluate("nope == 1", DATA)


def test_functions_refuse_non_plain_arguments() -> None:
    class Sneaky:
        def __len__(self) -> int:  # pragma: no cover - must never be called
            raise AssertionError("called")

    with pytest.raises(ExpressionError):
        evaluate("len(obj)", {"obj": Sneaky()})
    with pytest.raises(ExpressionError):
        evaluate("str(obj)", {"obj": object()})
    with pytest.raises(ExpressionError):
        evaluate("min([3, 1], key=x)", DATA)


# --------------------------------------------------------------------------------------------------
# DMN cells, exactly as SpiffWorkflow 3.2.0's DMNEngine.evaluate builds them


def test_dmn_equality_cell() -> None:
    # Cell text '"major"' parses on its own, so DMNEngine wraps it: f'({input_expr}) == ({match_expr})'.
    assert evaluate('(grade) == ("major")', {"grade": "major"}) is True
    assert evaluate('(grade) == ("major")', {"grade": "general"}) is False
    assert evaluate('(hazard["grade"]) == ("major")', DATA) is True


def test_dmn_operator_cell() -> None:
    # Cell text '> 5' does not parse alone, 'v > 5' does, so DMNEngine concatenates without a space.
    assert evaluate("score> 5", {"score": 6}) is True
    assert evaluate("score> 5", {"score": 5}) is False
    assert evaluate('grade!= "major"', {"grade": "general"}) is True
    assert evaluate("score>= max_rejects", DATA) is True


def test_dmn_question_mark_cell() -> None:
    # '4 < ? < 6': DMNEngine evaluates the input expression, then the cell with '?' replaced by
    # 'dmninputexpr', passing the input value through external_context.
    input_value = evaluate("score", {"score": 5})
    assert evaluate("4 < dmninputexpr < 6", {"score": 5}, {"dmninputexpr": input_value}) is True
    assert evaluate("4 < dmninputexpr < 6", {}, {"dmninputexpr": 6}) is False
    assert evaluate('dmninputexpr in ("a", "b")', {}, {"dmninputexpr": "a"}) is True
    # external_context shadows task data of the same name
    assert evaluate("dmninputexpr == 1", {"dmninputexpr": 2}, {"dmninputexpr": 1}) is True


def test_dmn_list_cell_compares_with_a_tuple() -> None:
    # '"a","b"' becomes '(grade) == ("a","b")': Python tuple equality, not membership.
    assert evaluate('(grade) == ("a","b")', {"grade": "a"}) is False
    assert evaluate('(grade) == ("a","b")', {"grade": ("a", "b")}) is True


def test_dmn_empty_cell_without_text_element() -> None:
    # An inputEntry with no <text> child has text '' which DMNEngine turns into '(grade) == ()'.
    # ('-' and <text/> become None and are never evaluated.)
    assert evaluate("(grade) == ()", {"grade": "major"}) is False


def test_dmn_quoted_question_mark_and_label_fallback() -> None:
    assert evaluate('(answer) == ("what?")', {"answer": "what?"}) is True
    # Input without an expression falls back to "%r" % context[label].
    assert evaluate("('major') == (\"major\")", {}) is True
    assert evaluate("(5)> 3", {}) is True


def test_dmn_output_cells() -> None:
    assert evaluate('"immediate"', {}) == "immediate"
    assert evaluate("7", {}) == 7
    assert evaluate("days_after(reported_at, 7)", DATA) == "2026-01-12T00:00:00+00:00"


# --------------------------------------------------------------------------------------------------
# Sandbox escapes: refused by check() and by evaluate()

ESCAPES = [
    "__import__('os').system('id')",
    "__import__('os')",
    "().__class__.__base__.__subclasses__()",
    "getattr(x, '__class__')",
    "(lambda: 1)()",
    "lambda: 1",
    "[c for c in ().__class__.__mro__]",
    "[c for c in items]",
    "{k: v for k, v in x.items()}",
    "{k for k in items}",
    "any(i for i in items)",
    "'{0.__class__}'.format(x)",
    'f"{x.__class__}"',
    'f"{x}"',
    "9**9**9",
    "2 ** 3",
    "'a' * 10**9",
    "open('/etc/passwd')",
    "open('/etc/passwd').read()",
    "exec('1')",
    "eval('1')",
    "compile('1', 'f', 'eval')",
    "globals()",
    "locals()",
    "vars()",
    "dir()",
    "__builtins__",
    "__builtins__['eval']('1')",
    "x._secret",
    "_secret",
    "x.real",
    "(y := 1)",
    "type(x)",
    "setattr(x, 'a', 1)",
    "breakpoint()",
    "help()",
    "items.pop()",
    "str.join('', items)",
    "[*items]",
    "len(*items)",
    "max(**hazard)",
    "{**hazard}",
    "min(items, __key=1)",
    "x[0](1)",
    "x | y",
    "x & y",
    "x ^ y",
    "x << 2",
    "x >> 2",
    "~x",
    "x @ y",
    "x is y",
    "x is not 1",
    "b'bytes'",
    "...",
    "1j",
    "x = 1",
    "import os",
    "del x",
    "x; y",
    "await x",
    "(yield x)",
    "items[::-1]",
    "items[1:2, 3]",
    "10000000000000000000000000000000",  # integer literal above 10**30
    "x" * 5000,
    "-" * 400 + "x",  # too many nodes
    "x" + " + x" * 70,  # too deeply nested
    "",
    "1 +",
    "x\x00",
]


@pytest.mark.parametrize("expression", ESCAPES, ids=range(len(ESCAPES)))
def test_escape_refused_by_check(expression: str) -> None:
    with pytest.raises(UnsafeExpression):
        check(expression)


@pytest.mark.parametrize("expression", ESCAPES, ids=range(len(ESCAPES)))
def test_escape_refused_by_evaluate(expression: str) -> None:
    with pytest.raises(UnsafeExpression):
        evaluate(expression, DATA)


def test_string_repetition_refused_at_run_time() -> None:
    check("'a' * 100000000")  # the syntax is fine …
    with pytest.raises(ExpressionError, match="10000"):
        evaluate("'a' * 100000000", {})  # … but the result would be too big, so it is never built


@pytest.mark.parametrize(
    ("expression", "fragment"),
    [
        ("().__class__", "不允许访问属性 (.__class__)"),
        ("__import__('os').system('id')", "(.system)"),
        ("__import__('os')", "__import__"),
        ("getattr(x, '__class__')", "getattr"),
        ("(lambda: 1)()", "lambda"),
        ("[c for c in items]", "推导式"),
        ('f"{x}"', "f-string"),
        ("9**9**9", "**"),
        ("(y := 1)", ":="),
        ("x | y", "|"),
        ("x is 1", "None"),
        ("b'x'", "bytes"),
        ("x" * 5000, "2000"),
        ("1 +", "语法错误"),
        ("x = 1", "语法错误"),
    ],
)
def test_refusal_names_the_construct(expression: str, fragment: str) -> None:
    with pytest.raises(UnsafeExpression) as info:
        check(expression)
    assert fragment in info.value.reason


def test_non_string_expression_refused() -> None:
    with pytest.raises(UnsafeExpression):
        check(123)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Function registry and names_used


def test_register_function() -> None:
    def working_days_after(ts: str, n: int) -> str:
        return f"{ts}+{n}wd"

    with pytest.raises(UnsafeExpression):
        check("working_days_after_test(deadline_at, 2)")
    register_function("working_days_after_test", working_days_after)
    try:
        check("working_days_after_test(deadline_at, 2)")
        assert evaluate("working_days_after_test(deadline_at, 2)", DATA) == ("2026-01-10T08:00:00+08:00+2wd")
        assert "working_days_after_test" not in names_used("working_days_after_test(deadline_at, 2)")
    finally:
        FUNCTIONS.pop("working_days_after_test")
    # Once removed, the cached validation no longer lets the call through at run time.
    with pytest.raises(ExpressionError):
        evaluate("working_days_after_test(deadline_at, 2)", DATA)


@pytest.mark.parametrize("name", ["_private", "__import__", "not valid", "lambda", ""])
def test_register_function_refuses_bad_names(name: str) -> None:
    with pytest.raises(ValueError):
        register_function(name, len)


def test_register_function_cannot_replace_builtins() -> None:
    with pytest.raises(ValueError):
        register_function("len", lambda value: 0)
    register_function("len", FUNCTIONS["len"])  # re-registering the same callable is a no-op


def test_names_used() -> None:
    assert names_used("days_before(deadline_at, 3)") == {"deadline_at"}
    assert names_used('"P7D"') == set()
    assert names_used('handling == "immediate" and not stop_production') == {"handling", "stop_production"}
    assert names_used("max(max, limit) + len(items)") == {"max", "limit", "items"}
    assert names_used("4 < dmninputexpr < 6") == {"dmninputexpr"}
    with pytest.raises(UnsafeExpression):
        names_used("x.__class__")


def test_validation_is_cached() -> None:
    expressions._validated.cache_clear()
    evaluate("x + 1", {"x": 1})
    evaluate("x + 1", {"x": 2})
    check("x + 1")
    info = expressions._validated.cache_info()
    assert info.misses == 1
    assert info.hits == 2


def test_module_imports_no_spiff_or_flask_and_never_evals() -> None:
    with open(expressions.__file__, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    imported: set[str] = set()
    called: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            called.add(node.func.id)
    assert not imported & {"SpiffWorkflow", "flask", "werkzeug"}
    assert not called & {"eval", "exec", "compile", "__import__"}
