"""A small, allow-listed expression language for everything a department authors in a diagram.

SpiffWorkflow 3.2.0 evaluates gateway conditions, timer expressions, service-task parameters and
DMN cells with Python's ``eval()``.  Diagrams are written by departments, so no department-authored
Python may ever run.  This module parses an expression with :func:`ast.parse` (``mode="eval"``),
checks every node against an allow-list and then evaluates the tree with its own tiny interpreter —
it never calls ``eval``/``exec``/``compile`` to code objects.

The same checks run at deploy time (:func:`check`, so a bad diagram is refused up front) and at run
time (:func:`evaluate` re-validates through a cache before interpreting).

Allowed: constants (str, int, float, bool, None), variable names, list/tuple/dict/set displays,
``and``/``or``/``not``, comparisons (``is``/``is not`` only against ``None``), ``+ - * / // %``,
unary ``- +``, ``x if c else y``, subscripts with an index or a ``[a:b]`` slice, and calls of the
functions registered in :data:`FUNCTIONS` by bare name.  Everything else — attribute access,
lambdas, comprehensions, f-strings, ``**``, bit operators, ``:=``, names starting with ``_`` — is
refused with :class:`~engine.errors.UnsafeExpression`.

This module must stay plain Python: it does not import SpiffWorkflow or Flask.
"""

from __future__ import annotations

import ast
import functools
import keyword
import math
import operator
from collections.abc import Callable
from collections.abc import Mapping
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from engine.errors import EngineError
from engine.errors import ExpressionError
from engine.errors import UnsafeExpression

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_INT",
    "MAX_LENGTH",
    "MAX_NODES",
    "MAX_REPEAT",
    "check",
    "evaluate",
    "names_used",
    "register_function",
]

MAX_LENGTH = 2000
"""Longest expression text accepted, in characters."""

MAX_NODES = 300
"""Most AST nodes accepted (operator and load/store marker nodes are not counted)."""

MAX_DEPTH = 64
"""Deepest nesting of sub-expressions accepted (keeps the interpreter's recursion shallow)."""

MAX_INT = 10**30
"""Largest absolute integer that arithmetic (or a function) may produce."""

MAX_REPEAT = 10_000
"""Largest size (elements, nested elements and characters) a ``*`` repetition may produce."""

MAX_STR_WEIGHT = 100_000
"""Largest size of a value ``str()`` may be asked to render."""

_CACHE_SIZE = 2048

# Nodes that only mark an operator or a load context; they are checked through their parents.
_MARKER_NODES = (ast.expr_context, ast.operator, ast.boolop, ast.unaryop, ast.cmpop)

_PLAIN_TYPES: tuple[type, ...] = (str, int, float, bool, type(None), list, tuple, dict, set, frozenset)
_SEQUENCE_TYPES: tuple[type, ...] = (str, list, tuple)

