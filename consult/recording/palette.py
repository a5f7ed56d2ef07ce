"""The salon's palette of swatches, and what each consultation did with them (docs/colour.md).

``Palette`` keeps the swatches (CRUD, and bulk import/export as JSON or CSV, validated with
msgspec). ``SwatchLog`` records, per consultation, each swatch shown, cleared, chosen or
unchosen, with a copy of the swatch as it was; ``Board`` folds that log into what the call
and the record show: the swatch on screen now, the customer's choices, and every showing.
"""

from __future__ import annotations

import csv
import io
import json
import secrets
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

import msgspec
import sqlalchemy as sa

from ..errors import InvalidPalette, InvalidRequest, PayloadTooLarge, UnknownSwatch
from ..roles import Role
from .database import Database
from .schema import swatch_events, swatches

__all__ = [
    "FAMILIES",
    "FINISHES",
    "Board",
    "Palette",
    "Swatch",
    "SwatchEvent",
    "SwatchFields",
    "SwatchLog",
    "parse_import",
]

Finish = Literal["cream", "shimmer", "glitter", "jelly", "matte", "chrome"]
Family = Literal[
    "nude", "pink", "red", "berry", "coral", "orange", "yellow",
    "green", "blue", "purple", "brown", "grey", "black", "white",
]  # fmt: skip
FINISHES: tuple[str, ...] = get_args(Finish)
FAMILIES: tuple[str, ...] = get_args(Family)
CSV_COLUMNS = ("name", "brand", "code", "hex", "finish", "family")
#: An import's limits: a salon's palette is hundreds of shades, not millions.
MAX_IMPORT_BYTES = 1024 * 1024
MAX_SWATCHES = 2000


