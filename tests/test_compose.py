"""An email as queued: headers for unsubscribing, a text body, HTML and attachments if given."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage

from consult.mail.compose import Attachment, Email, render

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
UNSUBSCRIBE = "https://salon.example/u/tok-123"


def parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_a_text_email_names_its_unsubscribe_link() -> None:
    message = parse(
        render(
            Email(to="jane@example.com", subject="Your salon answered", text="Hello Jane"),
            sender="salon@example.com",
            unsubscribe_url=UNSUBSCRIBE,
            now=NOW,
        )
    )
    assert message["From"] == "salon@example.com"
    assert message["To"] == "jane@example.com"
    assert message["List-Unsubscribe"] == f"<{UNSUBSCRIBE}>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message["Message-ID"].endswith("@example.com>")
    assert message["Auto-Submitted"] == "auto-generated"
    body = message.get_content()
    assert body.splitlines()[0] == "Hello Jane"
    assert f"Unsubscribe: {UNSUBSCRIBE}" in body


def test_chinese_text_html_and_an_ics_attachment() -> None:
    invitation = b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nEND:VCALENDAR\r\n"
    message = parse(
        render(
            Email(
                to="li@example.cn",
                subject="提醒 您明天的预约",
                text="李女士您好",
                html="<p>李女士您好</p>",
                attachments=(Attachment("appointment.ics", "text/calendar", invitation),),
                footer="退订 {url}",
            ),
            sender="salon@example.com",
            unsubscribe_url=UNSUBSCRIBE,
            now=NOW,
        )
    )
    assert message["Subject"] == "提醒 您明天的预约"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert "李女士您好" in text.get_content()
    assert f"退订 {UNSUBSCRIBE}" in text.get_content()
    assert f'<a href="{UNSUBSCRIBE}">' in html.get_content()
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == "appointment.ics"
    assert attachment.get_content_type() == "text/calendar"
    assert attachment.get_payload(decode=True) == invitation