_BIN_OPS: dict[type[ast.operator], tuple[str, Callable[[object, object], object]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", operator.floordiv),
    ast.Mod: ("%", operator.mod),
}

_REFUSED_BIN_OPS: dict[type[ast.operator], str] = {
    ast.Pow: "**",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.BitOr: "|",
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.MatMult: "@",
}

_COMPARE_OPS: dict[type[ast.cmpop], Callable[[object, object], object]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda left, right: operator.contains(right, left),  # type: ignore[arg-type]
    ast.NotIn: lambda left, right: not operator.contains(right, left),  # type: ignore[arg-type]
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}

_UNARY_OPS: dict[type[ast.unaryop], Callable[[object], object]] = {
    ast.Not: operator.not_,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}

# Constructs refused with a specific reason (everything not allowed is refused anyway).
_REFUSED_NODES: dict[type[ast.AST], str] = {
    ast.Lambda: "不允许使用 lambda",
    ast.ListComp: "不允许使用推导式 (列表推导式)",
    ast.SetComp: "不允许使用推导式 (集合推导式)",
    ast.DictComp: "不允许使用推导式 (字典推导式)",
    ast.GeneratorExp: "不允许使用生成器表达式",
    ast.JoinedStr: "不允许使用 f-string",
    ast.FormattedValue: "不允许使用 f-string",
    ast.Starred: "不允许使用 * / ** 解包",
    ast.NamedExpr: "不允许使用赋值表达式 (:=)",
    ast.Await: "不允许使用 await",
    ast.Yield: "不允许使用 yield",
    ast.YieldFrom: "不允许使用 yield from",
}

_RUNTIME_ERRORS = (
    TypeError,
    ZeroDivisionError,
    ValueError,
    KeyError,
    IndexError,
    OverflowError,
    RecursionError,
    MemoryError,
)


# --------------------------------------------------------------------------------------------------
# Whitelisted functions


def _weight(value: object, budget: int) -> int:
    """Size of ``value``: characters of strings plus scalars inside (nested) containers.

    ``[0] * 3`` weighs 3, ``"ab"`` weighs 2, ``[[0, 0]] * 2`` weighs 4; an empty string or
    container weighs 1.  Stops counting once above ``budget`` (so the cost is bounded).
    """
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += max(len(item), 1)
        elif isinstance(item, list | tuple | set | frozenset) and item:
            stack.extend(item)
        elif isinstance(item, dict) and item:
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            total += 1
        if total > budget:
            return total
    return total


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _require_plain(name: str, value: object) -> None:
    if not isinstance(value, _PLAIN_TYPES):
        raise TypeError(f"{name}() 不接受 {type(value).__name__} 类型的参数")


def _safe_builtin(
    fn: Callable[..., object], name: str, keywords: frozenset[str] = frozenset()
) -> Callable[..., object]:
    """Wrap a builtin so that it only ever sees plain data and only the named keyword arguments."""

    def wrapper(*args: object, **kwargs: object) -> object:
        for arg in args:
            _require_plain(name, arg)
        for key, arg in kwargs.items():
            if key not in keywords:
                raise TypeError(f"{name}() 不接受关键字参数 {key!r}")
            _require_plain(name, arg)
        return fn(*args, **kwargs)

    wrapper.__name__ = name
    wrapper.__qualname__ = name
    wrapper.__doc__ = f"Allow-listed {name}() on plain data."
    return wrapper


def _safe_round(number: object, ndigits: object = None) -> object:
    """``round()`` with a bounded ``ndigits`` (``round(10**29, -10**9)`` would never finish)."""
    if ndigits is not None and (not isinstance(ndigits, int) or not -30 <= ndigits <= 30):
        raise ValueError("round() 的 ndigits 必须是 -30 到 30 之间的整数")
    return round(number, ndigits)  # type: ignore[call-overload]


def _safe_sum(values: object, start: object = 0) -> object:
    """``sum()`` of numbers only (summing lists or strings is quadratic)."""
    if not _is_number(start) and not isinstance(start, bool):
        raise TypeError("sum() 只能对数字求和")
    if not isinstance(values, list | tuple | set | frozenset | dict):
        raise TypeError("sum() 需要一个列表/元组/集合")
    total = start
    for value in values:
        if not isinstance(value, int | float):
            raise TypeError(f"sum() 只能对数字求和, 遇到 {type(value).__name__}")
        total = total + value  # type: ignore[operator]
        _check_int(total)
    return total


def _safe_str(value: object = "") -> str:
    """``str()`` of a bounded-size plain value."""
    if _weight(value, MAX_STR_WEIGHT) > MAX_STR_WEIGHT:
        raise ValueError(f"str() 的参数过大 (超过 {MAX_STR_WEIGHT})")
    return str(value)


def _check_int(value: object) -> None:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise OverflowError("整数结果超出允许范围 (绝对值不得大于 10**30)")


def _parse_instant(value: object, what: str) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"{what} 需要 ISO-8601 时间字符串, 得到 {type(value).__name__}")
    try:
        instant = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what} 不是合法的 ISO-8601 时间: {value!r}") from None
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError(f"{what} 必须带时区 (例如 +08:00 或 Z): {value!r}")
    return instant


def _amount(value: object, what: str) -> float:
    if not _is_number(value):
        raise TypeError(f"{what} 需要数字, 得到 {type(value).__name__}")
    amount = float(value)  # type: ignore[arg-type]
    if not math.isfinite(amount):
        raise ValueError(f"{what} 必须是有限数字")
    return amount


def _shift(ts: object, delta: timedelta) -> str:
    instant = _parse_instant(ts, "时间")
    return (instant + delta).astimezone(UTC).isoformat()