class SwatchFields(msgspec.Struct, forbid_unknown_fields=True):
    """A swatch as staff create, update and import it."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=80)]
    hex: Annotated[str, msgspec.Meta(pattern=r"^#[0-9a-fA-F]{6}$")]
    finish: Finish
    family: Family
    brand: Annotated[str, msgspec.Meta(max_length=80)] = ""
    code: Annotated[str, msgspec.Meta(max_length=40)] = ""


class _ImportedSwatch(SwatchFields, forbid_unknown_fields=False):
    """An imported swatch may carry the ``id`` an export wrote; it is ignored."""


class _ImportDocument(msgspec.Struct):
    swatches: list[_ImportedSwatch]


@dataclass(frozen=True)
class Swatch:
    id: str
    name: str
    brand: str
    code: str
    hex: str
    finish: str
    family: str
    position: int
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "brand": self.brand,
            "code": self.code,
            "hex": self.hex,
            "finish": self.finish,
            "family": self.family,
        }


def _normalise(fields: SwatchFields) -> dict[str, Any]:
    return {
        "name": fields.name.strip(),
        "brand": fields.brand.strip(),
        "code": fields.code.strip(),
        "hex": fields.hex.lower(),
        "finish": fields.finish,
        "family": fields.family,
    }


def parse_import(body: bytes, content_type: str) -> list[SwatchFields]:
    """A palette file (JSON ``{"swatches": [...]}`` or a list; or CSV with a header row of
    name, hex, finish, family and optionally brand and code), all of it valid, or
    InvalidPalette saying where it is not."""
    if len(body) > MAX_IMPORT_BYTES:
        raise PayloadTooLarge(f"Palette files are limited to {MAX_IMPORT_BYTES // 1024} KB.")
    if content_type in ("text/csv", "application/csv"):
        items = _parse_csv(body)
    elif content_type == "application/json":
        items = _parse_json(body)
    else:
        raise InvalidPalette("Send the palette as text/csv or application/json.")
    if len(items) > MAX_SWATCHES:
        raise InvalidPalette(f"A palette holds at most {MAX_SWATCHES} swatches.")
    seen: dict[tuple[str, str], int] = {}
    for number, item in enumerate(items, 1):
        key = (item.brand.strip(), item.name.strip())
        if key in seen:
            raise InvalidPalette(f"Swatch {number} repeats swatch {seen[key]} ({key[1]!r}).")
        seen[key] = number
    return items


def _parse_json(body: bytes) -> list[SwatchFields]:
    try:
        document = msgspec.json.decode(body)
        if isinstance(document, list):
            document = {"swatches": document}
        parsed = msgspec.convert(document, _ImportDocument)
    except (msgspec.DecodeError, RecursionError):
        raise InvalidPalette("The palette is not valid JSON.") from None
    except msgspec.ValidationError as exc:
        raise InvalidPalette(f"The palette is not valid: {exc}.") from None
    return list(parsed.swatches)


def _parse_csv(body: bytes) -> list[SwatchFields]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidPalette("The CSV file is not UTF-8 text.") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [c for c in ("name", "hex", "finish", "family") if c not in header]
    if missing:
        raise InvalidPalette(f"The CSV header lacks the column(s): {', '.join(missing)}.")
    reader.fieldnames = header
    items = []
    try:
        for row in reader:
            if None in row:
                raise InvalidPalette(f"Line {reader.line_num} has more fields than the header.")
            values = {k: (v or "").strip() for k, v in row.items() if k in CSV_COLUMNS}
            if not any(values.values()):
                continue  # a blank line
            try:
                items.append(msgspec.convert(values, SwatchFields))
            except msgspec.ValidationError as exc:
                raise InvalidPalette(f"Line {reader.line_num}: {exc}.") from None
    except csv.Error as exc:
        raise InvalidPalette(f"Line {reader.line_num}: {exc}.") from None
    return items


def export_csv(palette: Sequence[Swatch]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for s in palette:
        writer.writerow([getattr(s, column) for column in CSV_COLUMNS])
    return out.getvalue()


def export_json(palette: Sequence[Swatch]) -> str:
    return json.dumps({"swatches": [s.to_json() for s in palette]}, indent=2, ensure_ascii=False)


class Palette:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def list(self) -> list[Swatch]:
        async with self._db.connect() as conn:
            rows = await conn.execute(swatches.select().order_by(swatches.c.position))
            return [Swatch(**row) for row in rows.mappings()]

    async def get(self, swatch_id: str) -> Swatch:
        async with self._db.connect() as conn:
            row = (
                (await conn.execute(swatches.select().where(swatches.c.id == swatch_id)))
                .mappings()
                .first()
            )
        if row is None:
            raise UnknownSwatch()
        return Swatch(**row)

    async def create(self, fields: SwatchFields, now: datetime) -> Swatch:
        values = _normalise(fields) | {"id": secrets.token_hex(8)}
        try:
            async with self._db.begin() as conn:
                position = await conn.scalar(sa.select(sa.func.max(swatches.c.position)))
                await conn.execute(
                    swatches.insert().values(
                        **values,
                        position=(position or 0) + 1,
                        created_at=now,
                        updated_at=now,
                    )
                )
        except sa.exc.IntegrityError:
            raise _duplicate(values) from None
        return await self.get(values["id"])

    async def update(self, swatch_id: str, fields: SwatchFields, now: datetime) -> Swatch:
        values = _normalise(fields)
        try:
            async with self._db.begin() as conn:
                result = await conn.execute(
                    swatches.update()
                    .where(swatches.c.id == swatch_id)
                    .values(**values, updated_at=now)
                )
        except sa.exc.IntegrityError:
            raise _duplicate(values) from None
        if result.rowcount == 0:
            raise UnknownSwatch()
        return await self.get(swatch_id)

    async def delete(self, swatch_id: str) -> None:
        """Remove a swatch from the palette; consultations keep their copy of it."""
        async with self._db.begin() as conn:
            result = await conn.execute(swatches.delete().where(swatches.c.id == swatch_id))
        if result.rowcount == 0:
            raise UnknownSwatch()

    async def import_(
        self, items: Sequence[SwatchFields], *, replace: bool, now: datetime
    ) -> dict[str, int]:
        """Add the items, updating swatches of the same brand and name; with ``replace``,
        remove every swatch the file does not name. All or nothing."""
        counts = {"created": 0, "updated": 0, "removed": 0}
        async with self._db.begin() as conn:
            rows = (
                await conn.execute(
                    sa.select(swatches.c.id, swatches.c.brand, swatches.c.name).order_by(
                        swatches.c.position
                    )
                )
            ).all()
            existing = {(row.brand, row.name): row.id for row in rows}
            kept = set()
            for position, item in enumerate(items):
                values = _normalise(item) | {"position": position, "updated_at": now}
                swatch_id = existing.get((values["brand"], values["name"]))
                if swatch_id is None:
                    swatch_id = secrets.token_hex(8)
                    await conn.execute(
                        swatches.insert().values(**values, id=swatch_id, created_at=now)
                    )
                    counts["created"] += 1
                else:
                    await conn.execute(
                        swatches.update().where(swatches.c.id == swatch_id).values(**values)
                    )
                    counts["updated"] += 1
                kept.add(swatch_id)
            if replace:
                gone = set(existing.values()) - kept
                if gone:
                    await conn.execute(swatches.delete().where(swatches.c.id.in_(gone)))
                counts["removed"] = len(gone)
            else:
                # Swatches the file does not name keep their order, after the file's.
                rest = [row.id for row in rows if row.id not in kept]
                for index, swatch_id in enumerate(rest, start=len(items)):
                    await conn.execute(
                        swatches.update().where(swatches.c.id == swatch_id).values(position=index)
                    )
        return counts


def _duplicate(values: dict[str, Any]) -> InvalidRequest:
    brand = f" of {values['brand']}" if values["brand"] else ""
    return InvalidRequest(f"The palette already has a swatch {values['name']!r}{brand}.")


SwatchAction = Literal["shown", "cleared", "chosen", "unchosen"]


@dataclass(frozen=True)
class SwatchEvent:
    consultation_id: str
    action: SwatchAction
    swatch: dict[str, Any] | None
    by: Role
    at: datetime


class SwatchLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, event: SwatchEvent) -> None:
        async with self._db.begin() as conn:
            await conn.execute(
                swatch_events.insert().values(
                    consultation_id=event.consultation_id,
                    action=event.action,
                    swatch_id=event.swatch["id"] if event.swatch else None,
                    swatch=event.swatch,
                    by=event.by,
                    at=event.at,
                )
            )

    async def events(self, consultation_id: str) -> list[SwatchEvent]:
        async with self._db.connect() as conn:
            rows = await conn.execute(
                sa.select(
                    swatch_events.c.consultation_id,
                    swatch_events.c.action,
                    swatch_events.c.swatch,
                    swatch_events.c.by,
                    swatch_events.c.at,
                )
                .where(swatch_events.c.consultation_id == consultation_id)
                .order_by(swatch_events.c.id)
            )
            return [SwatchEvent(**row) for row in rows.mappings()]

    async def board(self, consultation_id: str) -> Board:
        return Board.fold(await self.events(consultation_id))


@dataclass
class Board:
    """A consultation's swatches: on screen now, chosen, and every showing (oldest first)."""

    current: dict[str, Any] | None = None
    chosen: list[dict[str, Any]] = field(default_factory=list)
    shown: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def fold(cls, events: Sequence[SwatchEvent]) -> Board:
        board = cls()
        for event in events:
            at = event.at.isoformat()
            if event.action in ("shown", "cleared") and board.shown:
                board.shown[-1].setdefault("until", at)
            if event.action == "shown" and event.swatch is not None:
                board.current = event.swatch
                board.shown.append({"swatch": event.swatch, "at": at})
            elif event.action == "cleared":
                board.current = None
            elif event.action == "chosen" and event.swatch is not None:
                board.chosen = [c for c in board.chosen if c["swatch"]["id"] != event.swatch["id"]]
                board.chosen.append({"swatch": event.swatch, "at": at})
            elif event.action == "unchosen" and event.swatch is not None:
                board.chosen = [c for c in board.chosen if c["swatch"]["id"] != event.swatch["id"]]
        return board

    def to_json(self) -> dict[str, Any]:
        return asdict(self)
