"""Deleting (issue 17): the owner deletes a still, a message, a consultation or a customer with
everything of theirs, files included (consult/recording/deletion.py). ``204``, and afterwards
``404`` everywhere: links, pages and files are gone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from ..appkeys import CONVERSATIONS, HUB, RECORDINGS, STILLS, STORE
from ..auth import require_owner
from ..errors import InvalidRequest
from ..recording.deletion import Folder, Removed, remove_files

__all__ = ["folders", "routes"]

routes = web.RouteTableDef()


def folders(app: web.Application) -> dict[Folder, Callable[[str], Path]]:
    """Where the journal's files are: the stills folder and the recordings folder."""
    return {"stills": app[STILLS].path, "recordings": app[RECORDINGS].path}


async def _finish(request: web.Request, removed: Removed) -> None:
    """After the rows: the pages opened with the removed consultations' links end, and the
    files on the journal go."""
    for consultation_id in removed.consultations:
        request.app[CONVERSATIONS].revoke(consultation_id)
    deletion = request.app[STORE].deletion
    await remove_files(deletion, folders(request.app))
    await deletion.scrub()


async def _end_calls(request: web.Request, consultation_ids: list[str]) -> None:
    """A live call of a consultation about to go ends first: its recording is settled before
    its rows and files are deleted."""
    for consultation_id in consultation_ids:
        await request.app[HUB].end(consultation_id)


@routes.delete("/api/consultations/{id}")
async def delete_consultation(request: web.Request) -> web.Response:
    caller = await require_owner(request)
    consultation_id = request.match_info["id"]
    store = request.app[STORE]
    await store.get_consultation(consultation_id)  # 404 before anything ends
    await _end_calls(request, [consultation_id])
    removed = await store.deletion.consultations([consultation_id], actor=caller.actor)
    await _finish(request, removed)
    return web.Response(status=204)


@routes.delete("/api/customers/{id}")
async def delete_customer(request: web.Request) -> web.Response:
    caller = await require_owner(request)
    store = request.app[STORE]
    customer = await store.customers.get(request.match_info["id"])
    theirs = await store.list_consultations(customer_id=customer.id)
    await _end_calls(request, [c.id for c in theirs])
    removed = await store.deletion.customer(customer.id, actor=caller.actor)
    await _finish(request, removed)
    return web.Response(status=204)


@routes.delete("/api/stills/{id}")
async def delete_still(request: web.Request) -> web.Response:
    caller = await require_owner(request)
    store = request.app[STORE]
    await store.deletion.still(request.match_info["id"], actor=caller.actor)
    await _finish(request, Removed())
    return web.Response(status=204)


@routes.delete("/api/consultations/{id}/messages/{seq}")
async def delete_message(request: web.Request) -> web.Response:
    caller = await require_owner(request)
    try:
        seq = int(request.match_info["seq"])
    except ValueError:
        raise InvalidRequest("seq: a message's number.") from None
    store = request.app[STORE]
    await store.deletion.message(request.match_info["id"], seq, actor=caller.actor)
    await _finish(request, Removed())
    return web.Response(status=204)