def days_after(ts: object, n: object) -> str:
    """The instant ``n`` days after timezone-aware ISO-8601 ``ts``, as ISO-8601 UTC (``+00:00``)."""
    return _shift(ts, timedelta(days=_amount(n, "天数")))


def days_before(ts: object, n: object) -> str:
    """The instant ``n`` days before timezone-aware ISO-8601 ``ts``, as ISO-8601 UTC (``+00:00``)."""
    return _shift(ts, -timedelta(days=_amount(n, "天数")))


def hours_after(ts: object, n: object) -> str:
    """The instant ``n`` hours after timezone-aware ISO-8601 ``ts``, as ISO-8601 UTC (``+00:00``)."""
    return _shift(ts, timedelta(hours=_amount(n, "小时数")))


def hours_before(ts: object, n: object) -> str:
    """The instant ``n`` hours before timezone-aware ISO-8601 ``ts``, as ISO-8601 UTC (``+00:00``)."""
    return _shift(ts, -timedelta(hours=_amount(n, "小时数")))


def days_between(a: object, b: object) -> float:
    """Days (fractional) from timezone-aware ISO-8601 ``a`` to ``b``, i.e. ``b - a``."""
    start = _parse_instant(a, "起始时间")
    end = _parse_instant(b, "结束时间")
    return (end - start).total_seconds() / 86400


FUNCTIONS: dict[str, Callable[..., object]] = {
    "len": _safe_builtin(len, "len"),
    "min": _safe_builtin(min, "min", frozenset({"default"})),
    "max": _safe_builtin(max, "max", frozenset({"default"})),
    "abs": _safe_builtin(abs, "abs"),
    "int": _safe_builtin(int, "int", frozenset({"base"})),
    "float": _safe_builtin(float, "float"),
    "str": _safe_builtin(_safe_str, "str"),
    "bool": _safe_builtin(bool, "bool"),
    "round": _safe_builtin(_safe_round, "round", frozenset({"ndigits"})),
    "sum": _safe_builtin(_safe_sum, "sum", frozenset({"start"})),
    "any": _safe_builtin(any, "any"),
    "all": _safe_builtin(all, "all"),
    "days_after": days_after,
    "days_before": days_before,
    "hours_after": hours_after,
    "hours_before": hours_before,
    "days_between": days_between,
}
"""The only callables an expression may call, by bare name. Extend with :func:`register_function`."""

_CORE_FUNCTIONS = frozenset(FUNCTIONS)


def register_function(name: str, fn: Callable[..., object]) -> None:
    """Allow expressions to call ``fn`` as ``name(...)``.

    ``fn`` is trusted engine code; it will only ever receive plain data (str, numbers, bool, None,
    list, tuple, dict, set) produced by the interpreter or read from the context.  Built-in names
    (``len``, ``days_after`` …) cannot be replaced; other names may be re-registered.
    """
    if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name):
        raise ValueError(f"函数名不合法: {name!r}")
    if name.startswith("_"):
        raise ValueError(f"函数名不得以下划线开头: {name!r}")
    if name in _CORE_FUNCTIONS and FUNCTIONS.get(name) is not fn:
        raise ValueError(f"不能替换内置函数 {name!r}")
    if not callable(fn):
        raise TypeError(f"{name!r} 必须是可调用对象")
    FUNCTIONS[name] = fn


# --------------------------------------------------------------------------------------------------
# Validation


def _fits_limits(tree: ast.Expression) -> str | None:
    """Return a reason if ``tree`` is too big or too deep, else ``None`` (iterative, no recursion)."""
    count = 0
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, _MARKER_NODES):
            continue
        count += 1
        if count > MAX_NODES:
            return f"表达式过于复杂 (超过 {MAX_NODES} 个语法节点)"
        if depth > MAX_DEPTH:
            return f"表达式嵌套过深 (超过 {MAX_DEPTH} 层)"
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))
    return None


