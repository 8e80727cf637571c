"""The keys a step's ``config`` may hold, per channel.

A step config holds the channel's message fields (rendered, then handed to the provider) and a
few engine settings. Anything else is refused when the step is created: a misspelt ``subjet``
stored silently would be ignored at every send. User-defined extra fields go under ``metadata``
(any JSON; rendered like the rest and handed to providers), and a provider registered by an app
widens its channel with :attr:`ProviderSpec.step_fields`.
"""

from __future__ import annotations

#: Engine settings any step may hold (never sent as message fields).
STEP_SETTINGS = frozenset(
    {
        "template_engine",
        "on_failure",
        "max_retries",
        "channel_adapter_rotation",
        "metadata",
        "quiet_hours",
        "frequency_cap",
    }
)

#: What each channel's providers read from the rendered config.
MESSAGE_FIELDS: dict[str, frozenset[str]] = {
    "email": frozenset(
        {
            "subject",
            "body",
            "text",
            "from",
            "reply_to",
            "to",
            "cc",
            "bcc",
            "headers",
            "unsubscribe_url",
            "unsubscribe_mailto",
        }
    ),
    "sms": frozenset({"body", "to", "from"}),
    "webhook": frozenset({"url", "method", "body", "headers", "timeout_ms"}),
    "pubsub": frozenset({"topic", "event", "payload"}),
    "slack": frozenset({"text", "body", "channel", "blocks"}),
    "telegram": frozenset({"text", "body", "chat_id", "parse_mode"}),
    "discord": frozenset({"text", "body", "content", "channel", "embeds", "allowed_mentions"}),
    "msteams": frozenset({"title", "subject", "text", "body", "channel"}),
    "apprise": frozenset({"title", "subject", "body", "text", "url"}),
}
