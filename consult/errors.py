"""Errors that reach a client.

Every error the service reports carries a stable ``code`` that the pages show and translate,
and a human ``message``. At the HTTP edge an error becomes
``{"error": {"code": ..., "message": ...}}`` with its ``status``; on the websocket it becomes
``{"type": "error", "code": ..., "message": ...}`` and the connection stays open unless
``closes`` is set.

    ConsultError                      base, 500 "internal"
    ├── InvalidRequest                400 "invalid-request": a body or parameter failed validation
    │   ├── CorruptImage              400 "corrupt-image": an upload that does not decode
    │   ├── InvalidRegion             400 "invalid-region": a region off the still, or unusable
    │   ├── InvalidPolygon            400 "invalid-polygon": a nail outline off the still
    │   ├── InvalidPalette            400 "invalid-palette": a palette import that cannot be read
    │   ├── InvalidEmail              400 "invalid-email": a customer email that is no address
    │   └── ProtocolError             a websocket message that cannot be handled
    │       ├── MalformedMessage      "malformed": not JSON, not an object, bad fields
    │       ├── UnknownMessage        "unknown-type": a type this role may not send
    │       ├── MessageTooLarge       "too-large": over the message size limit
    │       ├── InvalidSdp            "invalid-sdp": an offer aiortc cannot answer
    │       ├── RateLimited           "rate-limited": too many messages, this one was dropped
    │       ├── NoCustomer            "no-customer": a capture with no customer video
    │       └── RecordingUnavailable  "recording-unavailable": a recording cannot start now
    ├── Unauthorized                  401 "unauthorized": no or wrong staff key
    │   └── InvalidToken              401 "invalid-token": unknown, expired or revoked link
    ├── Forbidden                     403 "forbidden": a valid caller, not theirs
    ├── NotFound                      404 "not-found"
    │   ├── UnknownCapture            404 "unknown-capture": not a capture of this consultation
    │   └── UnknownSwatch             404 "unknown-swatch": not a swatch of the palette
    ├── AlreadyUploaded               409 "already-uploaded": this capture has its photo
    ├── CaptureClosed                 409 "capture-closed": the capture's time for a photo is over
    ├── PayloadTooLarge               413 "too-large"
    │   └── TooManyPixels             413 "too-many-pixels": over the pixel limit (from the header)
    ├── UnsupportedMedia              415 "unsupported-media": not a PNG or JPEG
    │   └── UnsupportedHeic           415 "heic-unsupported": an HEIC/HEIF photo (iPhone's format)
    ├── RangeNotSatisfiable           416 "range-not-satisfiable": a Range a still cannot serve
    ├── NoSkinFound                   422 "no-skin": too little skin in the still to judge
    ├── TooManyAttempts               429 "too-many-attempts": too many failed sign-ins
    ├── StorageFailed                 507 "storage-failed": the disk or the database refused it
    │   └── StorageFull               507 "storage-full": the disk is full (a recording stopped)
    └── Disconnect                    reasons a websocket is closed by the server
        ├── Replaced                  "replaced": the same role joined from elsewhere
        ├── Revoked                   "revoked": staff revoked the consultation's links
        ├── MediaFailed               "media-failed": the participant's media connection failed
        └── ServerBusy                "server-busy": no room for another call on this worker now

    Voice, video and file messages (consult/attachments.py):
    InvalidRequest
    └── CorruptMedia              400 "corrupt-media": a recording or clip that cannot be read
    RateLimited
    └── UploadRateLimited         429 "rate-limited": attachments sent faster than chat allows
    PayloadTooLarge
    └── TooLong                   413 "too-long": over the kind's duration limit
    UnsupportedMedia
    └── NoAudio                   415 "no-audio": a voice message with no sound in it

    Staff accounts (issue 17):
    ConsultError
    ├── AccountExists             409 "account-exists": an account has that email already
    ├── LastOwner                 409 "last-owner": the last owner cannot be disabled or demoted
    └── WeakPassword              400 "weak-password": a password shorter than 10 characters

    Customers, consent, deletion (issue 17B):
    InvalidRequest
    └── MergeIntoItself           400 "merge-into-itself": a customer merged into themselves
    Disconnect
    └── ConsentRequired           "consent-required" (close 4412): a customer joining a call
                                  before agreeing, where the salon requires it
    Booking (issue 16, consult/api/bookings.py):
    InvalidRequest
    └── InvalidPhone              400 "invalid-phone": a phone number that is no number
    ConsultError
    ├── SlotTaken                 409 "slot-taken": taken, past, or not a slot on offer
    ├── BookingLocked             409 "booking-locked": past the salon's cut-off for changes
    └── BookingCancelled          409 "booking-cancelled": the booking was cancelled
    RateLimited
    └── BookingRateLimited        429 "rate-limited": too many bookings from one address
    Aftercare check-ins (consult/checkins.py, issue 16B):
    NotFound
    └── UnknownCheckin            404 "unknown-checkin": not a check-in (of this consultation)
    CheckinSent                   409 "checkin-sent": sent to the customer: it cannot move or go
    CheckinNotSent                409 "checkin-not-sent": not sent yet: nothing to answer
    PhotoRefused                  422 "photo-refused": blurry, dark or washed out: take it again
                                  (the body adds the quality gate's ``flags`` and ``hints``)

    Nodes (issue 13A, consult/signaling/ws_relay.py):
    Disconnect
    ├── OwnerUnreachable          "owner-unreachable" (close 1013): the node that holds the call
    │                             cannot be reached now; the page reconnects
    └── CallMoved                 "call-moved" (close 1012): the call moved to another node (this
                                  one drains, or lost it); the page reconnects there

Nothing outside this module invents codes: the web pages' message catalogue keys on them.
"""

