"""Jinja2 in an immutable sandbox (the counterpart of Elixir's EEx in the original design).

The sandbox refuses unsafe attributes (``__class__``, ``__mro__``…: they render as undefined, or
raise SecurityError when called) and methods that mutate lists, dicts and sets. Undefined names
render as empty strings, chained lookups on them too (``ChainableUndefined``), and ``None`` renders
as an empty string like in Liquid. Autoescape is off for every field, the HTML email body included:
use ``|e`` where a value must be escaped.

Bounded (see limits.py) through the sandbox's own hooks: ``call`` (every function, macro and
method call), ``call_binop`` for ``* ** % +`` (intercepted, so Jinja no longer folds them while it
compiles), ``wrap_str_format``; every filter is wrapped; ``range`` and ``lipsum`` are bounded; the
parsed template is rewritten so ``{% for %}`` iterables, list/tuple/dict literals and ``~`` go
through the budget; block captures join through a bounded ``concat``.
"""

from __future__ import annotations

import builtins
import functools
import types
from collections import ChainMap
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2 import ChainableUndefined, Template, meta, nodes, pass_context
from jinja2 import TemplateSyntaxError as JinjaSyntaxError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import Namespace, _PassArg, generate_lorem_ipsum
from jinja2.visitor import NodeTransformer

from dripdrop.templates import limits
from dripdrop.templates.base import CompiledTemplate, TemplateSyntaxError
from dripdrop.templates.limits import MAX_ITERATIONS, MAX_OUTPUT, Budget, TemplateLimitError


class _Namespace(Namespace):
    """``namespace()``, whose attributes may not hold another namespace: ``ns1.a = ns2``,
    ``ns1.b = ns2``, then ``ns2.a = ns3``… would print exponentially, and nothing built it."""

    def __setitem__(self, name: str, value: Any) -> None:
        budget = limits.current()
        if budget is not None:
            budget.check([value])  # a namespace inside a container is refused by weigh()
        super().__setitem__(name, value)


# A namespace's attributes change with ``{% set ns.x = … %}``: weighed afresh every time.
for _kind in (Namespace, _Namespace):
    limits.LIVE_CONTAINERS[_kind] = lambda ns: ns._Namespace__attrs


def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    kind = type(value)
    if kind is not str and kind in _CONTAINERS:
        # Printing happens in C: a container must be weighed before it is turned into text.
        budget = limits.current()  # None while Jinja folds constants at compile time
        if budget is not None:
            budget.check(value)
    return value


_CONTAINERS = frozenset({list, tuple, dict, Namespace, _Namespace})


class JinjaEngine:
    """Compiles Jinja2 source with a bounded ImmutableSandboxedEnvironment."""

    name = "jinja2"

    def __init__(self) -> None:
        self._env = _Sandbox(undefined=ChainableUndefined, autoescape=False, finalize=_finalize)

    def compile(self, source: str) -> CompiledTemplate:
        """Compile ``source``; raise TemplateSyntaxError (with its line) when it is invalid."""
        try:
            ast = self._env.parse(source)
            names = meta.find_undeclared_variables(ast) - set(self._env.globals)
            simple = all(isinstance(node, _SIMPLE) for node in ast.find_all(nodes.Node))
            ast = _Bounding().visit(ast)
            ast.set_environment(self._env)
            template = self._env.from_string(ast)
        except JinjaSyntaxError as exc:
            raise TemplateSyntaxError(exc.message or str(exc), exc.lineno) from exc
        return CompiledTemplate(
            engine=self.name,
            source=source,
            render=_simple_renderer(template) if simple else _renderer(template),
            names=frozenset(names),
            simple=simple,
        )


# Text and ``{{ a.b }}`` / ``{{ a['b'] }}`` outputs only: no loops, filters, calls or operators.
_SIMPLE = (
    nodes.Output,
    nodes.TemplateData,
    nodes.Name,
    nodes.Getattr,
    nodes.Getitem,
    nodes.Const,
)


def _new_context(template: Template, context: Mapping[str, Any]) -> Any:
    # Template.render() copies its arguments into a dict (computing every lazy value);
    # a shared context over a ChainMap reads only what the template asks for.
    return template.new_context(ChainMap(context, template.globals), shared=True)  # type: ignore[arg-type]


def _simple_renderer(template: Template) -> Any:
    def render(context: Mapping[str, Any]) -> str:
        # Nothing here can loop or build: no budget (the hot path); render.py checks the length.
        return "".join(template.root_render_func(_new_context(template, context)))  # type: ignore[attr-defined]

    return render


def _renderer(template: Template) -> Any:
    @limits.bounded
    def render(context: Mapping[str, Any]) -> str:
        ctx = _new_context(template, context)
        room = MAX_OUTPUT
        parts = []
        for chunk in template.root_render_func(ctx):  # type: ignore[attr-defined]
            room -= len(chunk)
            if room < 0:  # stop as soon as the output is too long, not once it is all built
                raise limits.output_exceeded()
            parts.append(chunk)
        return "".join(parts)

    return render


# ---- the compiled code: loops, literals and ``~`` go through the budget -------------------