class _Validator:
    """Walks a parsed expression and raises :class:`UnsafeExpression` at the first refused node."""

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def refuse(self, reason: str) -> UnsafeExpression:
        return UnsafeExpression(self.expression, reason)

    def visit(self, node: ast.AST) -> None:
        handler = getattr(self, f"visit_{type(node).__name__}", None)
        if handler is None:
            reason = _REFUSED_NODES.get(type(node))
            if reason is None:
                reason = f"不允许的语法 ({type(node).__name__})"
            raise self.refuse(reason)
        handler(node)

    def visit_Constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, bytes):
            raise self.refuse(f"不允许使用 bytes 常量 ({value!r})")
        if not isinstance(value, str | int | float | bool | type(None)):
            raise self.refuse(f"不允许的常量类型 {type(value).__name__} ({value!r})")
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
            raise self.refuse("整数常量过大 (绝对值不得大于 10**30)")

    def visit_Name(self, node: ast.Name) -> None:
        if not isinstance(node.ctx, ast.Load):
            raise self.refuse(f"不允许对名称赋值或删除 ({node.id})")
        if node.id.startswith("_"):
            raise self.refuse(f"不允许使用以下划线开头的名称 ({node.id})")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        raise self.refuse(f"不允许访问属性 (.{node.attr})")

    def _visit_elements(self, elements: list[ast.expr]) -> None:
        for element in elements:
            self.visit(element)

    def visit_List(self, node: ast.List) -> None:
        self._visit_elements(node.elts)

    def visit_Tuple(self, node: ast.Tuple) -> None:
        self._visit_elements(node.elts)

    def visit_Set(self, node: ast.Set) -> None:
        self._visit_elements(node.elts)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values, strict=True):
            if key is None:
                raise self.refuse("不允许使用 ** 解包字典")
            self.visit(key)
            self.visit(value)

    def visit_BoolOp(self, node: ast.BoolOp) -> None:
        self._visit_elements(node.values)

    def visit_UnaryOp(self, node: ast.UnaryOp) -> None:
        if type(node.op) not in _UNARY_OPS:
            raise self.refuse("不允许使用按位取反 (~)")
        self.visit(node.operand)

    def visit_BinOp(self, node: ast.BinOp) -> None:
        op_type = type(node.op)
        if op_type not in _BIN_OPS:
            symbol = _REFUSED_BIN_OPS.get(op_type, op_type.__name__)
            kind = "乘方运算" if op_type is ast.Pow else "运算符"
            raise self.refuse(f"不允许使用{kind} ({symbol})")
        self.visit(node.left)
        self.visit(node.right)

    def visit_Compare(self, node: ast.Compare) -> None:
        left = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            if type(op) not in _COMPARE_OPS:
                raise self.refuse(f"不允许的比较运算 ({type(op).__name__})")
            if isinstance(op, ast.Is | ast.IsNot) and not (_is_none(left) or _is_none(right)):
                raise self.refuse("is / is not 只能与 None 比较")
            left = right
        self.visit(node.left)
        self._visit_elements(node.comparators)

    def visit_IfExp(self, node: ast.IfExp) -> None:
        self.visit(node.test)
        self.visit(node.body)
        self.visit(node.orelse)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if not isinstance(node.ctx, ast.Load):
            raise self.refuse("不允许对下标赋值或删除")
        self.visit(node.value)
        index = node.slice
        if isinstance(index, ast.Slice):
            if index.step is not None:
                raise self.refuse("切片不允许使用步长 (只允许 [a:b])")
            for bound in (index.lower, index.upper):
                if bound is not None:
                    self.visit(bound)
        else:
            self.visit(index)

    def visit_Slice(self, node: ast.Slice) -> None:
        raise self.refuse("切片只能直接用于下标 (不允许多维切片)")

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if not isinstance(func, ast.Name):
            self.visit(func)  # names the offending construct (attribute, lambda …) if there is one
            raise self.refuse("只能直接按名称调用白名单函数")
        if func.id.startswith("_"):
            raise self.refuse(f"不允许使用以下划线开头的名称 ({func.id})")
        if func.id not in FUNCTIONS:
            allowed = ", ".join(sorted(FUNCTIONS))
            raise self.refuse(f"不允许调用函数 {func.id}(): 不在白名单中 (允许: {allowed})")
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.refuse("不允许使用 *args 解包参数")
            self.visit(arg)
        for kw in node.keywords:
            if kw.arg is None:
                raise self.refuse("不允许使用 **kwargs 解包参数")
            if kw.arg.startswith("_"):
                raise self.refuse(f"不允许使用以下划线开头的名称 ({kw.arg})")
            self.visit(kw.value)


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


