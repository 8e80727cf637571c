"""The providers' documented webhook payloads, signed the documented way with keys made here.

Each builder keeps the shape of the provider's own example (field names, nesting, types) and
only puts in the test's message id, recipient and event id. Signatures are computed here from
the providers' documentation, independently of ``dripdrop.inbound``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:ses-events"
TWILIO_SID = "AC" + "0" * 32


@dataclass
class Keys:
    """Every secret and key pair of one test."""

    mailgun: str
    sendgrid_private: ec.EllipticCurvePrivateKey
    postmark_user: str
    postmark_password: str
    postmark_token: str
    resend: str  # whsec_…
    twilio: str
    sns_private: rsa.RSAPrivateKey
    sns_cert_pem: bytes

    @classmethod
    def generate(cls) -> Keys:
        sns_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(sns_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .sign(sns_key, hashes.SHA256())
        )
        return cls(
            mailgun="key-" + secrets.token_hex(16),
            sendgrid_private=ec.generate_private_key(ec.SECP256R1()),
            postmark_user="postmark",
            postmark_password=secrets.token_urlsafe(16),
            postmark_token=secrets.token_urlsafe(16),
            resend="whsec_" + base64.b64encode(secrets.token_bytes(24)).decode(),
            twilio=secrets.token_hex(16),
            sns_private=sns_key,
            sns_cert_pem=cert.public_bytes(serialization.Encoding.PEM),
        )

    def sendgrid_public(self) -> str:
        """The verification key as SendGrid shows it: base64 of the DER public key."""
        der = self.sendgrid_private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()


@dataclass(frozen=True)
class ProviderSpec:
    channel: str
    send_path: str
    config: dict[str, Any]
    recipient: str
    creds: Any

    def credentials(self, keys: Keys) -> dict[str, Any]:
        return self.creds(keys)


PROVIDERS: dict[str, ProviderSpec] = {
    "mailgun": ProviderSpec(
        "email",
        "/v3/mg.example.com/messages",
        {"domain": "mg.example.com", "from": "News <news@mg.example.com>"},
        "Alice@Example.com",
        lambda k: {"api_key": "key-send", "webhook_signing_key": k.mailgun},
    ),
    "sendgrid": ProviderSpec(
        "email",
        "/v3/mail/send",
        {"from": "News <news@example.com>"},
        "bob@example.com",
        lambda k: {"api_key": "SG.send", "webhook_public_key": k.sendgrid_public()},
    ),
    "postmark": ProviderSpec(
        "email",
        "/email",
        {"from": "News <news@example.com>"},
        "john@example.com",
        lambda k: {
            "server_token": "server-token",
            "webhook_username": k.postmark_user,
            "webhook_password": k.postmark_password,
            "webhook_token": k.postmark_token,
        },
    ),
    "resend": ProviderSpec(
        "email",
        "/emails",
        {"from": "Acme <onboarding@resend.dev>"},
        "delivered@resend.dev",
        lambda k: {"api_key": "re_send", "webhook_secret": k.resend},
    ),
    "amazon_ses": ProviderSpec(
        "email",
        "/v2/email/outbound-emails",
        {"region": "us-east-1", "sns_topic_arn": TOPIC_ARN},
        "jane@example.com",
        lambda k: {"access_key_id": "AKIDEXAMPLE", "secret_access_key": "wJalrXUtnFEMI/K7MDENG"},
    ),
    "twilio": ProviderSpec(
        "sms",
        f"/2010-04-01/Accounts/{TWILIO_SID}/Messages.json",
        {"from": "+15017122661"},
        "+14155550100",
        lambda k: {"account_sid": TWILIO_SID, "auth_token": k.twilio},
    ),
}


@dataclass
class Post:
    """A webhook request: raw body and headers."""

    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


# --- Mailgun -------------------------------------------------------------------------------


def mailgun_event(kind: str, message_id: str, recipient: str, event_id: str) -> dict[str, Any]:
    """``event-data`` as in Mailgun's webhook payload examples."""
    data: dict[str, Any] = {
        "id": event_id,
        "timestamp": time.time(),
        "log-level": "info",
        "envelope": {"transport": "smtp", "sender": "news@mg.example.com", "targets": recipient},
        "flags": {"is-routed": False, "is-authenticated": True, "is-test-mode": False},
        "message": {
            "headers": {
                "to": recipient,
                "message-id": message_id,
                "from": "News <news@mg.example.com>",
                "subject": "Hello",
            },
            "attachments": [],
            "size": 111,
        },
        "recipient": recipient,
        "recipient-domain": recipient.split("@")[-1],
        "campaigns": [],
        "tags": ["my_tag_1"],
        "user-variables": {"my_var_1": "Mailgun Variable #1"},
    }
    if kind in ("hard_bounce", "soft_bounce"):
        permanent = kind == "hard_bounce"
        data.update(
            {
                "log-level": "error" if permanent else "warn",
                "event": "failed",
                "severity": "permanent" if permanent else "temporary",
                "reason": "bounce" if permanent else "generic",
                "delivery-status": {
                    "attempt-no": 1,
                    "message": "",
                    "code": 550 if permanent else 452,
                    "description": "Not delivering to previously bounced address"
                    if permanent
                    else "mailbox full",
                    "session-seconds": 0.0,
                },
            }
        )
    else:
        data["event"] = {
            "delivered": "delivered",
            "opened": "opened",
            "complaint": "complained",
            "unsubscribe": "unsubscribed",
        }[kind]
    return data