from __future__ import annotations

__all__ = [
    "AccountExists",
    "AlreadyUploaded",
    "BookingCancelled",
    "BookingLocked",
    "BookingRateLimited",
    "CallMoved",
    "CaptureClosed",
    "CheckinNotSent",
    "CheckinSent",
    "ConsentRequired",
    "ConsultError",
    "CorruptImage",
    "CorruptMedia",
    "Disconnect",
    "Forbidden",
    "InvalidEmail",
    "InvalidPalette",
    "InvalidPhone",
    "InvalidPolygon",
    "InvalidRegion",
    "InvalidRequest",
    "InvalidSdp",
    "InvalidToken",
    "LastOwner",
    "MalformedMessage",
    "MediaFailed",
    "MergeIntoItself",
    "MessageTooLarge",
    "NoAudio",
    "NoCustomer",
    "NoSkinFound",
    "NotFound",
    "OwnerUnreachable",
    "PayloadTooLarge",
    "PhotoRefused",
    "ProtocolError",
    "RangeNotSatisfiable",
    "RateLimited",
    "RecordingUnavailable",
    "Replaced",
    "Revoked",
    "ServerBusy",
    "SlotTaken",
    "StorageFailed",
    "StorageFull",
    "TooLong",
    "TooManyAttempts",
    "TooManyPixels",
    "Unauthorized",
    "UnknownCapture",
    "UnknownCheckin",
    "UnknownMessage",
    "UnknownSwatch",
    "UnsupportedHeic",
    "UnsupportedMedia",
    "UploadRateLimited",
    "WeakPassword",
]


class ConsultError(Exception):
    status: int = 500
    code: str = "internal"
    #: Whether the websocket is closed after this error is sent, and with which close code.
    closes: bool = False
    close_code: int = 4000

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.__class__.default_message()
        super().__init__(self.message)

    @classmethod
    def default_message(cls) -> str:
        return (cls.__doc__ or cls.code).strip().splitlines()[0]

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "message": self.message}


class InvalidRequest(ConsultError):
    """The request is not valid."""

    status = 400
    code = "invalid-request"


class ProtocolError(InvalidRequest):
    """The message cannot be handled."""


class MalformedMessage(ProtocolError):
    """The message is not a valid protocol message."""

    code = "malformed"


