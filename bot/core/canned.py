"""Canned responses: ready answers staff insert in a reply, from the config file or saved from
Slack (``/ticket canned add``), and the placeholders they may carry.

The config's ``canned_responses`` come first and cannot be changed from Slack (the file is the
operator's); the ones saved in the database follow. A name is unique across both, compared
without regard to case ("Restart" and "restart" would be the same answer to whoever picks
one). ``render`` fills ``{customer_name}``, ``{ticket_number}``, ``{assignee}``, ``{subject}``
and ``{group}`` for one ticket and leaves anything else in braces as it was typed.

Must not talk to Slack or render Block Kit: adapters show what this returns.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import UniqueConstraint, delete, func, select
from sqlalchemy.exc import IntegrityError

from bot.core.desk import Desk
from bot.core.errors import BadRequest
from bot.core.staff import Actor, staff_row
from bot.core.views import TicketView
from bot.store import models as m
from bot.store import upsert

log = logging.getLogger(__name__)

MAX_NAME = 75  # the column's width, and Slack's limit for an option's text
MAX_TEXT = 3000  # a modal's plain_text_input holds at most this many characters
CONFIG, DATABASE = "config", "database"
# The unique key on the name: meeting it means someone saved that name a moment before.
NAME_KEY = next(c for c in m.CannedResponse.__table__.constraints
                if isinstance(c, UniqueConstraint) and [col.name for col in c.columns] == ["name"])
# Control characters have no place in a name picked from a list (a NUL is refused by PostgreSQL).
CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")  # "Re\tstart" → match
# "{customer_name}" → customer_name; "{ nope }", "{0}" and "{a.b}" are not placeholders.
PLACEHOLDER_RE = re.compile(r"\{([a-z_]+)\}")


class CannedNotFound(BadRequest):
    """No canned response has that name."""


@dataclass(frozen=True)
class Canned:
    """One canned response as adapters list it. ``key`` identifies it in a pick list:
    ``"3"`` for the config's fourth, ``"db:12"`` for the database row 12."""

    key: str
    name: str
    text: str
    source: str  # config | database
    added_by: str | None = None  # Slack user id of who saved it (database ones)
    created_at: datetime | None = None


def _config(desk: Desk) -> list[Canned]:
    return [Canned(key=str(i), name=c.name, text=c.text, source=CONFIG)
            for i, c in enumerate(desk.settings.canned_responses)]


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise BadRequest("a canned response needs a name")
    if len(name) > MAX_NAME:
        raise BadRequest(f"a canned response's name is at most {MAX_NAME} characters (this one has {len(name)})")
    if CONTROL_RE.search(name):
        raise BadRequest("a canned response's name is one line of text")
    return name


def _check_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise BadRequest("a canned response needs its text")
    if len(text) > MAX_TEXT:
        raise BadRequest(f"a canned response is at most {MAX_TEXT:,} characters (this one has {len(text):,})")
    if "\x00" in text:
        raise BadRequest("a canned response cannot contain a NUL character")
    return text


async def list_responses(desk: Desk) -> list[Canned]:
    """The config's canned responses in the file's order, then the saved ones by name."""
    async with desk.db.reading() as s:
        rows = (await s.execute(
            select(m.CannedResponse, m.Staff.slack_user_id)
            .outerjoin(m.Staff, m.Staff.id == m.CannedResponse.staff_id)
            .order_by(func.lower(m.CannedResponse.name), m.CannedResponse.id))).all()
    return _config(desk) + [Canned(key=f"db:{row.id}", name=row.name, text=row.text, source=DATABASE,
                                   added_by=who, created_at=row.created_at) for row, who in rows]


async def find(desk: Desk, key: str) -> Canned:
    """The canned response a pick list's ``key`` names (see ``Canned.key``)."""
    if key.isdigit():
        config = _config(desk)
        if int(key) < len(config):
            return config[int(key)]
    elif key.startswith("db:") and key[3:].isdigit():
        async with desk.db.reading() as s:
            row = await s.get(m.CannedResponse, int(key[3:]))
        if row is not None:
            return Canned(key=key, name=row.name, text=row.text, source=DATABASE, created_at=row.created_at)
    raise CannedNotFound("that canned response no longer exists (someone removed it); pick another")


async def add(desk: Desk, *, actor: Actor, name: str, text: str) -> Canned:
    """Save a canned response; its name must be new (the config's included)."""
    name, text = _check_name(name), _check_text(text)
    if any(c.name.lower() == name.lower() for c in _config(desk)):
        raise BadRequest(f"{name!r} is the name of a canned response in the config file: choose another name")
    now = desk.clock.now()
    try:
        async with desk.db.transaction() as s:
            existing = await s.scalar(select(m.CannedResponse.name).where(
                func.lower(m.CannedResponse.name) == name.lower()))
            if existing is not None:
                raise BadRequest(f"there is already a canned response called {existing!r}: "
                                 f"remove it first to replace it")
            staff = await staff_row(s, actor, now=now)
            row = m.CannedResponse(name=name, text=text, staff_id=staff.id, created_at=now)
            s.add(row)
            await s.flush()
    except IntegrityError as exc:
        # Two people saving the same name at the same moment: the second meets the unique key.
        if upsert.violates(exc, NAME_KEY):
            raise BadRequest(f"there is already a canned response called {name!r}") from exc
        raise
    log.info("canned response added id=%s staff=%s", row.id, actor.slack_user_id)
    return Canned(key=f"db:{row.id}", name=name, text=text, source=DATABASE,
                  added_by=actor.slack_user_id, created_at=now)


async def remove(desk: Desk, *, actor: Actor, name: str) -> Canned:
    """Delete a saved canned response by name (any case); the config's stay."""
    name = name.strip()
    if not name:
        raise BadRequest("which canned response? give its name")
    config = next((c for c in _config(desk) if c.name.lower() == name.lower()), None)
    async with desk.db.transaction() as s:
        row = await s.scalar(select(m.CannedResponse).where(func.lower(m.CannedResponse.name) == name.lower()))
        if row is None:
            if config is not None:
                raise BadRequest(f"{config.name!r} is defined in the config file: change it there "
                                 f"(canned_responses)")
            raise CannedNotFound(f"there is no canned response called {name!r}")
        removed = Canned(key=f"db:{row.id}", name=row.name, text=row.text, source=DATABASE,
                         created_at=row.created_at)
        await s.execute(delete(m.CannedResponse).where(m.CannedResponse.id == row.id))
    log.info("canned response removed id=%s staff=%s", row.id, actor.slack_user_id)
    return removed


def placeholders(ticket: TicketView, assignee_name: str) -> dict[str, str]:
    """What each placeholder stands for on this ticket."""
    r = ticket.requester
    return {"customer_name": r.name or r.email or r.phone or "", "ticket_number": str(ticket.number),
            "assignee": assignee_name, "subject": ticket.subject, "group": ticket.group}


def render(text: str, ticket: TicketView, assignee_name: str) -> str:
    """``text`` with the ticket's placeholders filled in; unknown ones (``{order_id}``) and
    stray braces stay as typed. Never ``str.format`` on staff text: "{0}" or "{a.__class__}"
    would raise or reach into objects."""
    values = placeholders(ticket, assignee_name)
    return PLACEHOLDER_RE.sub(lambda match: values.get(match.group(1), match.group(0)), text)