@functools.lru_cache(maxsize=_CACHE_SIZE)
def _validated(expression: str) -> ast.Expression:
    """Parse and validate ``expression``; the tree is cached (failures are not)."""
    if len(expression) > MAX_LENGTH:
        raise UnsafeExpression(expression[:80] + "…", f"表达式过长 ({len(expression)} > {MAX_LENGTH} 个字符)")
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError as exc:
        raise UnsafeExpression(expression, f"语法错误: {exc.msg}") from None
    except (ValueError, RecursionError, MemoryError) as exc:
        raise UnsafeExpression(expression, f"无法解析: {exc}") from None
    reason = _fits_limits(tree)
    if reason is not None:
        raise UnsafeExpression(expression, reason)
    _Validator(expression).visit(tree.body)
    return tree


def _tree(expression: str) -> ast.Expression:
    if not isinstance(expression, str):
        raise UnsafeExpression(repr(expression), f"表达式必须是字符串, 得到 {type(expression).__name__}")
    return _validated(expression)


def check(expression: str) -> None:
    """Validate ``expression`` against the allow-list.

    Raises :class:`~engine.errors.UnsafeExpression` naming the offending construct, for syntax
    errors, and for expressions over the size limits.  Statements are refused: only a single
    expression parses.
    """
    _tree(expression)


def names_used(expression: str) -> set[str]:
    """The free variable names ``expression`` reads (function names in call position excluded).

    The expression is validated first (:class:`~engine.errors.UnsafeExpression` if refused).
    """
    tree = _tree(expression)
    called = {id(node.func) for node in ast.walk(tree) if isinstance(node, ast.Call)}
    return {node.id for node in ast.walk(tree) if isinstance(node, ast.Name) and id(node) not in called}


# --------------------------------------------------------------------------------------------------
# Evaluation

_MISSING = object()


