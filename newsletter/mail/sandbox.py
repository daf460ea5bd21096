"""The Jinja sandbox admins' email templates run in, with nothing behind it.

Jinja's ImmutableSandboxedEnvironment refuses attributes that start with ``_``
(``__class__``, ``__globals__``, ``self._TemplateReference__context``) and calls
that change lists or dicts. On top of it: the globals are cut to ``range``,
``dict`` and a bounded ``namespace`` (no ``lipsum``, ``cycler``, ``joiner``);
``str.format`` is refused, since its fields reach attributes; and a template may
not make what would exhaust the machine that renders it: numbers given to calls
and filters, strings and lists made by ``*``, ``+`` and ``%`` and those kept in a
namespace are capped, and so are a render's output and its time. The data it
gets is frozen plain values (template_data.py), so a template that escaped the
sandbox would still find no session, config or app in its variables.
"""

import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from types import FrameType
from typing import Any, TypeAlias

from jinja2 import Template
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError, safe_range
from jinja2.utils import Namespace

# The largest number a call or filter takes (a range's length, a width, a count): enough
# for any email, too small to make a string or list that fills memory.
MAX_NUMBER = 10_000
# The most characters (or items) one value made in a template may hold.
MAX_SIZE = 1_000_000
# The most characters a render may write: far past any real email.
MAX_OUTPUT = 5_000_000
# How long a render may take; the default templates take milliseconds.
RENDER_SECONDS = 2.0
# Jinja compiles every template of ours under this file name.
TEMPLATE_FILE = "<template>"
# A printf width or precision in a "%"-format: "%9999d", "%.*f".
PRINTF_NUMBERS = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
# What sys.settrace calls on each frame and line: the tracer to go on with, or None.
Tracer: TypeAlias = Callable[[FrameType, str, Any], "Tracer | None"]


class TooCostly(SecurityError):
    """A template that would take more memory or time than any email needs."""


class BoundedNamespace(Namespace):
    """``namespace()``, whose values stay within MAX_SIZE: a value doubled in a loop
    would otherwise outgrow memory before the time limit stops it."""

    def __setitem__(self, name: str, value: Any) -> None:
        _check_size(value)
        super().__setitem__(name, value)


class TemplateSandbox(ImmutableSandboxedEnvironment):
    """Jinja's immutable sandbox, with nothing to reach and nothing to exhaust."""

    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        for name in ("lipsum", "cycler", "joiner"):
            del self.globals[name]
        self.globals.update(range=_bounded_range, namespace=BoundedNamespace)
        self.filters = {name: _bounded(filter_) for name, filter_ in self.filters.items()}

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        # A format string's fields read attributes and items ('{0.__class__}'); the
        # |format filter and "%" do what emails need.
        if isinstance(obj, str) and attr in {"format", "format_map"}:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> None:
        # Jinja (3.1.5 on) hands out its own sandboxed str.format before it asks
        # is_safe_attribute, which then never refuses it: a width in its fields
        # ('{0:>999999999}') would make a value past every size limit.
        return None

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _check_arguments(args, kwargs)
        # gettext formats its message with "%": _("%(n)999999999d", n=1).
        for value in args:
            if isinstance(value, str):
                _check_printf(value)
        return super().call(__context, __obj, *args, **kwargs)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        _check_binop(operator, left, right)
        result = super().call_binop(context, operator, left, right)
        _check_size(result)
        return result


def render(template: Template, context: dict[str, Any]) -> str:
    """The template rendered with ``context``, or TooCostly if it writes more than
    MAX_OUTPUT characters or runs longer than RENDER_SECONDS."""
    pieces: list[str] = []
    written = 0
    with _deadline(RENDER_SECONDS):
        for piece in template.generate(context):
            written += len(piece)
            if written > MAX_OUTPUT:
                raise TooCostly(f"It writes more than {MAX_OUTPUT:,} characters.")
            pieces.append(piece)
    return "".join(pieces)


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Stops a render that runs past ``seconds``: loops can nest past any size limit.

    Only the template's own frames are traced, line by line; Python's and Jinja's
    run untraced. The tracer of whoever was tracing (a debugger, coverage) is put
    back after.
    """
    end = time.monotonic() + seconds

    def each_line(_frame: FrameType, _event: str, _arg: Any) -> Tracer:
        if time.monotonic() > end:
            raise TooCostly(f"It takes longer than {seconds:g} seconds to render.")
        return each_line

    def each_call(frame: FrameType, _event: str, _arg: Any) -> Tracer | None:
        return each_line if frame.f_code.co_filename == TEMPLATE_FILE else None

    previous = sys.gettrace()
    sys.settrace(each_call)
    try:
        yield
    finally:
        sys.settrace(previous)


def _bounded(filter_: Callable[..., Any]) -> Callable[..., Any]:
    """The filter, refusing numbers above MAX_NUMBER and values above MAX_SIZE among
    its arguments (``|center(10**9)``, ``|batch(10**9, 'x')``); the value it filters
    is the template's own."""
    # Filters that take the context or environment get it before the value.
    skipped = 2 if hasattr(filter_, "jinja_pass_arg") else 1

    @wraps(filter_)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _check_arguments(args[skipped:], kwargs)
        if filter_.__name__ == "do_format":
            _check_printf(args[0])
        return filter_(*args, **kwargs)

    return bounded


def _bounded_range(*args: int) -> range:
    if len(range(*args)) > MAX_NUMBER:
        raise TooCostly(f"A range may hold {MAX_NUMBER:,} numbers at most.")
    return safe_range(*args)


def _check_arguments(args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    for value in (*args, *kwargs.values()):
        if _is_int(value) and abs(value) > MAX_NUMBER:
            raise TooCostly(f"Numbers given to a call or filter stop at {MAX_NUMBER:,}.")
        _check_size(value)


def _check_binop(operator: str, left: Any, right: Any) -> None:
    """Refuses, before it is computed, a result too large: 'a' * 10**9, 10**10**10."""
    if operator == "**" and _is_int(left) and _is_int(right):
        if right > 64 or abs(left).bit_length() * max(right, 0) > 256:
            raise TooCostly("A power that large is more than an email needs.")
    elif operator == "*":
        count, repeated = (left, right) if _is_int(left) else (right, left)
        if _is_int(count) and isinstance(repeated, str | bytes | list | tuple):
            _check_length(_size(repeated) * max(count, 0))
    elif operator == "+":
        _check_length(_size(left) + _size(right))
    elif operator == "%" and isinstance(left, str):
        _check_printf(left)


def _check_printf(format_string: object) -> None:
    for match in PRINTF_NUMBERS.finditer(str(format_string)):
        for number in match.groups():
            if number == "*" or (number and int(number) > MAX_NUMBER):
                raise TooCostly(f"A width or precision in a format stops at {MAX_NUMBER:,}.")


def _check_size(value: object) -> None:
    _check_length(_size(value))


def _check_length(length: int) -> None:
    if length > MAX_SIZE:
        raise TooCostly(f"A value made in a template may hold {MAX_SIZE:,} characters at most.")


def _size(value: object) -> int:
    if isinstance(value, str | bytes):
        return len(value)
    if isinstance(value, list | tuple | set | frozenset):
        return len(value) + sum(_size(item) for item in value)
    return 1


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