# Internal filters the parsed template is rewritten to use (Jinja allows no custom node types).
# Their names cannot be written in a template; pass_context keeps Jinja from calling them while
# it compiles (constant folding).
_LOOP = "dripdrop loop"
_VALUE = "dripdrop value"


class _Bounding(NodeTransformer):
    """Wraps loop iterables, container literals and ``~`` of a parsed template in _LOOP/_VALUE."""

    def visit_For(self, node: nodes.For) -> nodes.Node:
        node = self.generic_visit(node)
        node.iter = _filter(node.iter, _LOOP)
        return node

    def _value(self, node: nodes.Node) -> nodes.Node:
        node = self.generic_visit(node)
        if getattr(node, "ctx", "load") != "load":  # ``{% for a, b in … %}`` targets
            return node
        return _filter(node, _VALUE)

    # ``[x, x]`` in a loop doubles what printing it costs; ``a ~ b`` joins in C.
    visit_List = visit_Tuple = visit_Dict = visit_Concat = _value


def _filter(node: nodes.Expr, name: str) -> nodes.Filter:
    return nodes.Filter(node, name, [], [], None, None, lineno=node.lineno)


@pass_context
def _loop_filter(context: Any, iterable: Any) -> Iterator[Any]:
    budget = limits.budget_or_refuse()
    try:
        size = len(iterable)
    except TypeError:  # a generator (``|map``…): counted item by item
        return _counted(iterable, budget)
    budget.iterate(size)  # all at once: a loop that could never finish fails right away
    return _timed(iterable, budget)


@pass_context
def _value_filter(context: Any, value: Any) -> Any:
    return limits.budget_or_refuse().check(value)


def _concat(parts: Iterable[str]) -> str:
    # Captured blocks, macro bodies, {% filter %} blocks: a loop may have appended 100,000
    # references to one long string; measure before joining.
    items = parts if isinstance(parts, list) else list(parts)
    if sum(map(len, items)) > MAX_OUTPUT:
        raise limits.output_exceeded()
    return "".join(items)


# ---- the environment ---------------------------------------------------------------------


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**", "%", "+"})
    concat = staticmethod(_concat)  # type: ignore[assignment]

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.globals["range"] = _range
        self.globals["lipsum"] = _lipsum
        self.globals["namespace"] = _Namespace
        for name, func in list(self.filters.items()):
            self.filters[name] = _guarded(func, _FILTER_CHECKS.get(name))
        self.filters[_LOOP] = _loop_filter
        self.filters[_VALUE] = _value_filter

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        budget = limits.budget_or_refuse()
        budget.tick()
        if operator in ("*", "**"):
            limits.check_int_op(operator, left, right)
            if operator == "*":
                if isinstance(right, int) and isinstance(left, str | list | tuple):
                    limits.check_repeat(left, right, budget)
                elif isinstance(left, int) and isinstance(right, str | list | tuple):
                    limits.check_repeat(right, left, budget)
        elif operator == "%" and isinstance(left, str):
            limits.check_printf(left, right)
        return budget.check(self.binop_table[operator](left, right))

    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        budget = limits.budget_or_refuse()
        budget.call()
        args = _check_method(__obj, args, kwargs, budget)
        return budget.check(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        fmt = value.__self__

        @functools.wraps(wrapper)
        def checked(*args: Any, **kwargs: Any) -> str:
            limits.check_format_spec(fmt)  # "{:>1000000000}".format(x)
            return wrapper(*args, **kwargs)

        return checked


def _timed(items: Iterable[Any], budget: Budget) -> Iterator[Any]:
    tick = budget.tick
    for item in items:
        tick()
        yield item


def _counted(items: Iterable[Any], budget: Budget) -> Iterator[Any]:
    iterate = budget.iterate
    for item in items:
        iterate()
        yield item


def _range(*args: int) -> range:
    items = range(*args)
    try:
        size = len(items)
    except OverflowError:
        size = MAX_ITERATIONS + 1
    if size > MAX_ITERATIONS:
        raise TemplateLimitError(
            f"range limit exceeded: range{args} has more than {MAX_ITERATIONS} items"
        )
    return items


def _lipsum(n: int = 5, html: bool = True, min: int = 20, max: int = 100) -> Any:
    # About 7 characters a word: refuse what would exceed the output limit before generating it.
    if n * builtins.max(min, max, 1) * 7 > MAX_OUTPUT:
        raise TemplateLimitError(
            f"output limit exceeded: lipsum(n={n}, max={max}) would exceed {MAX_OUTPUT} characters"
        )
    return generate_lorem_ipsum(n=n, html=html, min=min, max=max)


# ---- calls and filters -------------------------------------------------------------------

_BUILTIN_VALUES = (str, bytes, int, float, list, tuple, dict)
_METHODS = (types.BuiltinMethodType, types.MethodType)  # str's, and Markup's wrappers
_SIZED = frozenset({"center", "ljust", "rjust", "zfill", "to_bytes"})  # take a result size


def _check_method(
    obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any], budget: Budget
) -> tuple[Any, ...]:
    """Check a call of a method of a str, list, dict, int… before it runs (it runs in C)."""
    owner = getattr(obj, "__self__", None)
    if not isinstance(obj, _METHODS) or not isinstance(owner, _BUILTIN_VALUES):
        return args
    name = obj.__name__
    if name in _SIZED:
        for value in (*args, *kwargs.values()):
            limits.check_width(value, "width")
    elif name == "replace" and len(args) >= 2:
        limits.check_replace(owner, args[0], args[1], args[2] if len(args) > 2 else -1)
    elif name == "join" and args:
        items = args[0] if hasattr(args[0], "__len__") else list(_counted(args[0], budget))
        limits.check_join(owner, items)
        args = (items, *args[1:])
    elif name == "expandtabs" and isinstance(owner, str):
        size = args[0] if args else kwargs.get("tabsize", 8)
        if isinstance(size, int) and len(owner) + owner.count("\t") * size > MAX_OUTPUT:
            raise limits.value_exceeded()
    elif name == "translate" and args and isinstance(args[0], dict):
        longest = builtins.max((budget.weigh(v) for v in args[0].values()), default=1)
        if len(owner) * longest > MAX_OUTPUT:
            raise limits.value_exceeded()
    return args


