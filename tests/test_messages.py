from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consult.errors import MalformedMessage, MessageTooLarge, ProtocolError, UnknownMessage
from consult.signaling.messages import (
    Answer,
    Ask,
    Bye,
    Capture,
    Error,
    Media,
    Offer,
    Peer,
    Stats,
    VideoStats,
    Welcome,
    encode,
    parse_message,
)


def test_offer_and_bye_parse_for_both_roles() -> None:
    for role in ("customer", "stylist"):
        assert parse_message('{"type": "offer", "sdp": "v=0"}', role) == Offer(sdp="v=0")
        assert parse_message(b'{"type": "bye"}', role) == Bye()


def test_unknown_fields_are_ignored_for_forward_compatibility() -> None:
    assert parse_message('{"type": "bye", "reason": "x"}', "customer") == Bye()


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ("", MalformedMessage),
        ("{", MalformedMessage),
        ("null", MalformedMessage),
        ("[]", MalformedMessage),
        ('"offer"', MalformedMessage),
        ("{}", MalformedMessage),
        ('{"type": 1}', MalformedMessage),
        ('{"type": "offer"}', MalformedMessage),
        ('{"type": "offer", "sdp": null}', MalformedMessage),
        ('{"type": "offer", "sdp": ["v=0"]}', MalformedMessage),
        ('{"type": "answer", "sdp": "v=0"}', UnknownMessage),
        ('{"type": "welcome"}', UnknownMessage),
        ('{"type": "media", "role": "customer", "state": "connected"}', UnknownMessage),
        ('{"type": "OFFER", "sdp": "v=0"}', UnknownMessage),
        (b"\xff\xfe", MalformedMessage),
    ],
)
def test_bad_messages_raise_typed_errors(raw: str | bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_message(raw, "customer")


def test_size_limit_counts_bytes_not_characters() -> None:
    text = json.dumps({"type": "offer", "sdp": "é" * 40_000}, ensure_ascii=False)  # 80 kB
    assert len(text) < 64 * 1024
    with pytest.raises(MessageTooLarge):
        parse_message(text, "customer")
    with pytest.raises(MessageTooLarge):
        parse_message(b"{" + b" " * 100, "customer", max_bytes=100)


@pytest.mark.parametrize("depth", [10, 500, 5000, 20000])
def test_deep_nesting_is_an_error_or_ignored_never_a_crash(depth: int) -> None:
    # msgspec raises RecursionError past Python's recursion limit: that must not escape.
    raw = '{"type": "bye", "x": ' + "[" * depth + "]" * depth + "}"
    try:
        assert parse_message(raw, "customer") == Bye()
    except MalformedMessage:
        assert depth > 500


@settings(deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_give_a_message_or_a_protocol_error(raw: bytes) -> None:
    with contextlib.suppress(ProtocolError):
        parse_message(raw, "stylist")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(st.sampled_from(["type", "sdp", "id", "text"]), json_values))
def test_arbitrary_objects_give_a_message_or_a_protocol_error(obj: dict[str, object]) -> None:
    try:
        message = parse_message(json.dumps(obj), "customer")
    except ProtocolError:
        return
    assert isinstance(message, Offer | Bye | Capture)
    if isinstance(message, Offer):
        assert message.sdp == obj["sdp"]


def test_server_messages_encode_with_their_type() -> None:
    assert json.loads(encode(Answer(sdp="v=0"))) == {"type": "answer", "sdp": "v=0"}
    assert json.loads(encode(Peer(state="left"))) == {"type": "peer", "state": "left"}
    assert json.loads(encode(Media(role="customer", state="unreachable"))) == {
        "type": "media",
        "role": "customer",
        "state": "unreachable",
    }
    assert json.loads(encode(Error(code="malformed", message="m"))) == {
        "type": "error",
        "code": "malformed",
        "message": "m",
    }
    welcome = json.loads(
        encode(Welcome(role="customer", consultation={"id": "x"}, peer="absent", ice_servers=[]))
    )
    assert welcome == {
        "type": "welcome",
        "role": "customer",
        "consultation": {"id": "x"},
        "peer": "absent",
        "ice_servers": [],
        "history": [],
        "salon": {},
        "swatch": None,
        "chosen": [],
    }


def test_capture_takes_a_countdown_and_a_retake_cue() -> None:
    assert parse_message('{"type": "capture"}', "stylist") == Capture(countdown=True, cue=[])
    message = parse_message(
        '{"type": "capture", "countdown": false, "cue": ["more-light", "tilt"]}', "stylist"
    )
    assert message == Capture(countdown=False, cue=["more-light", "tilt"])
    with pytest.raises(MalformedMessage):
        parse_message('{"type": "capture", "cue": ["smile"]}', "stylist")
    with pytest.raises(MalformedMessage):
        parse_message('{"type": "capture", "cue": ["tilt", "tilt", "tilt", "tilt", "tilt", '
                      '"tilt", "tilt"]}', "stylist")  # fmt: skip


def test_only_the_stylist_asks_and_only_the_customer_reports_its_upload() -> None:
    assert parse_message('{"type": "ask", "what": "light"}', "stylist") == Ask(what="light")
    with pytest.raises(UnknownMessage):
        parse_message('{"type": "ask", "what": "light"}', "customer")
    with pytest.raises(MalformedMessage):
        parse_message('{"type": "ask", "what": "smile"}', "stylist")
    stats = (
        '{"type": "stats", "rtt_ms": 42.5, "video": {"width": 1280, "height": 720, '
        '"fps": 29.5, "kbps": 2480.0, "loss": 0.01, "limit": "bandwidth"}}'
    )
    assert parse_message(stats, "customer") == Stats(
        video=VideoStats(
            width=1280, height=720, fps=29.5, kbps=2480.0, loss=0.01, limit="bandwidth"
        ),
        rtt_ms=42.5,
    )
    with pytest.raises(UnknownMessage):
        parse_message(stats, "stylist")
    good = json.loads(stats)
    for field, value in (("loss", 1.5), ("width", -1), ("fps", "fast"), ("limit", "moon")):
        broken = good | {"video": good["video"] | {field: value}}
        with pytest.raises(MalformedMessage):
            parse_message(json.dumps(broken), "customer")