def mailgun_post(key: str, event_data: dict[str, Any], timestamp: int | None = None) -> Post:
    """Signed as documented: hex HMAC-SHA256 of timestamp + token with the signing key."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    token = secrets.token_hex(25)
    signature = hmac.new(key.encode(), (ts + token).encode(), hashlib.sha256).hexdigest()
    payload = {
        "signature": {"timestamp": ts, "token": token, "signature": signature},
        "event-data": event_data,
    }
    return Post(json.dumps(payload).encode(), {"Content-Type": "application/json"})


# --- SendGrid ------------------------------------------------------------------------------


def sendgrid_event(kind: str, message_id: str, recipient: str, event_id: str) -> dict[str, Any]:
    """One item of the Event Webhook's array, as in SendGrid's example."""
    item: dict[str, Any] = {
        "email": recipient,
        "timestamp": int(time.time()),
        "smtp-id": "<14c5d75ce93.dfd.64b469@ismtpd-555>",
        "category": "cat facts",
        "sg_event_id": event_id,
        "sg_message_id": f"{message_id}.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0",
    }
    if kind == "hard_bounce":
        item.update(event="bounce", reason="500 unknown recipient", status="5.0.0", type="bounce")
    elif kind == "soft_bounce":
        item.update(event="bounce", reason="blocked by reputation", status="5.7.1", type="blocked")
    elif kind == "complaint":
        item["event"] = "spamreport"
    elif kind == "unsubscribe":
        item["event"] = "unsubscribe"
    elif kind == "opened":
        item.update(event="open", useragent="Mozilla/4.0", ip="255.255.255.255")
    else:
        item.update(event=kind, response="250 OK")
    return item


def sendgrid_post(
    private: ec.EllipticCurvePrivateKey, events: list[dict[str, Any]], timestamp: int | None = None
) -> Post:
    """Signed as documented: ECDSA P-256 SHA-256 over timestamp + body, base64 DER signature."""
    body = json.dumps(events).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    signature = private.sign(ts.encode() + body, ec.ECDSA(hashes.SHA256()))
    return Post(
        body,
        {
            "Content-Type": "application/json",
            "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": ts,
        },
    )


# --- Postmark ------------------------------------------------------------------------------


def postmark_record(kind: str, message_id: str, recipient: str, event_id: str) -> dict[str, Any]:
    """A webhook record as in Postmark's bounce / delivery / spam complaint examples."""
    if kind in ("hard_bounce", "soft_bounce", "complaint"):
        record_type = "SpamComplaint" if kind == "complaint" else "Bounce"
        bounce_type = {
            "hard_bounce": ("HardBounce", 1),
            "soft_bounce": ("SoftBounce", 4096),
            "complaint": ("SpamComplaint", 512),
        }[kind]
        return {
            "RecordType": record_type,
            "MessageStream": "outbound",
            "ID": int(event_id),
            "Type": bounce_type[0],
            "TypeCode": bounce_type[1],
            "Name": "Hard bounce",
            "Tag": "Test",
            "MessageID": message_id,
            "Metadata": {"a_key": "a_value"},
            "ServerID": 23,
            "Description": "The server was unable to deliver your message.",
            "Details": "Test bounce details",
            "Email": recipient,
            "From": "sender@example.com",
            "BouncedAt": "2026-11-05T16:33:54.9070259Z",
            "DumpAvailable": True,
            "Inactive": True,
            "CanActivate": True,
            "Subject": "Test subject",
            "Content": "<Full dump of bounce>",
        }
    if kind == "opened":
        return {
            "RecordType": "Open",
            "MessageStream": "outbound",
            "FirstOpen": True,
            "Recipient": recipient,
            "MessageID": message_id,
            "ReceivedAt": f"2026-11-30T08:{int(event_id) % 60:02d}:00Z",
            "Platform": "WebMail",
            "ReadSeconds": 5,
            "Tag": "welcome-email",
            "UserAgent": "Mozilla/5.0",
            "Metadata": {},
        }
    return {
        "RecordType": "Delivery",
        "ServerID": 23,
        "MessageStream": "outbound",
        "MessageID": message_id,
        "Recipient": recipient,
        "Tag": "welcome-email",
        "DeliveredAt": f"2026-11-30T08:{int(event_id) % 60:02d}:52Z",
        "Details": "Test delivery webhook details",
        "Metadata": {"a_key": "a_value"},
    }


