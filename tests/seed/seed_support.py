"""What the seed's examples run against: its channel adapters, created as the seed writes them,
with every real provider pointed at one local HTTP server that records each request."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from werkzeug import Request, Response

# Stand-ins for the seed's System.get_env(...) values.
MAILGUN_API_KEY = "key-mailgun-seed-0001"
SENDGRID_API_KEY = "SG.seed-sendgrid-key-0002"
TWILIO_SID = "AC0123456789seed"
TWILIO_TOKEN = "twilio-seed-token-0003"
TELEGRAM_BOT_TOKEN = "123456:SEED-telegram-token"
SLACK_WEBHOOK_PATH = "/services/T000/B000/SEEDSEEDSEED"
# Wednesday 2 January 2030, 14:00 UTC (09:00 in New York).
START = datetime(2030, 1, 2, 14, 0, tzinfo=UTC)


@dataclass
class Call:
    """One request the local server received."""

    method: str
    path: str
    headers: dict[str, str]
    form: dict[str, str]
    json: Any
    service: str


@dataclass
class Recorder:
    """Answers like Mailgun, SendGrid, Postmark, Twilio, Telegram, Slack, a CRM and two score
    hooks."""

    base: str
    calls: list[Call] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)  # lead/user → score hooks answer

    def url(self, path: str) -> str:
        return self.base + path

    def of(self, service: str) -> list[Call]:
        return [c for c in self.calls if c.service == service]

    def handle(self, request: Request) -> Response:
        body = request.get_data(as_text=True)
        is_json = request.mimetype == "application/json"
        form = {k: v[0] for k, v in parse_qs(body).items()} if not is_json else {}
        data = json.loads(body) if is_json and body else None
        service, answer, status, headers = self._answer(request.path, data)
        self.calls.append(Call(request.method, request.path, dict(request.headers), form, data,
                               service))  # fmt: skip
        text = answer if isinstance(answer, str) else json.dumps(answer)
        mimetype = "text/plain" if isinstance(answer, str) else "application/json"
        return Response(text, status=status, headers=headers, mimetype=mimetype)

    def _answer(self, path: str, data: Any) -> tuple[str, Any, int, dict[str, str]]:
        n = len(self.calls) + 1
        if re.fullmatch(r"/v3/[^/]+/messages", path):
            return "mailgun", {"id": f"<{n}@mailgun>", "message": "Queued. Thank you."}, 200, {}
        if path == "/email":
            return "postmark", {"MessageID": f"pm-{n}", "ErrorCode": 0, "Message": "OK"}, 200, {}
        if path == "/v3/mail/send":
            return "sendgrid", "", 202, {"X-Message-Id": f"sg-{n}"}
        if path.startswith("/2010-04-01/Accounts/"):
            return "twilio", {"sid": f"SM{n:032d}", "status": "queued"}, 201, {}
        if path.startswith("/bot"):
            return "telegram", {"ok": True, "result": {"message_id": n}}, 200, {}
        if path == SLACK_WEBHOOK_PATH:
            return "slack", "ok", 200, {}
        if path.startswith("/api/leads/"):
            return "crm", {"updated": True}, 200, {}
        if path == "/hooks/catch/YOUR_WEBHOOK/":
            return "zapier", {"score": self.scores[data["email"]]}, 200, {}
        if m := re.fullmatch(r"/users/([^/]+)/score", path):
            return "user_score", {"score": self.scores[m[1]], "metadata": {}}, 200, {}
        return "unknown", {"error": "no such endpoint"}, 404, {}


@dataclass
class SeedAdapters:
    mailgun: Any
    sendgrid: Any
    twilio: Any
    slack: Any
    telegram: Any
    inbox: Any
    crm: Any


def create_seed_adapters(dd: Any, server: Recorder) -> SeedAdapters:
    """The seed's "Channel Adapters → Usage", field for field. What is added is marked: each
    real provider's ``config.base_url`` (the local server), a sender for the email adapters (the
    seed sets none anywhere), and adapters for pubsub and webhook, which the seed's channels do
    without but DripDrop routes like every other channel."""
    mailgun = dd.create_channel_adapter(
        name="Mailgun Primary",
        channel="email",
        provider="mailgun",
        credentials={"api_key": MAILGUN_API_KEY, "domain": "mg.myapp.com"},
        is_default=True,
        config={"base_url": server.base, "from": "MyApp <hello@mg.myapp.com>"},  # added
    )
    sendgrid = dd.create_channel_adapter(
        name="SendGrid Transactional",
        channel="email",
        provider="sendgrid",
        credentials={"api_key": SENDGRID_API_KEY},
        is_default=False,
        config={"base_url": server.base, "from": "MyApp <hello@myapp.com>"},  # added
    )
    twilio = dd.create_channel_adapter(
        name="Twilio US",
        channel="sms",
        provider="twilio",
        credentials={"account_sid": TWILIO_SID, "auth_token": TWILIO_TOKEN},
        config={"from": "+15551234567", "base_url": server.base},  # base_url added
        is_default=True,
    )
    slack = dd.create_channel_adapter(
        name="Company Slack",
        channel="slack",
        provider="webhook",
        credentials={"webhook_url": server.url(SLACK_WEBHOOK_PATH)},
        is_default=True,
    )
    telegram = dd.create_channel_adapter(
        name="Telegram Bot",
        channel="telegram",
        provider="bot_api",
        credentials={"bot_token": TELEGRAM_BOT_TOKEN},
        is_default=True,
        config={"base_url": server.base},  # added
    )
    # Added: the seed's PubSub and Webhook channels ignore their adapter.
    inbox = dd.create_channel_adapter(name="In-app", channel="pubsub", provider="postgres")
    crm = dd.create_channel_adapter(name="HTTP", channel="webhook", provider="http")
    return SeedAdapters(mailgun, sendgrid, twilio, slack, telegram, inbox, crm)
