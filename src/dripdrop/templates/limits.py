"""The limits every render runs under: time, output size, loop iterations and calls.

A render (one ``render_config`` or ``render_string`` call, or one ``FlatConfig.render``) runs
under a :class:`Budget`, kept in a context variable so the engines' hooks deep inside python-liquid,
Jinja2 and pystache can reach it. The engines check it where their libraries let them: at loop
starts and loop iterations, filter, function and operator calls, output writes. A check that fails
raises :class:`TemplateLimitError`, which render.py turns into PermanentError (when sending) or
ValidationError (when a step is created). Documented in docs/templates.md, "Limits".
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from time import monotonic
from typing import Any

TIME_LIMIT = 1.0  # seconds per render (a whole config, all its fields)
MAX_OUTPUT = 1_000_000  # characters per rendered field, and per string or value a template builds
MAX_ITERATIONS = 100_000  # loop iterations per render, all loops together (Mustache: section items)
MAX_CALLS = 100_000  # Jinja2 macro, function and method calls per render
# Integers a template computes (``**``, ``*``, Liquid ``times``): about 4300 digits, which is the
# most Python prints anyway (sys.int_info.default_max_str_digits).
MAX_INT_BITS = 14_300
MAX_LOCALS_BYTES = 10_000_000  # Liquid assign/capture values together (python-liquid's own limit)
MAX_MJML_SOURCE = 200_000  # characters of MJML handed to the native compiler (≈70 ms worst case)
MAX_MJML_DEPTH = 100  # element nesting in MJML; mrml overflows its stack at ~1,500 levels


class TemplateLimitError(Exception):
    """A render went past one of the limits above; the message names the limit."""


class SliceExpired(Exception):  # a signal to the caller, not an error
    """The render ran longer than the caller's inline slice, but not past its time limit.

    The caller (the worker, on its event loop) renders again off the loop, passing ``started``
    so the time limit still counts from the first attempt. Rendering is pure, so starting over
    gives the same result.
    """

    def __init__(self, started: float) -> None:
        super().__init__("inline render slice expired")
        self.started = started


class Budget:
    """What one render may still spend. Created per render; not shared between threads."""

    __slots__ = (
        "calls",
        "deadline",
        "iterations",
        "output",
        "started",
        "stop",
        "time_limit",
        "weights",
    )

    def __init__(
        self,
        time_limit: float = TIME_LIMIT,
        slice_after: float | None = None,
        started: float | None = None,
    ) -> None:
        now = monotonic()
        self.started = now if started is None else started  # time.monotonic() of the first try
        self.time_limit = time_limit
        self.deadline = self.started + time_limit
        # ``stop`` is the one instant the hot checks compare with: the slice end or the deadline.
        self.stop = self.deadline if slice_after is None else min(self.deadline, now + slice_after)
        self.iterations = 0
        self.calls = 0
        self.output = 0  # characters of the current field, for engines that count as they go
        # id → (value, weight) for containers already weighed; holding the value keeps its id
        # from being reused by another object during this render.
        self.weights: dict[int, tuple[Any, int]] = {}

    def tick(self) -> None:
        """Raise when the time is up (called on every loop iteration, call and write)."""
        if monotonic() > self.stop:
            self._expired()

    def _expired(self) -> None:
        now = monotonic()
        if now >= self.deadline:
            raise TemplateLimitError(
                f"time limit exceeded: rendering took longer than {self.time_limit:g}s"
            )
        raise SliceExpired(self.started)

    def iterate(self, count: int = 1) -> None:
        """Count ``count`` loop iterations (a loop counts its length when it starts)."""
        self.iterations += count
        if self.iterations > MAX_ITERATIONS:
            raise TemplateLimitError(
                f"loop iteration limit exceeded: more than {MAX_ITERATIONS} iterations"
            )
        self.tick()

    def call(self) -> None:
        """Count one macro, function or method call (Jinja2)."""
        self.calls += 1
        if self.calls > MAX_CALLS:
            raise TemplateLimitError(f"call limit exceeded: more than {MAX_CALLS} calls")
        self.tick()

    def write(self, count: int) -> None:
        """Count ``count`` characters of output of the current field."""
        self.output += count
        if self.output > MAX_OUTPUT:
            raise output_exceeded()

    def weigh(self, value: Any) -> int:
        """About how many characters ``str(value)`` has (at least one per item), memoised.

        Containers a template builds may share items (``[x, x]`` in a loop doubles each time):
        their printed size grows exponentially while their memory does not, and printing,
        comparing or serialising them happens in C where no time check can stop it.
        """
        mutable = LIVE_CONTAINERS.get(type(value))
        if mutable is None:
            return self._weigh(value)
        # A Jinja namespace changes with ``{% set ns.x = … %}``: weighed afresh, never memoised.
        total = 1
        for item in mutable(value).values():
            total += self._weigh(item)
        return total

    def _weigh(self, value: Any) -> int:
        kind = type(value)
        if kind is str or kind is bytes:
            return len(value)
        if kind is int:
            return value.bit_length() // 3 + 1
        if kind is list or kind is tuple or kind is dict or kind is set or kind is frozenset:
            hit = self.weights.get(id(value))
            if hit is not None:
                return hit[1]
        elif kind in LIVE_CONTAINERS:
            # Inside a container its size could change unseen (and double through sharing).
            raise TemplateLimitError("a namespace cannot be put in a list, dict or namespace")
        elif isinstance(value, str | bytes):  # Markup and other subclasses
            return len(value)
        else:
            return 1
        self.tick()  # weighing a large shared structure is itself work: keep it in the time
        total = 1
        if kind is dict:
            for key, item in value.items():
                total += self._weigh(key) + self._weigh(item)
                if total > MAX_OUTPUT:
                    raise value_exceeded()
        else:
            for item in value:
                total += self._weigh(item)
                if total > MAX_OUTPUT:
                    raise value_exceeded()
        self.weights[id(value)] = (value, total)
        return total

    def check(self, value: Any) -> Any:
        """``value`` when it is within MAX_OUTPUT (a string's length, a container's weight)."""
        kind = type(value)
        if kind is str:
            if len(value) > MAX_OUTPUT:
                raise value_exceeded()
        elif kind is list or kind is tuple or kind is dict or kind in LIVE_CONTAINERS:
            if self.weigh(value) > MAX_OUTPUT:
                raise value_exceeded()
        elif isinstance(value, str | bytes) and len(value) > MAX_OUTPUT:
            raise value_exceeded()
        return value


# Types whose items live in a mapping the template can still change (Jinja's ``namespace``):
# type → function returning that mapping. Registered by the engine that has them. They may not
# be nested in containers, so every other weight can be memoised.
LIVE_CONTAINERS: dict[type, Callable[[Any], Mapping[Any, Any]]] = {}

_CURRENT: ContextVar[Budget | None] = ContextVar("dripdrop_template_budget", default=None)


def current() -> Budget | None:
    """The budget of the render in progress in this thread/task, if any."""
    return _CURRENT.get()


def budget_or_refuse() -> Budget:
    """The active budget; raise when there is none.

    Jinja2 folds constant expressions while it *compiles* (``{{ 'a' * 10**9 }}`` ran at step
    creation). Guarded operations refuse to run outside a render, so Jinja keeps them for render
    time, where they are bounded.
    """
    budget = _CURRENT.get()
    if budget is None:
        raise TemplateLimitError("not evaluated outside a render")
    return budget


def bounded(render: Callable[[Mapping[str, Any]], str]) -> Callable[[Mapping[str, Any]], str]:
    """``render`` under the active budget, or under a fresh default one when none is active."""

    def run(context: Mapping[str, Any]) -> str:
        if _CURRENT.get() is not None:
            return render(context)
        token = _CURRENT.set(Budget())
        try:
            return render(context)
        finally:
            _CURRENT.reset(token)

    return run


def activate(budget: Budget) -> Any:
    """Make ``budget`` the active one; pass the returned token to :func:`deactivate`."""
    return _CURRENT.set(budget)


def deactivate(token: Any) -> None:
    _CURRENT.reset(token)


def output_exceeded() -> TemplateLimitError:
    return TemplateLimitError(f"output limit exceeded: more than {MAX_OUTPUT} characters")


def value_exceeded() -> TemplateLimitError:
    return TemplateLimitError(
        f"output limit exceeded: a value of more than {MAX_OUTPUT} characters"
    )


def _too_large(what: str) -> TemplateLimitError:
    return TemplateLimitError(f"output limit exceeded: {what} would exceed {MAX_OUTPUT} characters")


# Size checks made *before* an operation whose result can be far larger than its inputs.


def check_width(width: Any, what: str = "width") -> None:
    """A padding width, count or indent that would make a result longer than MAX_OUTPUT."""
    if isinstance(width, int) and width > MAX_OUTPUT:
        raise _too_large(f"{what} {width}")


def check_repeat(value: Any, times: Any, budget: Budget) -> None:
    """``value * times`` for a string or sequence and an integer."""
    if isinstance(times, int) and times > 0 and budget.weigh(value) * times > MAX_OUTPUT:
        raise _too_large("repetition")


def check_replace(text: Any, old: Any, new: Any, count: Any = -1) -> None:
    """``text.replace(old, new, count)``: each occurrence may grow by ``len(new) - len(old)``."""
    if not isinstance(text, str) or not isinstance(old, str) or not isinstance(new, str):
        return
    grow = len(new) - len(old)
    if grow <= 0:
        return
    hits = text.count(old)
    if isinstance(count, int) and count >= 0:
        hits = min(hits, count)
    if len(text) + hits * grow > MAX_OUTPUT:
        raise _too_large("replace")


def check_join(separator: Any, items: Any) -> None:
    """``separator.join(items)``: the separator repeats once per item."""
    sized = isinstance(separator, str) and hasattr(items, "__len__")
    if sized and len(separator) * len(items) > MAX_OUTPUT:
        raise _too_large("join")


def check_int_op(operator: str, left: Any, right: Any) -> None:
    """``left * right`` or ``left ** right`` on integers whose result would be huge."""
    if type(left) is not int or type(right) is not int:  # bool, float: nothing to fear
        return
    if operator == "*":
        bits = left.bit_length() + right.bit_length()
    elif operator == "**":
        if right <= 0 or abs(left) <= 1:
            return
        bits = (abs(left).bit_length() - 1) * right  # a lower bound: cheap and never overflows
        bits = max(bits, right)
    else:
        return
    if bits > MAX_INT_BITS:
        raise TemplateLimitError(
            f"number limit exceeded: a result of more than {MAX_INT_BITS} bits ({operator})"
        )


def check_printf(fmt: Any, args: Any) -> None:
    """``fmt % args`` with a width or precision larger than MAX_OUTPUT ("%1000000000s").

    A small linear scan of the conversions (a regex with an optional ``%(key)`` group would
    backtrack quadratically on a long format string from the data).
    """
    if not isinstance(fmt, str):
        return
    size = len(fmt)
    star = False
    at = fmt.find("%")
    while 0 <= at < size - 1:
        at += 1
        if fmt[at] == "(":  # %(key)s: keys may hold balanced parentheses
            depth = 0
            while at < size:
                depth += (fmt[at] == "(") - (fmt[at] == ")")
                at += 1
                if depth == 0:
                    break
            else:
                return  # an unclosed key: Python refuses the format anyway
        while at < size and fmt[at] in "#0 +-":
            at += 1
        for part in ("width", "precision"):
            if part == "precision":
                if at >= size or fmt[at] != ".":
                    break
                at += 1
            if at < size and fmt[at] == "*":
                star = True
                at += 1
                continue
            digits = at
            while at < size and fmt[at].isdigit():
                at += 1
            if at - digits > 7 or (at > digits and int(fmt[digits:at]) > MAX_OUTPUT):
                raise _too_large(f"format {part} {fmt[digits:at][:20]}")
        at = fmt.find("%", at + 1)  # past the conversion character (which may be "%")
    if star:  # widths taken from the arguments
        values = args if isinstance(args, tuple) else (args,)
        for value in values:
            check_width(value, "format width")


_FORMATTER = string.Formatter()
_SPEC_NUMBERS = re.compile(r"\d+")


def check_format_spec(fmt: str) -> None:
    """``fmt.format(...)`` with a width or precision larger than MAX_OUTPUT."""
    for _text, _field, spec, _conversion in _FORMATTER.parse(fmt):
        if not spec:
            continue
        if "{" in spec:  # a nested field takes the width from the arguments: unbounded
            raise TemplateLimitError("output limit: nested format fields are not allowed")
        for number in _SPEC_NUMBERS.findall(spec):
            if len(number) > 7 or int(number) > MAX_OUTPUT:
                raise _too_large(f"format width {number[:20]}")


def check_mjml(source: str) -> None:
    """Refuse MJML the native compiler must not see: too large, or nested too deep.

    mrml parses recursively; ~1,500 nested elements overflow its stack and kill the process
    (SIGSEGV), so depth is checked here in Python, on every element (MJML and HTML alike).
    """
    if len(source) > MAX_MJML_SOURCE:
        raise TemplateLimitError(
            f"MJML size limit exceeded: more than {MAX_MJML_SOURCE} characters"
        )
    stack: list[str] = []
    for match in _TAG.finditer(_COMMENT.sub("", source)):
        closing, name, self_closing = match.group(1), match.group(2).lower(), match.group(3)
        if closing:
            if name in stack:  # pop back to the matching open tag (stray closers are ignored)
                del stack[len(stack) - 1 - stack[::-1].index(name) :]
        elif not self_closing and name not in _VOID:
            stack.append(name)
            if len(stack) > MAX_MJML_DEPTH:
                raise TemplateLimitError(
                    f"MJML depth limit exceeded: elements nested more than {MAX_MJML_DEPTH} deep"
                )


_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
# A tag cannot contain "<": each match stops at the next one, so the scan stays linear.
_TAG = re.compile(r"<\s*(/)?\s*([A-Za-z][^\s/<>]*)[^<>]*?(/)?\s*>")
# HTML elements without a closing tag (``<br>``): they do not nest.
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param"}
    | {"source", "track", "wbr"}
)
