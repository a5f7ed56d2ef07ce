"""The SMTP URL, and one message handed to a real SMTP server: taken, refused for good, or
no reply (down, or silent until the timeout)."""

from __future__ import annotations

import pytest

from consult.mail.policy import Accepted, Refused
from consult.mail.smtp import SmtpServer, deliver

from .process import free_port
from .smtp import SmtpServer as LocalSmtp
from .smtp import silent_server

MESSAGE = b"From: salon@example.com\r\nTo: jane@example.com\r\nSubject: hi\r\n\r\nHello\r\n"


def test_urls() -> None:
    assert SmtpServer.parse("smtp://mail.example.com") == SmtpServer("mail.example.com", 25)
    server = SmtpServer.parse("smtp://salon%40example.com:p%40ss@mail.example.com:587?starttls=1")
    assert server == SmtpServer(
        "mail.example.com", 587, "salon@example.com", "p@ss", "starttls", 20.0
    )
    assert SmtpServer.parse("smtps://u:p@mail.example.com").port == 465
    assert SmtpServer.parse("smtps://u:p@mail.example.com").tls == "implicit"
    assert SmtpServer.parse("smtp://h?starttls=0&timeout=5") == SmtpServer(
        "h", 25, tls="none", timeout=5.0
    )
    assert "p@ss" not in str(server)


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("http://mail.example.com", "smtp://"),
        ("smtp://", "no host"),
        ("smtp://h:port", "port"),
        ("smtps://h?starttls=1", "starttls"),
        ("smtp://h?starttls=yes", "starttls"),
        ("smtp://h?tls=1", "unknown SMTP URL option 'tls'"),
        ("smtp://h?timeout=soon", "timeout"),
        ("smtp://h?timeout=0", "positive"),
    ],
)
def test_bad_urls_say_what_is_wrong(url: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        SmtpServer.parse(url)


async def test_accepted_and_refused(smtp: LocalSmtp) -> None:
    server = SmtpServer.parse(smtp.url)
    result = await deliver(server, "salon@example.com", "jane@example.com", MESSAGE)
    assert result == Accepted()
    assert smtp.mailbox.envelopes == [("salon@example.com", ["jane@example.com"])]
    smtp.mailbox.refuse.add("gone@example.com")
    refused = await deliver(server, "salon@example.com", "gone@example.com", MESSAGE)
    assert isinstance(refused, Refused)
    assert refused.code == 550
    assert "No such user" in refused.reason
    assert len(smtp.mailbox.messages) == 1


async def test_a_server_that_is_down_gives_no_reply() -> None:
    server = SmtpServer.parse(f"smtp://127.0.0.1:{free_port()}?timeout=2")
    result = await deliver(server, "salon@example.com", "jane@example.com", MESSAGE)
    assert isinstance(result, Refused)
    assert result.code is None


async def test_a_server_that_never_answers_times_out() -> None:
    async with silent_server() as port:
        server = SmtpServer.parse(f"smtp://127.0.0.1:{port}?timeout=0.5")
        result = await deliver(server, "salon@example.com", "jane@example.com", MESSAGE)
    assert isinstance(result, Refused)
    assert result.code is None
    assert "time" in result.reason.lower()
