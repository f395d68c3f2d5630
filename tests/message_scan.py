"""Find the messages the library shows a researcher or writes to the hub log, in its source.

:func:`scan_messages` is a pure function of a module's source text: it parses it (never
imports it) and returns every message an administrator may meet, with the constant text
of each (the literal parts of an f-string, a ``%``-format or a ``+`` of strings) and
``{placeholder}`` where a value is filled in at run time. It finds:

- ``log``: a call of ``.warning``/``.warn``/``.error``/``.exception``/``.critical`` on a
  logger (a name or attribute ending in ``log`` or ``logger``, or ``logging``), and
  ``warnings.warn``;
- ``page``: what a researcher reads on an error page: the sentence of ``HTTPError``,
  ``http_error``, ``bad_request``, ``forbidden`` and ``SpawnRequestError``, any
  ``user_message=`` argument and a class's ``user_message = ...``, and the notices shown
  while a server starts (``notices.append(...)``, ``notice = ...``);
- ``error``: the detail of the library's own errors (a call of a name ending in ``Error``
  that is not a Python built-in), which the hub log shows;
- ``startup``: a ``ValueError``/``TypeError``/``TraitError`` raised by a ``@validate``
  method, by any function of a start-up module, or whose text names an option
  (``Class.option``): these stop the hub at start-up. Any other one is an ``error``
  (it ends up in the hub log inside another message), unless the module is declared
  internal: there such errors are consistency checks of values the library built itself.

:func:`missing_from` says which messages a page does not list: a message is listed when
its constant parts appear on the page in order, whatever stands for the placeholders.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Message", "is_listed", "missing_from", "normalise", "scan_messages"]

LOG_METHODS = frozenset({"warning", "warn", "error", "exception", "critical", "fatal"})
# The call, and which positional arguments are sentences (a slice of the arguments).
PAGE_CALLS = {
    "http_error": slice(1, 2),
    "bad_request": slice(0, 2),
    "forbidden": slice(0, 2),
    "SpawnRequestError": slice(1, 3),
}
STARTUP_ERRORS = frozenset({"ValueError", "TypeError", "TraitError"})
NOT_OURS = frozenset(
    {
        "AssertionError",
        "AttributeError",
        "CommandError",  # command-line output, not the hub's
        "KeyError",
        "NotImplementedError",
        "OSError",
        "RuntimeError",
        *STARTUP_ERRORS,
    }
)
# An option of a configurable class of the library (``ManilaStorage.auth_url``).
_OPTION = re.compile(
    r"(?:\{(?:class|name)\}|\b(?:IRIS\w*|ManilaStorage|SessionAccounting|IdentityRegistry"
    r"|\w+Authenticator))\.[a-z_]+"
)
_PERCENT = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(?:\d+|\*)?(?:\.\d+)?[sdrfixgeaEGXc%]")
_BRACES = re.compile(r"\{[^{}]*\}")


@dataclass(frozen=True)
class Message:
    """One message: where it is, what kind, and its text with ``{placeholders}``."""

    path: str
    line: int
    kind: str
    text: str
    parts: tuple[str, ...]
    """The constant parts, in order (whitespace collapsed); empty if all is run time."""


def normalise(text: str) -> str:
    """Collapse runs of white space to one space and strip the ends."""
    return " ".join(text.split())


def _placeholder(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        if node.attr == "__name__":
            return "class"
        return _placeholder(node.value) + "." + node.attr
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        if node.func.attr == "join" and node.args:
            return _placeholder(node.args[0])
        return _placeholder(node.func.value)
    if isinstance(node, ast.Call) and node.args:
        return _placeholder(node.args[0])
    if isinstance(node, ast.Subscript):
        return _placeholder(node.value)
    return "value"


Piece = tuple[bool, str]  # (is constant text, text or placeholder name)
# What a name stands for: a string expression, or the pieces of an argument bound to it.
Scope = dict[str, "ast.expr | list[Piece]"]


def _split_format(
    text: str, pattern: re.Pattern[str], fills: Sequence[list[Piece]]
) -> list[Piece]:
    """``text`` with each ``%s`` (or ``{}``) replaced by the pieces of its argument."""
    pieces: list[Piece] = []
    start, index = 0, 0
    for found in pattern.finditer(text):
        pieces.append((True, text[start : found.start()]))
        if found.group() == "%%":
            pieces.append((True, "%"))
        else:
            inner = found.group().strip("{}").split("!")[0].split(":")[0]
            fill = fills[index] if index < len(fills) else [(False, inner or "value")]
            pieces.extend(fill)
            index += 1
        start = found.end()
    pieces.append((True, text[start:]))
    return pieces


def _pieces(node: ast.expr, constants: Scope) -> list[Piece]:
    """The text of an expression building a string, as constant pieces and placeholders."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [(True, node.value)]
    if isinstance(node, ast.JoinedStr):
        out: list[Piece] = []
        for value in node.values:
            if isinstance(value, ast.FormattedValue):
                out.extend(_pieces(value.value, constants))
            else:
                out.extend(_pieces(value, constants))
        return out
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _pieces(node.left, constants) + _pieces(node.right, constants)
    if (
        isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Mod)
        and isinstance(node.left, ast.Constant)
        and isinstance(node.left.value, str)
    ):
        args = node.right.elts if isinstance(node.right, ast.Tuple) else [node.right]
        return _split_format(node.left.value, _PERCENT, [_pieces(a, constants) for a in args])
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "format"
        and isinstance(node.func.value, ast.Constant)
        and isinstance(node.func.value.value, str)
    ):
        fills = [_pieces(a, constants) for a in node.args]
        return _split_format(node.func.value.value, _BRACES, fills)
    if isinstance(node, ast.Name) and node.id in constants:
        bound = constants[node.id]
        return list(bound) if isinstance(bound, list) else _pieces(bound, constants)
    return [(False, _placeholder(node))]