class _Interpreter:
    """Evaluates a validated tree. Only node types accepted by :class:`_Validator` are handled."""

    def __init__(
        self,
        expression: str,
        context: Mapping[str, object],
        external_context: Mapping[str, object] | None,
    ) -> None:
        self.expression = expression
        self.context = context
        self.external_context = external_context or {}

    def fail(self, reason: str) -> ExpressionError:
        return ExpressionError(self.expression, reason)

    def visit(self, node: ast.expr) -> object:
        handler = getattr(self, f"eval_{type(node).__name__}", None)
        if handler is None:  # pragma: no cover - the validator refuses these first
            raise UnsafeExpression(self.expression, f"不允许的语法 ({type(node).__name__})")
        return handler(node)

    def eval_Constant(self, node: ast.Constant) -> object:
        return node.value

    def eval_Name(self, node: ast.Name) -> object:
        name = node.id
        if name in self.external_context:
            return self.external_context[name]
        if name in self.context:
            return self.context[name]
        raise self.fail(f"未定义的变量 {name}")

    def eval_List(self, node: ast.List) -> object:
        return [self.visit(element) for element in node.elts]

    def eval_Tuple(self, node: ast.Tuple) -> object:
        return tuple(self.visit(element) for element in node.elts)

    def eval_Set(self, node: ast.Set) -> object:
        return {self.visit(element) for element in node.elts}

    def eval_Dict(self, node: ast.Dict) -> object:
        result: dict[object, object] = {}
        for key, value in zip(node.keys, node.values, strict=True):
            assert key is not None  # refused by the validator
            result[self.visit(key)] = self.visit(value)
        return result

    def eval_BoolOp(self, node: ast.BoolOp) -> object:
        is_and = isinstance(node.op, ast.And)
        value: object = None
        for operand in node.values:
            value = self.visit(operand)
            if is_and and not value:
                return value
            if not is_and and value:
                return value
        return value

    def eval_UnaryOp(self, node: ast.UnaryOp) -> object:
        operand = self.visit(node.operand)
        if isinstance(node.op, ast.Not):
            return not operand
        if not _is_number(operand) and not isinstance(operand, bool):
            raise self.fail(f"一元 {'-' if isinstance(node.op, ast.USub) else '+'} 只能用于数字")
        return _UNARY_OPS[type(node.op)](operand)

    def eval_BinOp(self, node: ast.BinOp) -> object:
        left = self.visit(node.left)
        right = self.visit(node.right)
        symbol, fn = _BIN_OPS[type(node.op)]
        if isinstance(node.op, ast.Mod) and isinstance(left, str):
            raise self.fail("不允许使用 % 格式化字符串")
        if isinstance(node.op, ast.Mult):
            self._check_repeat(left, right)
        result = fn(left, right)
        if isinstance(result, int) and not isinstance(result, bool) and abs(result) > MAX_INT:
            raise self.fail(f"{symbol} 运算结果超出允许范围 (绝对值不得大于 10**30)")
        return result

    def _check_repeat(self, left: object, right: object) -> None:
        """Refuse ``seq * n`` whose result would exceed :data:`MAX_REPEAT`, before building it."""
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, _SEQUENCE_TYPES) and isinstance(times, int):
                if times <= 0:
                    return
                if times > MAX_REPEAT or _weight(seq, MAX_REPEAT) * times > MAX_REPEAT:
                    raise self.fail(f"* 重复的结果过大 (超过 {MAX_REPEAT} 个元素/字符)")
                return

    def eval_Compare(self, node: ast.Compare) -> object:
        left = self.visit(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.visit(comparator)
            if not _COMPARE_OPS[type(op)](left, right):
                return False
            left = right
        return True

    def eval_IfExp(self, node: ast.IfExp) -> object:
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def eval_Subscript(self, node: ast.Subscript) -> object:
        container = self.visit(node.value)
        index = node.slice
        if isinstance(index, ast.Slice):
            if not isinstance(container, _SEQUENCE_TYPES):
                raise self.fail(f"不能对 {type(container).__name__} 切片")
            lower = None if index.lower is None else self.visit(index.lower)
            upper = None if index.upper is None else self.visit(index.upper)
            for bound in (lower, upper):
                if bound is not None and not isinstance(bound, int):
                    raise self.fail("切片边界必须是整数")
            return container[lower:upper]  # type: ignore[misc]
        key = self.visit(index)
        if isinstance(container, Mapping):
            return container[key]
        if isinstance(container, _SEQUENCE_TYPES):
            if not isinstance(key, int):
                raise self.fail(f"{type(container).__name__} 的下标必须是整数")
            return container[key]
        raise self.fail(f"不能对 {type(container).__name__} 取下标")

    def eval_Call(self, node: ast.Call) -> object:
        assert isinstance(node.func, ast.Name)  # refused by the validator otherwise
        name = node.func.id
        fn = FUNCTIONS.get(name, _MISSING)
        if fn is _MISSING:
            raise self.fail(f"函数 {name}() 未注册")
        args = [self.visit(arg) for arg in node.args]
        kwargs: dict[str, object] = {}
        for kw in node.keywords:
            assert kw.arg is not None  # refused by the validator
            kwargs[kw.arg] = self.visit(kw.value)
        for value in (*args, *kwargs.values()):
            if not isinstance(value, _PLAIN_TYPES):
                raise self.fail(f"{name}() 不接受 {type(value).__name__} 类型的参数")
        result = fn(*args, **kwargs)  # type: ignore[operator]
        if isinstance(result, int) and not isinstance(result, bool) and abs(result) > MAX_INT:
            raise self.fail(f"{name}() 的结果超出允许范围 (绝对值不得大于 10**30)")
        return result


def evaluate(
    expression: str,
    context: Mapping[str, object],
    external_context: Mapping[str, object] | None = None,
) -> object:
    """Validate ``expression`` (cached) and evaluate it with the allow-list interpreter.

    Names resolve from ``external_context`` first, then ``context``.  Refused expressions raise
    :class:`~engine.errors.UnsafeExpression`; an unknown name or a runtime failure (type error,
    division by zero, missing key, index out of range, a result over the size limits, ``%`` string
    formatting) raises :class:`~engine.errors.ExpressionError`.
    """
    tree = _tree(expression)
    interpreter = _Interpreter(expression, context, external_context)
    try:
        return interpreter.visit(tree.body)
    except EngineError:
        raise
    except _RUNTIME_ERRORS as exc:
        raise ExpressionError(expression, f"{type(exc).__name__}: {exc}") from None