class UnknownMessage(ProtocolError):
    """This message type is not known or not allowed for this role."""

    code = "unknown-type"


class MessageTooLarge(ProtocolError):
    """The message is larger than the limit."""

    code = "too-large"


class InvalidSdp(ProtocolError):
    """The offer is not a usable session description."""

    code = "invalid-sdp"


class RateLimited(ProtocolError):
    """Too many messages: this one was dropped. Slow down."""

    code = "rate-limited"


class NoCustomer(ProtocolError):
    """The customer's video is not in the call: nothing to capture."""

    code = "no-customer"


class CorruptImage(InvalidRequest):
    """The image cannot be decoded."""

    code = "corrupt-image"


class InvalidRegion(InvalidRequest):
    """The region is outside the still or cannot be used."""

    code = "invalid-region"


class InvalidPolygon(InvalidRequest):
    """A nail outline is not a polygon inside the still."""

    code = "invalid-polygon"


class InvalidPalette(InvalidRequest):
    """The palette file cannot be read."""

    code = "invalid-palette"


class Unauthorized(ConsultError):
    """A valid staff key is required."""

    status = 401
    code = "unauthorized"


class InvalidToken(Unauthorized):
    """This link is not valid: it is unknown, expired or revoked."""

    code = "invalid-token"
    closes = True
    close_code = 4401


class Forbidden(ConsultError):
    """This is not available with these credentials."""

    status = 403
    code = "forbidden"


class NotFound(ConsultError):
    """Not found."""

    status = 404
    code = "not-found"


class UnknownCapture(NotFound):
    """This capture does not exist in this consultation."""

    code = "unknown-capture"


class UnknownSwatch(NotFound):
    """There is no such swatch in the palette."""

    code = "unknown-swatch"


class AlreadyUploaded(ConsultError):
    """This capture already has its photo."""

    status = 409
    code = "already-uploaded"


class CaptureClosed(ConsultError):
    """The capture no longer takes a photo: its window has passed."""

    status = 409
    code = "capture-closed"


class PayloadTooLarge(ConsultError):
    """The request body is too large."""

    status = 413
    code = "too-large"


class TooManyPixels(PayloadTooLarge):
    """The image has more pixels than allowed."""

    code = "too-many-pixels"


class UnsupportedMedia(ConsultError):
    """Only PNG and JPEG images are accepted."""

    status = 415
    code = "unsupported-media"


class UnsupportedHeic(UnsupportedMedia):
    """HEIC photos are not accepted: set the camera to "Most Compatible" (JPEG) and retake.

    Refused rather than converted: no lossless conversion keeps it a photo that every
    browser and viewer opens (docs/stills.md). Browsers that take the photo for the page
    (the native-photo path) hand over JPEG already."""

    code = "heic-unsupported"


class RangeNotSatisfiable(ConsultError):
    """The requested range is not part of this file."""

    status = 416
    code = "range-not-satisfiable"


class NoSkinFound(ConsultError):
    """Too little skin shows in this still to judge its undertone: use a photo of the hand."""

    status = 422
    code = "no-skin"


class TooManyAttempts(ConsultError):
    """Too many failed attempts from this address; try again in a minute."""

    status = 429
    code = "too-many-attempts"
    closes = True
    close_code = 4429


class StorageFailed(ConsultError):
    """The still could not be saved: the server's disk refused it.

    Also a database that cannot be reached (consult/recording/database.py): nothing was
    written, and the same request may be made again."""

    status = 507
    code = "storage-failed"


# --- call recording (issue 18) ---------------------------------------------------------------


class RecordingUnavailable(ProtocolError):
    """Recording needs both participants in the call, their media forwarded as packets."""

    code = "recording-unavailable"


class StorageFull(StorageFailed):
    """The disk is full: the recording stopped, what was recorded is kept; the call goes on."""

    code = "storage-full"


class Disconnect(ConsultError):
    """The server closed this connection."""

    status = 409
    code = "disconnected"
    closes = True


class Replaced(Disconnect):
    """This link was opened somewhere else; this window has left the call."""

    code = "replaced"
    close_code = 4409


