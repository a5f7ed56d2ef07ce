"""An email as the outbox keeps it: the whole RFC 5322 message, made once when it is queued.

Any email: a text body, an HTML alternative if given, attachments (an .ics invitation, a
PDF). Every one names how to stop them: the unsubscribe link in its footer and in
``List-Unsubscribe``, with ``List-Unsubscribe-Post`` for mail programs' one-click button
(RFC 8058).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid

__all__ = ["Attachment", "Email", "render"]


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Email:
    to: str
    subject: str
    #: The text, ending before the footer; ``{unsubscribe}`` is not needed in it.
    text: str
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    #: The footer line that names the unsubscribe link: ``{url}`` is replaced by it.
    footer: str = "Unsubscribe: {url}"


def render(email: Email, *, sender: str, unsubscribe_url: str, now: datetime) -> bytes:
    message = EmailMessage(policy=SMTP)
    message["From"] = sender
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Date"] = format_datetime(now)
    # Made once: a retry sends the same Message-ID, so a copy delivered twice is recognisable.
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["Auto-Submitted"] = "auto-generated"
    message["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    footer = email.footer.format(url=unsubscribe_url)
    message.set_content(f"{email.text.rstrip()}\n\n-- \n{footer}\n")
    if email.html is not None:
        link = f'<a href="{html.escape(unsubscribe_url)}">{html.escape(footer)}</a>'
        message.add_alternative(f"{email.html}<hr><p>{link}</p>", subtype="html")
    for attachment in email.attachments:
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message.as_bytes()