def _log_pieces(args: Sequence[ast.expr], constants: Scope) -> list[Piece]:
    """A logging call: a ``%``-format filled from the further arguments."""
    first = args[0]
    if isinstance(first, ast.Constant) and isinstance(first.value, str) and len(args) > 1:
        return _split_format(first.value, _PERCENT, [_pieces(a, constants) for a in args[1:]])
    return _pieces(first, constants)


def _render(pieces: Iterable[Piece]) -> tuple[str, tuple[str, ...]]:
    text, parts, current = "", [], ""
    for constant, value in pieces:
        if constant:
            text += value
            current += value
        else:
            text += "{" + value + "}"
            parts.append(current)
            current = ""
    parts.append(current)
    return normalise(text), tuple(p for p in (normalise(p) for p in parts) if p)


def _string_assignments(body: Iterable[ast.AST]) -> Scope:
    """Names assigned exactly once in ``body``, to a string expression."""
    found: Scope = {}
    assigned: dict[str, int] = {}
    for statement in body:
        for node in ast.walk(statement):
            targets = node.targets if isinstance(node, ast.Assign) else []
            if isinstance(node, (ast.AnnAssign, ast.AugAssign)):
                targets = [node.target]
            for target in targets:
                if isinstance(target, ast.Name):
                    assigned[target.id] = assigned.get(target.id, 0) + 1
            value = getattr(node, "value", None)
            if (
                isinstance(node, ast.Assign)
                and len(targets) == 1
                and isinstance(targets[0], ast.Name)
                and isinstance(value, (ast.JoinedStr, ast.BinOp, ast.Constant))
                and (not isinstance(value, ast.Constant) or isinstance(value.value, str))
            ):
                found[targets[0].id] = value
    return {name: value for name, value in found.items() if assigned[name] == 1}


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _receiver(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        value = func.value
        return value.id if isinstance(value, ast.Name) else _name(value)
    return ""


class _Scanner(ast.NodeVisitor):
    def __init__(self, path: str, startup_module: bool, internal_module: bool) -> None:
        self.path = path
        self.startup_module = startup_module
        self.internal_module = internal_module
        self.constants: Scope = {}
        self.factories: dict[str, Factory] = {}
        self.in_validate = 0
        self.classes: list[str] = []
        self.found: list[Message] = []

    def add(self, node: ast.AST, kind: str, pieces: list[Piece]) -> None:
        text, parts = _render(pieces)
        if kind == "startup" and not (
            self.in_validate or self.startup_module or _OPTION.search(text)
        ):
            if self.internal_module:
                return
            kind = "error"
        self.found.append(Message(self.path, getattr(node, "lineno", 0), kind, text, parts))

    def visit_Module(self, node: ast.Module) -> None:
        self.constants = _string_assignments(
            s for s in node.body if not isinstance(s, (ast.FunctionDef, ast.ClassDef))
        )
        self.factories = _factories(node)
        self.generic_visit(node)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.classes.append(node.name)
        for statement in node.body:
            target: ast.expr | None = None
            if isinstance(statement, ast.AnnAssign):
                target = statement.target
            if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                target = statement.targets[0]
            value = getattr(statement, "value", None)
            if isinstance(target, ast.Name) and target.id == "user_message" and value:
                self.add(statement, "page", _pieces(value, self.constants))
        self.generic_visit(node)
        self.classes.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        validate = any(
            isinstance(d, ast.Call) and _name(d.func) == "validate" for d in node.decorator_list
        )
        outer = self.constants
        self.constants = {**outer, **_string_assignments(node.body)}
        self.in_validate += validate
        self.generic_visit(node)
        self.in_validate -= validate
        self.constants = outer

    visit_AsyncFunctionDef = visit_FunctionDef  # noqa: N815 (ast.NodeVisitor protocol)

    def visit_Assign(self, node: ast.Assign) -> None:
        """``notice = "..."``: a sentence shown while the server starts."""
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        if "notice" in names and isinstance(node.value, (ast.JoinedStr, ast.Constant, ast.BinOp)):
            pieces = _pieces(node.value, self.constants)
            if any(constant and text.strip() for constant, text in pieces):
                self.add(node, "page", pieces)
        self.generic_visit(node)

    def _is_error_detail(self, name: str) -> bool:
        """A library error built here, or ``super().__init__`` inside one's class."""
        if name == "__init__":
            return bool(self.classes) and self.classes[-1].endswith("Error")
        return name.endswith("Error") and name not in NOT_OURS

    def _message(self, node: ast.AST, call: ast.Call, scope: Scope) -> bool:
        """Add the messages of ``call`` if it is a message call; whether it is one."""
        name, args = _name(call.func), call.args
        receiver = _receiver(call.func).lower()
        if name in LOG_METHODS and args and receiver.endswith(("log", "logger", "logging")):
            self.add(node, "log", _log_pieces(args, scope))
        elif name == "warn" and receiver == "warnings" and args:
            self.add(node, "log", _pieces(args[0], scope))
        elif name == "HTTPError" and len(args) > 1:
            self.add(node, "page", _log_pieces(args[1:], scope))
        elif name in PAGE_CALLS:
            for arg in args[PAGE_CALLS[name]]:
                self.add(node, "page", _pieces(arg, scope))
        elif name in STARTUP_ERRORS and args:
            self.add(node, "startup", _pieces(args[0], scope))
        elif args and self._is_error_detail(name):
            self.add(node, "error", _pieces(args[0], scope))
        elif name == "append" and receiver.endswith("notices") and args:
            self.add(node, "page", _pieces(args[0], scope))
        else:
            return False
        return True

    def visit_Call(self, node: ast.Call) -> None:
        name = _name(node.func)
        if not self._message(node, node, self.constants) and name in self.factories:
            # A function building an error from its arguments: fill them in.
            factory = self.factories[name]
            bound: Scope = {
                p: _pieces(a, self.constants)
                for p, a in zip(factory.params, node.args, strict=False)
            }
            for keyword in node.keywords:
                if keyword.arg in factory.params:
                    bound[keyword.arg] = _pieces(keyword.value, self.constants)
            for template in factory.calls:
                self._message(node, template, {**self.constants, **factory.local, **bound})
        for keyword in node.keywords:
            if keyword.arg == "user_message":
                self.add(keyword.value, "page", _pieces(keyword.value, self.constants))
        self.generic_visit(node)


def _is_message_call(call: ast.Call) -> bool:
    name = _name(call.func)
    return (
        name in PAGE_CALLS
        or name in STARTUP_ERRORS
        or name == "HTTPError"
        or (name.endswith("Error") and name not in NOT_OURS)
    )


@dataclass(frozen=True)
class Factory:
    """A function that returns or raises errors built from its arguments."""

    params: list[str]
    calls: list[ast.Call]
    """The error calls, whose messages are filled in from a call's arguments."""
    local: Scope
    """The function's own string assignments."""


def _factories(tree: ast.Module) -> dict[str, Factory]:
    """Functions that return or raise an error built from their arguments, by name.

    For helpers like ``def _invalid(detail): return SpawnRequestError(500, ..., detail)``
    or a check that raises ``ValueError(f"{what} must be ...")``.
    """
    found: dict[str, Factory] = {}
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        arguments = function.args
        params = [a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)]
        params = params[1:] if params[:1] in (["self"], ["cls"]) else params
        calls = []
        for node in ast.walk(function):
            call = node.value if isinstance(node, ast.Return) else None
            call = node.exc if isinstance(node, ast.Raise) else call
            if not isinstance(call, ast.Call) or not _is_message_call(call):
                continue
            if {n.id for n in ast.walk(call) if isinstance(n, ast.Name)} & set(params):
                calls.append(call)
        if calls:
            found[function.name] = Factory(params, calls, _string_assignments(function.body))
    return found


def scan_messages(
    source: str,
    path: str = "<source>",
    *,
    startup_module: bool = False,
    internal_module: bool = False,
) -> list[Message]:
    """Every message in ``source`` (see the module docstring), in source order.

    ``startup_module``: every ``ValueError`` of this module stops the hub at start-up.
    ``internal_module``: its ``ValueError`` naming no option are not messages.
    """
    scanner = _Scanner(path, startup_module, internal_module)
    scanner.visit(ast.parse(source))
    return sorted(scanner.found, key=lambda m: m.line)


def _pattern(message: Message) -> re.Pattern[str]:
    """The page text that lists ``message``: its constant parts in order, anything between."""
    return re.compile(r".{0,120}?".join(re.escape(p) for p in message.parts), re.DOTALL)


def is_listed(message: Message, page: str) -> bool:
    """Whether ``page`` (normalised) shows ``message``'s constant parts in order."""
    return not message.parts or _pattern(message).search(page) is not None


def missing_from(page_text: str, messages: Iterable[Message]) -> list[Message]:
    """The messages ``page_text`` does not list."""
    page = normalise(page_text)
    return [m for m in messages if not is_listed(m, page)]