class Revoked(Disconnect):
    """The salon has replaced this link; ask them for the new one."""

    code = "revoked"
    close_code = 4403


class MediaFailed(Disconnect):
    """The audio/video connection failed; reconnect with a new offer."""

    code = "media-failed"
    close_code = 4410


class ServerBusy(Disconnect):
    """The service is full right now; trying again in a moment."""

    status = 503
    code = "server-busy"
    # Not final: the page reconnects with its back-off and is admitted once there is room.
    close_code = 4503


# Voice, video and file messages


class CorruptMedia(InvalidRequest):
    """The recording or clip cannot be read."""

    code = "corrupt-media"


class UploadRateLimited(RateLimited):
    """Too many messages: wait a moment and send again."""

    status = 429


class TooLong(PayloadTooLarge):
    """The recording is longer than allowed."""

    code = "too-long"


class NoAudio(UnsupportedMedia):
    """The voice message has no sound in it: check the microphone."""

    code = "no-audio"


# issue 15C: customers' email


class InvalidEmail(InvalidRequest):
    """This is not an email address that can receive mail."""

    code = "invalid-email"


# Staff accounts (issue 17)


class AccountExists(ConsultError):
    """An account has that email already."""

    status = 409
    code = "account-exists"


class LastOwner(ConsultError):
    """The salon keeps at least one owner who can sign in."""

    status = 409
    code = "last-owner"


class WeakPassword(InvalidRequest):
    """A password too short to keep anyone out."""

    code = "weak-password"


# issue 17B: customers, consent, deletion


class MergeIntoItself(InvalidRequest):
    """A customer cannot be merged into themselves: choose the other customer."""

    code = "merge-into-itself"


class ConsentRequired(Disconnect):
    """Please agree to what the salon keeps before joining the call."""

    code = "consent-required"
    close_code = 4412


# Booking (issue 16).


class InvalidPhone(InvalidRequest):
    """A customer's phone number that cannot be one."""

    code = "invalid-phone"


class SlotTaken(ConsultError):
    """The slot is taken, past, or not on offer: choose another."""

    status = 409
    code = "slot-taken"


class BookingLocked(ConsultError):
    """Too close to the appointment to cancel or move it here: the salon must."""

    status = 409
    code = "booking-locked"


class BookingCancelled(ConsultError):
    """The booking was cancelled: book again."""

    status = 409
    code = "booking-cancelled"


class BookingRateLimited(RateLimited):
    """Too many bookings from one address: wait a moment."""

    status = 429


# issue 16B: aftercare check-ins


class UnknownCheckin(NotFound):
    """No such check-in."""

    code = "unknown-checkin"


class CheckinSent(ConsultError):
    """This check-in was sent to the customer already: it cannot be moved or removed."""

    status = 409
    code = "checkin-sent"


class CheckinNotSent(ConsultError):
    """This check-in is not open yet: it opens when the salon's request arrives."""

    status = 409
    code = "checkin-not-sent"


class PhotoRefused(ConsultError):
    """The photo is too blurry or too dark to see the nails: please take it again."""

    status = 422
    code = "photo-refused"

    def __init__(self, flags: list[str], hints: list[str], message: str | None = None) -> None:
        super().__init__(message)
        self.flags = flags
        self.hints = hints

    def to_json(self) -> dict[str, str]:
        # The page shows what to fix (the capture's hints: hold-still, more-light, ...).
        return super().to_json() | {"flags": ",".join(self.flags), "hints": ",".join(self.hints)}


# Nodes (issue 13A)


class OwnerUnreachable(Disconnect):
    """The server holding this call cannot be reached right now; trying again in a moment."""

    status = 503
    code = "owner-unreachable"
    # Not final: the page reconnects with its back-off (docs/protocol.md, Several nodes).
    close_code = 1013


class CallMoved(Disconnect):
    """The call is moving to another server; reconnecting."""

    code = "call-moved"
    # Not final: the page reconnects at once and lands on the call's new node.
    close_code = 1012