def postmark_post(keys: Keys, record: dict[str, Any], *, use: str = "basic") -> Post:
    """Postmark sends the URL's credentials as HTTP Basic, or a custom header."""
    headers = {"Content-Type": "application/json"}
    if use == "basic":
        pair = f"{keys.postmark_user}:{keys.postmark_password}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    elif use == "token":
        headers["X-Webhook-Token"] = keys.postmark_token
    return Post(json.dumps(record).encode(), headers)


# --- Resend (Svix) -------------------------------------------------------------------------


def resend_payload(kind: str, email_id: str, recipient: str) -> dict[str, Any]:
    """As in Resend's webhook event examples."""
    data: dict[str, Any] = {
        "broadcast_id": "8b146471-e88e-4322-86af-016cd36fd216",
        "created_at": "2026-11-30T08:41:11.894719+00:00",
        "email_id": email_id,
        "from": "Acme <onboarding@resend.dev>",
        "to": [recipient],
        "subject": "Sending this example",
    }
    if kind in ("hard_bounce", "soft_bounce"):
        data["bounce"] = {
            "message": "The recipient's email address is on the suppression list.",
            "subType": "Suppressed" if kind == "hard_bounce" else "MailboxFull",
            "type": "Permanent" if kind == "hard_bounce" else "Transient",
        }
        name = "email.bounced"
    else:
        name = {
            "delivered": "email.delivered",
            "complaint": "email.complained",
            "opened": "email.opened",
        }[kind]
    return {"type": name, "created_at": "2026-11-30T08:41:12.126Z", "data": data}


def resend_post(
    secret: str, payload: dict[str, Any], msg_id: str, timestamp: int | None = None
) -> Post:
    """Signed the Svix way: base64 HMAC-SHA256 of ``id.timestamp.body``, key from whsec_."""
    body = json.dumps(payload).encode()
    ts = str(int(time.time()) if timestamp is None else timestamp)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{ts}.".encode() + body
    signature = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return Post(
        body,
        {
            "Content-Type": "application/json",
            "svix-id": msg_id,
            "svix-timestamp": ts,
            # Svix sends every valid signature (several during a secret rotation).
            "svix-signature": f"v1,{base64.b64encode(b'x' * 32).decode()} v1,{signature}",
        },
    )


# --- Twilio --------------------------------------------------------------------------------


def twilio_form(kind: str, sid: str, to: str) -> list[tuple[str, str]]:
    """A status callback's form, as in Twilio's "Track the message status" guide."""
    status, error = {
        "hard_bounce": ("undelivered", "30005"),
        "delivered": ("delivered", None),
        "failed": ("failed", "30008"),
        "unsubscribe": ("undelivered", "21610"),
    }[kind]
    form = [
        ("SmsSid", sid),
        ("SmsStatus", status),
        ("MessageStatus", status),
        ("To", to),
        ("MessageSid", sid),
        ("AccountSid", TWILIO_SID),
        ("From", "+15017122661"),
        ("ApiVersion", "2010-04-01"),
    ]
    if error:
        form.append(("ErrorCode", error))
    return form


def twilio_post(token: str, url: str, form: list[tuple[str, str]]) -> Post:
    """Signed as documented: base64 HMAC-SHA1 of the URL + sorted name/value pairs."""
    data = url + "".join(k + v for k, v in sorted(form))
    signature = base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest())
    return Post(
        urlencode(form).encode(),
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": signature.decode(),
        },
    )


# --- Amazon SES through SNS ----------------------------------------------------------------