def _guarded(func: Callable[..., Any], check: Callable[..., Any] | None) -> Callable[..., Any]:
    """A filter that refuses to run outside a render (no folding while compiling), checks its
    arguments first when it can build something far larger than them, and bounds its result."""
    skip = 0 if _PassArg.from_obj(func) is None else 1  # the context/environment Jinja passes

    @functools.wraps(func)  # keeps jinja_pass_arg, so Jinja passes the same first argument
    def guarded(*args: Any, **kwargs: Any) -> Any:
        budget = limits.budget_or_refuse()
        budget.tick()
        if check is not None:
            replaced = check(budget, *args[skip:], **kwargs)
            if replaced is not None:  # the check materialised a generator argument
                args = (*args[:skip], *replaced)
        return budget.check(func(*args, **kwargs))

    return guarded


def _check_center(budget: Budget, value: Any, width: Any = 80, *_: Any, **__: Any) -> None:
    limits.check_width(width)


def _check_indent(budget: Budget, text: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    step = width if isinstance(width, int) else len(str(width))
    text = str(text)
    if len(text) + (text.count("\n") + 1) * step > MAX_OUTPUT:
        raise limits.value_exceeded()


def _check_wordwrap(
    budget: Budget,
    text: Any,
    width: Any = 79,
    break_long_words: Any = True,
    wrapstring: Any = None,
    *_: Any,
    **__: Any,
) -> None:
    if wrapstring is not None and isinstance(width, int):
        text = str(text)
        lines = len(text) // builtins.max(width, 1) + text.count("\n") + 1
        if len(text) + lines * len(str(wrapstring)) > MAX_OUTPUT:
            raise limits.value_exceeded()


def _check_format(budget: Budget, value: Any, *args: Any, **kwargs: Any) -> None:
    limits.check_printf(str(value), kwargs or args)


def _check_join(budget: Budget, value: Any, d: Any = "", *rest: Any, **__: Any) -> Any:
    items = value if hasattr(value, "__len__") else list(_counted(value, budget))
    limits.check_join(str(d), items)
    return None if items is value else (items, d, *rest)


def _check_replace(
    budget: Budget, text: Any, old: Any, new: Any, count: Any = None, *_: Any, **__: Any
) -> None:
    limits.check_replace(str(text), str(old), str(new), -1 if count is None else count)


def _check_fill(budget: Budget, value: Any, size: Any, fill_with: Any = None, **__: Any) -> None:
    # batch/slice: ``fill_with`` is repeated up to ``size`` times.
    limits.check_width(size, "batch size")
    filled = fill_with is not None and isinstance(size, int)
    if filled and budget.weigh(fill_with) * size > MAX_OUTPUT:
        raise limits.value_exceeded()


def _check_tojson(budget: Budget, value: Any, indent: Any = None, **__: Any) -> None:
    if indent is not None:
        step = indent if isinstance(indent, int) else len(str(indent))
        if step * budget.weigh(value) > MAX_OUTPUT:  # at most one indented line per item
            raise limits.value_exceeded()


def _check_pprint(budget: Budget, value: Any, *_: Any, **__: Any) -> None:
    budget.weigh(value)  # pprint is pure Python and slow: refuse what could not be printed


def _check_sum(budget: Budget, value: Any, attribute: Any = None, start: Any = 0) -> None:
    # sum() of lists copies the total at every step (quadratic, in C).
    if not isinstance(start, int | float):
        raise TemplateLimitError("sum: start must be a number")


_FILTER_CHECKS: dict[str, Callable[..., Any]] = {
    "center": _check_center,
    "indent": _check_indent,
    "wordwrap": _check_wordwrap,
    "format": _check_format,
    "join": _check_join,
    "replace": _check_replace,
    "batch": _check_fill,
    "slice": _check_fill,
    "tojson": _check_tojson,
    "pprint": _check_pprint,
    "sum": _check_sum,
}
