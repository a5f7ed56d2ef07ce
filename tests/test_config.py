from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from consult.cli import build_parser, settings_from
from consult.config import Bitrates, Settings, load_staff_key
from consult.media import ice


def test_defaults_are_embedded() -> None:
    settings = Settings.from_env({})
    assert (settings.host, settings.port, settings.data_dir) == ("127.0.0.1", 8080, Path("data"))
    assert settings.base_url == "http://127.0.0.1:8080"
    assert settings.ice_servers == ()
    assert settings.db_url.startswith("sqlite+aiosqlite:///") and settings.db_url.endswith(
        "data/consult.db"
    )
    assert settings.link_ttl == timedelta(days=7)


def test_environment_then_flags() -> None:
    env = {
        "CONSULT_PORT": "9000",
        "CONSULT_ICE_SERVERS": "stun:a.example,turn:u:p@b.example:3478",
        "CONSULT_MEDIA_ADDRESSES": "127.0.0.1",
        "CONSULT_VIDEO_MIN_KBPS": "1000",
        "CONSULT_LINK_TTL_HOURS": "2",
    }
    settings = Settings.from_env(env, port=9100, public_url="https://salon.example/")
    assert settings.port == 9100
    assert settings.base_url == "https://salon.example"
    assert settings.ice_servers == ("stun:a.example", "turn:u:p@b.example:3478")
    assert settings.media_addresses == ("127.0.0.1",)
    assert settings.bitrates == Bitrates(start=3000, min=1000, max=8000)
    assert settings.link_ttl == timedelta(hours=2)


def test_serve_flags(tmp_path: Path) -> None:
    args = build_parser().parse_args(
        [
            "serve",
            "--port",
            "9001",
            "--data",
            str(tmp_path),
            "--media-address",
            "127.0.0.1",
            "--ice-server",
            "stun:stun.example:3478",
            "--public-url",
            "http://x",
        ]
    )
    settings = settings_from(args)
    assert settings.port == 9001 and settings.data_dir == tmp_path
    assert settings.media_addresses == ("127.0.0.1",)
    assert settings.ice_servers == ("stun:stun.example:3478",)


def test_staff_key_is_generated_once_and_private(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    key = load_staff_key(settings)
    assert len(key) >= 32
    assert load_staff_key(settings) == key
    assert (tmp_path / "staff.key").stat().st_mode & 0o077 == 0
    assert load_staff_key(Settings(data_dir=tmp_path, staff_key="from-env")) == "from-env"


def test_ice_servers_parse_with_credentials() -> None:
    server = ice.parse_ice_server("turn:alice:s3cret@turn.example.com:3478?transport=tcp")
    assert server.url == "turn:turn.example.com:3478?transport=tcp"
    assert server.to_browser() == {
        "urls": ["turn:turn.example.com:3478?transport=tcp"],
        "username": "alice",
        "credential": "s3cret",
    }
    assert ice.parse_ice_server("stun:stun.example.com").to_browser() == {
        "urls": ["stun:stun.example.com"]
    }
    with pytest.raises(ValueError):
        ice.parse_ice_server("http://nope")


def test_event_loop_is_uvloop_unless_asked_for_asyncio() -> None:
    assert Settings.from_env({}).event_loop == "uvloop"
    assert Settings.from_env({"CONSULT_EVENT_LOOP": "asyncio"}).event_loop == "asyncio"
    with pytest.raises(ValueError, match="CONSULT_EVENT_LOOP"):
        Settings.from_env({"CONSULT_EVENT_LOOP": "trio"})


def test_several_nodes_on_one_database() -> None:
    env = {
        "CONSULT_DATABASE_URL": "postgresql+asyncpg://consult@db.example/consult",
        "CONSULT_NODE_ID": "salon-2",
        "CONSULT_STILLS_DIR": "/mnt/stills",
    }
    settings = Settings.from_env(env)
    assert settings.db_url == env["CONSULT_DATABASE_URL"]
    assert (settings.node, settings.stills_dir) == ("salon-2", Path("/mnt/stills"))
    # By default: this machine and port, stable across restarts, and the data folder's stills.
    default = Settings.from_env({}, port=9000)
    assert default.node.endswith(":9000") and default.stills_dir == Path("data/stills")


def test_email_settings_from_the_environment_and_flags() -> None:
    assert Settings.from_env({}).sender_address is None  # no SMTP: no email
    env = {
        "CONSULT_SMTP_URL": "smtp://salon%40example.com:pw@mail.example.com:587?starttls=1",
        "CONSULT_MAIL_LANGUAGE": "zh-CN",
        "CONSULT_MAIL_COALESCE": "5m",
        "CONSULT_MAIL_RETRY": "10s",
    }
    settings = Settings.from_env(env)
    assert settings.sender_address == "salon@example.com"  # the user name, an address
    assert (settings.mail_language, settings.mail_coalesce, settings.mail_retry) == (
        "zh-CN",
        timedelta(minutes=5),
        timedelta(seconds=10),
    )
    args = build_parser().parse_args(
        ["serve", "--smtp-url", "smtps://u:p@mail.example.com", "--mail-from", "a@example.com"]
    )
    flagged = settings_from(args)
    assert (flagged.smtp_url, flagged.sender_address) == (
        "smtps://u:p@mail.example.com",
        "a@example.com",
    )
    with pytest.raises(ValueError, match="--mail-from"):
        Settings.from_env({"CONSULT_SMTP_URL": "smtp://u:p@mail.example.com"})
    with pytest.raises(ValueError, match="smtps://"):
        Settings.from_env({"CONSULT_SMTP_URL": "mail.example.com", "CONSULT_MAIL_FROM": "a@b.c"})
    with pytest.raises(ValueError, match="CONSULT_MAIL_LANGUAGE"):
        Settings.from_env({"CONSULT_MAIL_LANGUAGE": "fr"})


def test_privacy_settings_from_the_environment_and_flags(tmp_path: Path) -> None:
    """Retention is off and consent is not required unless the salon says so (issue 17B)."""
    assert (Settings.from_env({}).retention_months, Settings.from_env({}).require_consent) == (
        None, False,
    )  # fmt: skip
    env = {"CONSULT_RETENTION_MONTHS": "18", "CONSULT_REQUIRE_CONSENT": "1"}
    settings = Settings.from_env(env)
    assert (settings.retention_months, settings.require_consent) == (18, True)
    args = build_parser().parse_args(
        ["serve", "--data", str(tmp_path), "--require-consent", "--retention-months", "6"]
    )
    settings = settings_from(args)
    assert (settings.retention_months, settings.require_consent) == (6, True)
    with pytest.raises(ValueError, match="RETENTION"):
        Settings.from_env({"CONSULT_RETENTION_MONTHS": "0"})