def ses_notification(kind: str, message_id: str, recipient: str) -> dict[str, Any]:
    """An SES notification as in the SES developer guide's examples."""
    mail = {
        "timestamp": "2026-11-30T08:59:38.237Z",
        "source": "john@example.com",
        "sourceArn": "arn:aws:ses:us-east-1:123456789012:identity/example.com",
        "sourceIp": "127.0.3.0",
        "sendingAccountId": "123456789012",
        "messageId": message_id,
        "destination": [recipient],
    }
    if kind in ("hard_bounce", "soft_bounce"):
        return {
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": "Permanent" if kind == "hard_bounce" else "Transient",
                "bounceSubType": "General",
                "bouncedRecipients": [
                    {
                        "emailAddress": recipient,
                        "action": "failed",
                        "status": "5.1.1",
                        "diagnosticCode": "smtp; 550 5.1.1 user unknown",
                    }
                ],
                "timestamp": "2026-11-30T08:59:38.237Z",
                "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
                "remoteMtaIp": "127.0.2.0",
                "reportingMTA": "dsn; a8-70.smtp-out.amazonses.com",
            },
            "mail": mail,
        }
    if kind == "complaint":
        return {
            "notificationType": "Complaint",
            "complaint": {
                "userAgent": "AnyCompany Feedback Loop (V0.01)",
                "complainedRecipients": [{"emailAddress": recipient}],
                "complaintFeedbackType": "abuse",
                "arrivalDate": "2026-11-30T08:59:38.237Z",
                "timestamp": "2026-11-30T08:59:38.237Z",
                "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000",
            },
            "mail": mail,
        }
    return {
        "notificationType": "Delivery",
        "mail": mail,
        "delivery": {
            "timestamp": "2026-11-30T08:59:38.237Z",
            "processingTimeMillis": 546,
            "recipients": [recipient],
            "smtpResponse": "250 ok:  Message 64111812 accepted",
            "reportingMTA": "a8-70.smtp-out.amazonses.com",
            "remoteMtaIp": "127.0.2.0",
        },
    }


def _sns_string_to_sign(message: dict[str, Any]) -> bytes:
    """From the SNS guide "Verifying the signatures of Amazon SNS messages"."""
    if message["Type"] == "Notification":
        names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{n}\n{message[n]}\n" for n in names if n in message).encode()


def sns_post(
    keys: Keys,
    message: dict[str, Any],
    cert_url: str,
    *,
    version: str = "1",
    private: rsa.RSAPrivateKey | None = None,
) -> Post:
    """An SNS HTTP(S) delivery, signed SHA1withRSA (v1) or SHA256withRSA (v2)."""
    message = {**message, "SignatureVersion": version, "SigningCertURL": cert_url}
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = (private or keys.sns_private).sign(
        _sns_string_to_sign(message), padding.PKCS1v15(), algorithm
    )
    message["Signature"] = base64.b64encode(signature).decode()
    return Post(
        json.dumps(message).encode(),
        {"Content-Type": "text/plain; charset=UTF-8", "x-amz-sns-message-type": message["Type"]},
    )


def sns_notification(notification: dict[str, Any], topic_arn: str = TOPIC_ARN) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": str(uuid.uuid4()),
        "TopicArn": topic_arn,
        "Message": json.dumps(notification),
        "Timestamp": "2026-11-30T09:00:06.655Z",
        "UnsubscribeURL": "https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe",
    }


# --- one call for every provider -----------------------------------------------------------


def build(
    provider: str,
    kind: str,
    keys: Keys,
    *,
    message_id: str,
    recipient: str,
    url: str,
    cert_url: str = "",
    event_id: str | None = None,
) -> Post:
    """The provider's signed webhook for one event of ``kind`` (hard_bounce, soft_bounce,
    complaint, delivered, opened) about ``message_id``."""
    event_id = event_id or str(secrets.randbelow(10**12))
    if provider == "mailgun":
        return mailgun_post(keys.mailgun, mailgun_event(kind, message_id, recipient, event_id))
    if provider == "sendgrid":
        sg_id = message_id.split(".")[0]
        return sendgrid_post(
            keys.sendgrid_private, [sendgrid_event(kind, sg_id, recipient, event_id)]
        )
    if provider == "postmark":
        return postmark_post(keys, postmark_record(kind, message_id, recipient, event_id))
    if provider == "resend":
        return resend_post(
            keys.resend, resend_payload(kind, message_id, recipient), f"msg_{event_id}"
        )
    if provider == "twilio":
        twilio_kind = "hard_bounce" if kind == "hard_bounce" else kind
        return twilio_post(keys.twilio, url, twilio_form(twilio_kind, message_id, recipient))
    if provider == "amazon_ses":
        notification = sns_notification(ses_notification(kind, message_id, recipient))
        notification["MessageId"] = f"{event_id}-sns"
        return sns_post(keys, notification, cert_url)
    raise AssertionError(provider)
