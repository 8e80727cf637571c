"""The public surface of API.md, pinned: names exported and methods on both faces."""

from __future__ import annotations

import inspect

import dripdrop
from dripdrop import AsyncDripDrop, DripDrop

API_METHODS = [
    "setup",
    "close",
    "create_sequence",
    "create_sequence_version",
    "activate_version",
    "create_step",
    "create_condition",
    "create_channel_adapter",
    "list_channel_adapters",
    "get_default_adapter",
    "create_http_hook",
    "test_http_hook",
    "get_sequence",
    "list_sequences",
    "list_steps",
    "enroll",
    "enroll_many",
    "unenroll",
    "pause_enrollment",
    "resume_enrollment",
    "track_event",
    "track",
    "get_enrollment",
    "list_active_enrollments",
    "list_executions",
    "replay",
    "run_due",
    "run_worker",
    "simulate",
    # counterparts and extras users expect
    "update_sequence",
    "delete_sequence",
    "deactivate_version",
    "update_step",
    "delete_step",
    "deactivate_step",
    "update_condition",
    "delete_condition",
    "update_channel_adapter",
    "delete_channel_adapter",
    "deactivate_channel_adapter",
    "update_http_hook",
    "delete_http_hook",
    "list_http_hooks",
    "list_notifications",
    "mark_read",
    "subscribe",
]


def test_exported_names():
    assert set(dripdrop.__all__) == {
        "AlreadyEnrolled",
        "AsyncDripDrop",
        "ConfigurationError",
        "ConflictError",
        "DripDrop",
        "DripDropError",
        "NotFound",
        "PermanentError",
        "TransientError",
        "ValidationError",
        "__version__",
    }
    for name in dripdrop.__all__:
        assert hasattr(dripdrop, name)


def test_error_tree():
    for err in (
        "ValidationError",
        "NotFound",
        "AlreadyEnrolled",
        "ConfigurationError",
        "ConflictError",
        "TransientError",
        "PermanentError",
    ):
        assert issubclass(getattr(dripdrop, err), dripdrop.DripDropError)


def test_both_faces_have_every_method_with_docstrings():
    for name in API_METHODS:
        sync, asyn = getattr(DripDrop, name, None), getattr(AsyncDripDrop, name, None)
        assert callable(sync), f"DripDrop.{name} missing"
        assert callable(asyn), f"AsyncDripDrop.{name} missing"
        assert sync.__doc__, f"DripDrop.{name} has no docstring"
        if name != "subscribe":
            assert inspect.iscoroutinefunction(asyn), f"AsyncDripDrop.{name} is not async"
            assert not inspect.iscoroutinefunction(sync), f"DripDrop.{name} is async"


def test_run_methods_take_the_same_arguments_on_both_faces():
    for name in ("run_due", "run_worker"):
        sync = inspect.signature(getattr(DripDrop, name)).parameters
        asyn = inspect.signature(getattr(AsyncDripDrop, name)).parameters
        assert [(p.name, p.kind, p.default) for p in sync.values()] == [
            (p.name, p.kind, p.default) for p in asyn.values()
        ], name


def test_repr_and_schema_are_read_only(dd):
    assert dd.schema == dd.runtime.schema
    assert "schema=" in repr(dd)
    try:
        dd.schema = "other"  # type: ignore[misc]
    except AttributeError:
        pass
    else:
        raise AssertionError("schema must be read-only")
