"""The table of public operations shared by DripDrop and AsyncDripDrop (name → function)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dripdrop.definitions import (
    adapters,
    api_keys,
    conditions,
    http_hooks,
    readiness,
    sequences,
    steps,
    suppressions,
    template_check,
    transitions,
)
from dripdrop.engine import analytics, bulk, cancel, enrollments, events, notifications
from dripdrop.inbound import record as delivery_events

OPERATIONS: dict[str, Callable[..., Any]] = {
    # sequences and versions
    "create_sequence": sequences.create_sequence,
    "get_sequence": sequences.get_sequence,
    "list_sequences": sequences.list_sequences,
    "update_sequence": sequences.update_sequence,
    "delete_sequence": sequences.delete_sequence,
    "create_sequence_version": sequences.create_sequence_version,
    "activate_version": sequences.activate_version,
    "deactivate_version": sequences.deactivate_version,
    "update_sequence_version": sequences.update_sequence_version,
    "list_versions": sequences.list_versions,
    "get_active_version": sequences.get_active_version,
    "check_version": readiness.check_version,
    "check_templates": template_check.check_templates,
    # steps and conditions
    "create_step": steps.create_step,
    "get_step": steps.get_step,
    "list_steps": steps.list_steps,
    "update_step": steps.update_step,
    "deactivate_step": steps.deactivate_step,
    "delete_step": steps.delete_step,
    "create_condition": conditions.create_condition,
    "update_condition": conditions.update_condition,
    "delete_condition": conditions.delete_condition,
    "list_conditions": conditions.list_conditions,
    # flow control: transitions and split counts
    "create_transition": transitions.create_transition,
    "get_transition": transitions.get_transition,
    "list_transitions": transitions.list_transitions,
    "update_transition": transitions.update_transition,
    "delete_transition": transitions.delete_transition,
    "split_counts": transitions.split_counts,
    # channel adapters
    "create_channel_adapter": adapters.create_channel_adapter,
    "get_channel_adapter": adapters.get_channel_adapter,
    "list_channel_adapters": adapters.list_channel_adapters,
    "get_default_adapter": adapters.get_default_adapter,
    "update_channel_adapter": adapters.update_channel_adapter,
    "deactivate_channel_adapter": adapters.deactivate_channel_adapter,
    "delete_channel_adapter": adapters.delete_channel_adapter,
    # HTTP hooks
    "create_http_hook": http_hooks.create_http_hook,
    "get_http_hook": http_hooks.get_http_hook,
    "list_http_hooks": http_hooks.list_http_hooks,
    "update_http_hook": http_hooks.update_http_hook,
    "delete_http_hook": http_hooks.delete_http_hook,
    # enrollments and events
    "enroll": enrollments.enroll,
    "enroll_many": bulk.enroll_many,
    "unenroll": enrollments.unenroll,
    "pause_enrollment": enrollments.pause_enrollment,
    "resume_enrollment": enrollments.resume_enrollment,
    "get_enrollment": enrollments.get_enrollment,
    "get_enrollment_by_id": enrollments.get_enrollment_by_id,
    "list_active_enrollments": enrollments.list_active_enrollments,
    "list_executions": enrollments.list_executions,
    "get_execution": enrollments.get_execution,
    "replay": enrollments.replay,
    "cancel_execution": cancel.cancel_execution,
    "track_event": events.track_event,
    "track": events.track,
    # REST API keys
    "create_api_key": api_keys.create_api_key,
    "list_api_keys": api_keys.list_api_keys,
    "revoke_api_key": api_keys.revoke_api_key,
    # suppressions (deliverability)
    "suppress": suppressions.suppress,
    "unsuppress": suppressions.unsuppress,
    "is_suppressed": suppressions.is_suppressed,
    "list_suppressions": suppressions.list_suppressions,
    # provider events (delivery, bounces, complaints…) received by the app itself
    "record_delivery_events": delivery_events.record_delivery_events,
    "list_delivery_events": delivery_events.list_delivery_events,
    # in-app inbox
    "list_notifications": notifications.list_notifications,
    "mark_read": notifications.mark_read,
    # analytics, read from the rollups the database keeps (migration 0011)
    "sequence_analytics": analytics.sequence_analytics,
    "adapter_health": analytics.adapter_health,
    "rebuild_analytics": analytics.rebuild_analytics,
}

#: Operations that change definitions: the engine's definition cache is cleared after them.
DEFINITION_CHANGES = frozenset(
    name
    for name in OPERATIONS
    if name.split("_", 1)[0] in ("create", "update", "delete", "activate", "deactivate")
)
