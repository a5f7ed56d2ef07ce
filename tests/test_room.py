from __future__ import annotations

import pytest

from consult.signaling.room import (
    PeerJoined,
    PeerLeft,
    Replaced,
    Room,
    RoomClosed,
    StateChanged,
)


def test_first_member_waits() -> None:
    room = Room("c1")
    assert room.state == "waiting"
    assert room.join("customer", "a") == []
    assert room.state == "waiting"
    assert room.member("customer") == "a"
    assert room.role_of("a") == "customer"


def test_second_role_makes_it_live_and_tells_the_first() -> None:
    room = Room("c1")
    room.join("customer", "a")
    assert room.join("stylist", "b") == [PeerJoined("a"), StateChanged("live")]
    assert room.state == "live"


def test_stylist_first_then_customer() -> None:
    room = Room("c1")
    assert room.join("stylist", "b") == []
    assert room.join("customer", "a") == [PeerJoined("b"), StateChanged("live")]


def test_same_role_again_replaces_and_tells_the_partner() -> None:
    room = Room("c1")
    room.join("customer", "a")
    room.join("stylist", "b")
    assert room.join("customer", "a2") == [Replaced("a"), PeerJoined("b")]
    assert room.state == "live"
    assert room.member("customer") == "a2"
    # The replaced member's own leave afterwards changes nothing.
    assert room.leave("a") == []
    assert room.state == "live"


def test_replace_while_alone() -> None:
    room = Room("c1")
    room.join("stylist", "b")
    assert room.join("stylist", "b2") == [Replaced("b")]
    assert room.state == "waiting"


def test_joining_twice_with_the_same_member_is_a_no_op() -> None:
    room = Room("c1")
    room.join("customer", "a")
    assert room.join("customer", "a") == []


def test_leave_tells_the_partner_and_goes_back_to_waiting() -> None:
    room = Room("c1")
    room.join("customer", "a")
    room.join("stylist", "b")
    assert room.leave("b") == [PeerLeft("a"), StateChanged("waiting")]
    assert room.member("stylist") is None
    assert room.leave("a") == []
    assert room.empty


def test_rejoin_after_leaving() -> None:
    room = Room("c1")
    room.join("customer", "a")
    room.join("stylist", "b")
    room.leave("a")
    assert room.join("customer", "a") == [PeerJoined("b"), StateChanged("live")]


def test_unknown_member_leaving_is_ignored() -> None:
    room = Room("c1")
    room.join("customer", "a")
    assert room.leave("zzz") == []
    assert room.member("customer") == "a"


def test_close_ends_the_room_for_good() -> None:
    room = Room("c1")
    room.join("customer", "a")
    assert room.close() == [StateChanged("ended")]
    assert room.state == "ended"
    assert room.empty
    assert room.close() == []
    with pytest.raises(RoomClosed):
        room.join("customer", "a")
