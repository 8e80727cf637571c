"""The template/condition context of one execution, with hook values fetched on demand."""

from __future__ import annotations

from typing import Any

from dripdrop.engine.defs import StepDef, VersionDef
from dripdrop.errors import PermanentError
from dripdrop.hooks.python import UnknownHook, call_python_hook
from dripdrop.observability.instrument import observe_hook


class HookValues:
    """Hook values for one execution: each hook is called at most once."""

    def __init__(
        self, services: Any, version: VersionDef, enrollment_row: Any, base: dict[str, Any]
    ):
        self.services = services
        self.version = version
        self._row = enrollment_row
        self._record: Any = None
        self.base = base
        self.values: dict[str, Any] = {}

    @property
    def enrollment(self) -> Any:
        """The Enrollment record handed to hooks (built only when a hook needs it)."""
        if self._record is None:
            self._record = self.services.enrollment_record(self._row)
        return self._record

    @property
    def _schema(self) -> str:
        """The schema, as the hook metrics' label."""
        return getattr(getattr(self.services, "rt", None), "schema", "")

    def is_hook(self, name: str) -> bool:
        return name in self.version.http_hooks or (
            self.version.hook_module is not None and name not in self.base
        )

    async def get(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        if name in self.services.overrides:
            value = self.services.overrides[name]
        elif name in self.version.http_hooks:
            hook = self.version.http_hooks[name]
            value = await observe_hook(
                self._schema, "http", name, lambda: self.services.call_http_hook(hook, self.base)
            )
        elif self.version.hook_module:
            module = self.version.hook_module
            value = await observe_hook(
                self._schema,
                "python",
                name,
                lambda: call_python_hook(
                    module,
                    name,
                    self.enrollment,
                    dict(self.base),
                    timeout=self.services.hook_timeout,
                    pool=self.services.hook_pool,
                ),
            )
        else:
            raise PermanentError(f"no hook named {name!r}: the sequence has no hook_module")
        self.values[name] = value
        return value

    async def fill(self, names: set[str]) -> None:
        """Fetch the hook values a template names (only those). A name the hook module
        declines is simply undefined in the template."""
        if not names or not self.version.has_hooks:
            return
        for name in sorted(names):
            if name not in self.base and self.is_hook(name):
                try:
                    await self.get(name)
                except UnknownHook:
                    continue


def id_text(row: Any) -> str:
    """A claimed row's id as text: the text the claim returned, else ``str(id)``."""
    text = getattr(row, "id_text", None)
    return text if text is not None else str(row.id)


def base_context(version: VersionDef, step: StepDef, enrollment: Any) -> dict[str, Any]:
    ctx = dict(enrollment.data or {})
    ctx.update(
        subscriber_id=enrollment.subscriber_id,
        subscriber_type=enrollment.subscriber_type,
        enrollment_id=id_text(enrollment),
        sequence_key=version.sequence_key,
        step_key=step.key,
    )
    ctx.setdefault("data", enrollment.data or {})
    return ctx
