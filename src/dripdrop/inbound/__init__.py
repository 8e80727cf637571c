"""Provider events in: delivery, bounce, complaint, open, click and unsubscribe reports that
email and SMS providers post back (``POST /inbound/{provider}/{adapter_id}``).

One module per provider verifies a request the way the provider documents it and parses its
payload into :class:`~dripdrop.inbound.events.ProviderEvent`\\ s; :mod:`dripdrop.inbound.record`
matches them to executions by provider message id and records them once each, updating the
execution's ``delivery_status`` and writing suppressions for hard bounces, complaints,
unsubscribes and repeated soft bounces — all in one transaction.

This package's ``__init__`` imports nothing: the worker imports :mod:`.message_ids` on its hot
path.
"""
