"""Python hook modules: ``handle_hook(name, enrollment, context)`` on a module or ``module:Class``.

A hook may be a plain function or a coroutine function. A module declines a name it does not
provide by raising ``LookupError`` (``KeyError``) or ``NotImplementedError``: a template variable
it declines renders empty, while a condition naming it fails. Sync hooks run in a thread so a
slow one never blocks the worker's event loop; each call has a timeout.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
from functools import lru_cache
from typing import Any

from dripdrop.errors import PermanentError
from dripdrop.hooks.pool import BlockingPool

DEFAULT_TIMEOUT = 10.0
_DEFAULT_POOL = BlockingPool()


@lru_cache(maxsize=256)
def load_hook_target(path: str) -> Any:
    """Import ``pkg.module`` or ``pkg.module:ClassName`` (a class is instantiated once)."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise PermanentError(f"hook module {module_name!r} cannot be imported: {exc}") from exc
    target: Any = module
    if attr:
        target = getattr(module, attr, None)
        if target is None:
            raise PermanentError(f"hook module {module_name!r} has no {attr!r}")
        if inspect.isclass(target):
            target = target()
    if not callable(getattr(target, "handle_hook", None)):
        raise PermanentError(f"hook module {path!r} has no handle_hook(name, enrollment, context)")
    return target


class UnknownHook(PermanentError):
    """The hook module does not provide this name (it raised LookupError/NotImplementedError)."""


def _unwrap(value: Any) -> Any:
    """Accept the seed's ``{:ok, value}`` spirit: ("ok", v) tuples unwrap to v."""
    if isinstance(value, tuple) and len(value) == 2 and value[0] in ("ok", "error"):
        if value[0] == "error":
            raise PermanentError(f"hook returned an error: {value[1]}")
        return value[1]
    return value


async def call_python_hook(
    path: str,
    name: str,
    enrollment: Any,
    context: dict[str, Any],
    timeout: float = DEFAULT_TIMEOUT,
    pool: BlockingPool | None = None,
) -> Any:
    """Call ``handle_hook(name, enrollment, context)``; failures become a PermanentError that
    names the hook, so the execution fails and the worker carries on."""
    target = load_hook_target(path)
    fn = target.handle_hook
    try:
        if inspect.iscoroutinefunction(fn):
            result = await asyncio.wait_for(fn(name, enrollment, context), timeout)
        else:
            result = await (pool or _DEFAULT_POOL).run(timeout, fn, name, enrollment, context)
    except TimeoutError:
        raise PermanentError(f"hook {name!r} took longer than {timeout:g}s") from None
    except PermanentError:
        raise
    except (LookupError, NotImplementedError) as exc:
        raise UnknownHook(f"hook {name!r} is not provided by {path!r} ({exc!r})") from exc
    except Exception as exc:  # a user's hook may raise anything; it must not stop the worker
        raise PermanentError(f"hook {name!r} raised {type(exc).__name__}: {exc}") from exc
    return _unwrap(result)
