"""Generate ``client.pyi``, the facade type checkers and editors read.

The operations of :class:`~dripdrop.DripDrop` and :class:`~dripdrop.AsyncDripDrop` are attached
at import time from ``OPERATIONS``, which no type checker can follow. This module writes them out
as a stub, with every other public member of ``client.py``::

    python -m dripdrop._stubgen --write    # rewrite src/dripdrop/client.pyi
    python -m dripdrop._stubgen            # print it
    python -m dripdrop._stubgen --check    # exit 1 when the file on disk is out of date

Signatures come from ``inspect`` (the facade's ``__signature__``), their annotations — strings,
because of ``from __future__ import annotations`` — are resolved against the imports of the module
that wrote them, and ``**options`` passed on to another function (``run_worker`` → the worker's
``work()``) are listed as the keyword arguments that function accepts. The result is put through
``ruff`` (import order and formatting) so it passes the project's lint as generated.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import importlib.util
import inspect
import math
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STUB_PATH = Path(__file__).with_name("client.pyi")
CLIENT_MODULE = "dripdrop.client"
COMMAND = "python -m dripdrop._stubgen --write"

#: Dunder methods that are part of the public surface.
PUBLIC_DUNDERS = ("__init__", "__enter__", "__exit__", "__aenter__", "__aexit__")

#: The ``connection=`` every operation accepts, per face (sync, async): name → (module, name).
CONNECTION_TYPES = {
    False: "Connection | Session | scoped_session[Any] | None",
    True: "AsyncConnection | AsyncSession | None",
}
CONNECTION_NAMES = {
    "Any": ("typing", "Any"),
    "Connection": ("sqlalchemy", "Connection"),
    "Session": ("sqlalchemy.orm", "Session"),
    "scoped_session": ("sqlalchemy.orm", "scoped_session"),
    "AsyncConnection": ("sqlalchemy.ext.asyncio", "AsyncConnection"),
    "AsyncSession": ("sqlalchemy.ext.asyncio", "AsyncSession"),
}


def _forwarded_options() -> dict[str, Callable[..., Any]]:
    """Methods whose ``**options`` go to another function, whose keyword-only parameters the
    stub lists instead."""
    from dripdrop.engine.simulate import simulate
    from dripdrop.worker.runner import work

    return {"run_worker": work, "simulate": simulate}


class StubError(Exception):
    """The stub cannot be generated (an annotation names something that cannot be imported)."""


# --- names and imports -----------------------------------------------------------------------


def _module_names(module: str) -> dict[str, tuple[str, str | None]]:
    """How ``module`` gets the names its annotations may use: local name → (module, name), name
    None for ``import x``. Module-level imports (also under ``if TYPE_CHECKING:`` or ``try:``)
    and the module's own top-level definitions."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise StubError(f"cannot find the source of {module}")
    tree = ast.parse(Path(spec.origin).read_text(), spec.origin)
    package = module if spec.submodule_search_locations else module.rpartition(".")[0]
    names: dict[str, tuple[str, str | None]] = {}

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        names[alias.asname] = (alias.name, None)
                    else:  # ``import a.b`` binds ``a``
                        top = alias.name.split(".")[0]
                        names[top] = (top, None)
            elif isinstance(node, ast.ImportFrom):
                source = importlib.util.resolve_name(
                    "." * node.level + (node.module or ""), package
                )
                for alias in node.names:
                    names[alias.asname or alias.name] = (source, alias.name)
            elif isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                names.setdefault(node.name, (module, node.name))
            elif isinstance(node, ast.AnnAssign | ast.Assign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        names.setdefault(target.id, (module, target.id))
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return names


@dataclass
class Imports:
    """The stub's imports: local name → (module, name); name None for ``import module``."""

    #: Names the stub defines itself (the facade classes).
    defined: frozenset[str]
    names: dict[str, tuple[str, str | None]] = field(default_factory=dict)

    def use(self, local: str, source: tuple[str, str | None]) -> str:
        """The name to write for ``source`` (``local`` unless another import has it)."""
        if source[0] == CLIENT_MODULE:
            if source[1] in self.defined:
                return local
            raise StubError(f"{local!r} is defined in {CLIENT_MODULE} but not in the stub")
        for name in (local, f"_{source[0].replace('.', '_')}_{source[1] or ''}".rstrip("_")):
            if name not in self.defined and self.names.setdefault(name, source) == source:
                return name
        raise StubError(f"cannot import {source} as {local!r}")  # pragma: no cover

    def lines(self) -> list[str]:
        out = []
        for local, (module, name) in sorted(self.names.items(), key=lambda i: (i[1][0], i[0])):
            if name is None:
                out.append(f"import {module}" + (f" as {local}" if local != module else ""))
            else:
                out.append(
                    f"from {module} import {name}" + (f" as {local}" if local != name else "")
                )
        return out


def _annotation(
    text: str, names: dict[str, tuple[str, str | None]], imports: Imports, where: str
) -> str:
    """An annotation of the source, rewritten with the stub's names for what it uses."""
    tree = ast.parse(text, mode="eval")
    for node in ast.walk(tree):
        if not isinstance(node, ast.Name) or (hasattr(builtins, node.id) and node.id not in names):
            continue
        if node.id not in names:
            raise StubError(f"{where}: cannot tell where {node.id!r} of {text!r} comes from")
        node.id = imports.use(node.id, names[node.id])
    return ast.unparse(tree)


# --- signatures ------------------------------------------------------------------------------


class _Source:
    """Text printed as is by ``inspect.Signature.__str__`` (annotations and defaults)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _default(value: Any) -> str:
    """A default as stub source: simple literals as they are, anything else ``...``."""
    if value is None or (type(value) in (bool, int, str) and len(repr(value)) <= 60):
        return repr(value)
    if type(value) is float and math.isfinite(value):
        return repr(value)
    return "()" if value == () else "..."


@dataclass
class _Method:
    name: str
    signature: inspect.Signature
    module: str  # whose imports resolve the annotations
    is_async: bool
    decorator: str | None = None


class StubWriter:
    """Writes the stub of ``dripdrop.client``."""

    def __init__(self) -> None:
        import dripdrop.client as client

        self.client = client
        self.classes = [
            obj
            for name, obj in vars(client).items()
            if inspect.isclass(obj) and obj.__module__ == CLIENT_MODULE and not name.startswith("_")
        ]
        self.imports = Imports(defined=frozenset(c.__name__ for c in self.classes))
        self._names: dict[str, dict[str, tuple[str, str | None]]] = {}
        self.forwarded = _forwarded_options()

    def names_of(self, module: str) -> dict[str, tuple[str, str | None]]:
        if module not in self._names:
            self._names[module] = _module_names(module)
        return self._names[module]

    def render(self) -> str:
        body: list[str] = []
        here = self.names_of(CLIENT_MODULE)
        for name, value in vars(self.client).items():
            if name.startswith("_") or here.get(name) != (CLIENT_MODULE, name):
                continue  # private, or imported into client.py
            if isinstance(value, bool | int | float | str):
                body += ["", f"{name}: {type(value).__name__}"]
            elif inspect.isfunction(value):
                body += ["", self.method(_Method(name, *self._inspect(value)), indent="")]
        for cls in self.classes:
            body += ["", "", f"class {cls.__name__}:"]
            body += [self.method(m, indent="    ") for m in self.members(cls)]
        header = [
            f'"""Typed facade of dripdrop.client, generated by `{COMMAND}`."""',
            "",
        ]
        return "\n".join([*header, *self.imports.lines(), *body]) + "\n"

    def _inspect(self, fn: Callable[..., Any]) -> tuple[inspect.Signature, str, bool]:
        return inspect.signature(fn), fn.__module__, inspect.iscoroutinefunction(fn)

    def members(self, cls: type) -> Iterator[_Method]:
        """Public methods and properties, the base classes' first, overrides in their place."""
        found: dict[str, _Method] = {}
        for klass in reversed(cls.__mro__[:-1]):
            for name, value in vars(klass).items():
                if name.startswith("_") and name not in PUBLIC_DUNDERS:
                    continue
                method = self._member(name, value)
                if method is None:
                    continue
                if name in found and _passes_everything_on(method.signature):
                    continue  # ``def __init__(self, *args, **kw)``: the base's says more
                found[name] = method
        yield from found.values()

    def _member(self, name: str, value: Any) -> _Method | None:
        if isinstance(value, property) and value.fget is not None:
            return _Method(name, *self._inspect(value.fget), decorator="property")
        if isinstance(value, staticmethod | classmethod):
            kind = type(value).__name__
            return _Method(name, *self._inspect(value.__func__), decorator=kind)
        if inspect.isfunction(value):
            method = _Method(name, *self._inspect(value))
            if name in self.forwarded:
                method.signature = self._forward(method, self.forwarded[name])
            return method
        return None

    def _forward(self, method: _Method, target: Callable[..., Any]) -> inspect.Signature:
        """``method``'s signature with its ``**options`` replaced by the keyword-only parameters
        of ``target`` that it does not list itself."""
        params = [p for p in method.signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
        if len(params) == len(method.signature.parameters):
            return method.signature  # its options are listed already
        taken = {p.name for p in params}
        extra = _Method(target.__name__, *self._inspect(target))
        options = [
            self.parameter(p, extra)
            for p in extra.signature.parameters.values()
            if p.kind is p.KEYWORD_ONLY and p.name not in taken
        ]
        return method.signature.replace(parameters=[*params, *options])

    def parameter(self, p: inspect.Parameter, m: _Method) -> inspect.Parameter:
        """``p`` of ``m`` with its annotation and default as stub source."""
        if isinstance(p.annotation, _Source):  # done already (a forwarded option)
            return p
        changes: dict[str, Any] = {}
        if p.annotation is not p.empty:
            changes["annotation"] = self.annotation(p.annotation, m)
        elif p.name == "connection":  # added by client._public_signature
            changes["annotation"] = _Source(
                _annotation(CONNECTION_TYPES[m.is_async], CONNECTION_NAMES, self.imports, m.name)
            )
        if p.default is not p.empty:
            changes["default"] = _Source(_default(p.default))
        return p.replace(**changes)

    def annotation(self, annotation: Any, m: _Method) -> _Source:
        if not isinstance(annotation, str):
            raise StubError(f"{m.module}.{m.name}: annotation {annotation!r} is not a string")
        where = f"{m.module}.{m.name}"
        return _Source(_annotation(annotation, self.names_of(m.module), self.imports, where))

    def method(self, m: _Method, indent: str) -> str:
        params = [self.parameter(p, m) for p in m.signature.parameters.values()]
        returns: Any = m.signature.return_annotation
        if returns is not inspect.Signature.empty:
            returns = self.annotation(returns, m)
        signature = m.signature.replace(parameters=params, return_annotation=returns)
        lines = [f"{indent}@{m.decorator}"] if m.decorator else []
        lines.append(f"{indent}{'async ' if m.is_async else ''}def {m.name}{signature}: ...")
        return "\n".join(lines)


def _passes_everything_on(signature: inspect.Signature) -> bool:
    kinds = [p.kind for p in list(signature.parameters.values())[1:]]
    return kinds == [inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD]


# --- formatting ------------------------------------------------------------------------------


def _ruff() -> str | None:
    scripts = sysconfig.get_path("scripts")
    return shutil.which("ruff", path=scripts) or shutil.which("ruff")


def format_stub(text: str, path: Path = STUB_PATH) -> str:
    """Sort the imports and format ``text`` as ruff would (the project's settings apply)."""
    ruff = _ruff()
    if ruff is None:
        raise StubError("ruff is needed to format the stub: pip install -e '.[dev]'")
    for args in (["check", "--fix-only", "--select", "I", "--quiet"], ["format", "--quiet"]):
        text = subprocess.run(
            [ruff, *args, "--stdin-filename", str(path), "-"],
            input=text,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    return text


def generate() -> str:
    """The stub of ``dripdrop.client``, formatted."""
    return format_stub(StubWriter().render())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dripdrop._stubgen", description=__doc__)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--write", action="store_true", help=f"rewrite {STUB_PATH}")
    mode.add_argument("--check", action="store_true", help="exit 1 when the stub is out of date")
    args = parser.parse_args(argv)
    stub = generate()
    if args.write:
        STUB_PATH.write_text(stub)
    elif args.check:
        if not STUB_PATH.exists() or STUB_PATH.read_text() != stub:
            print(f"{STUB_PATH} is out of date: run `{COMMAND}`", file=sys.stderr)
            return 1
    else:
        sys.stdout.write(stub)
    return 0


if __name__ == "__main__":
    sys.exit(main())
