"""Adapter: the ``/ticket`` slash command — parse the text, call one core function, answer.

Answers are plain text shown only to the person who typed the command. Errors say exactly
what is wrong (unknown ticket, bad priority, no permission). No ticket logic here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from zoneinfo import ZoneInfo

from bot.config import Settings
from bot.core import actions, availability, canned, reports, staff_opened
from bot.core.actions import ActionResult, BadRequest, IdempotencyKey
from bot.core.desk import Desk
from bot.core.errors import Rejected
from bot.core.lifecycle import STATUSES
from bot.core.staff import Actor, check_allowed, visible_groups
from bot.slack.blocks import escape_mrkdwn as _safe
from bot.slack.identity import Directory

# Slack escapes a mention in command text as "<@U012ABC|alice>" → U012ABC
MENTION_RE = re.compile(r"^<@([UW][A-Z0-9]+)(?:\|[^>]*)?>$")

HELP = """*/ticket* — work tickets without leaving Slack:
`reply N text` · `note N text` · `assign N @user|me` · `transfer N group note`
`priority N 1-{levels}` · `status N {statuses}` · `close N` · `reopen N` · `link N M`
`replyto N ADDRESS|reset` — where replies to the customer go
`contact N email ADDRESS|phone NUMBER` — another way to reach the customer (merges contacts)
`customer N good|bad|clear` — flag the customer (their tickets weigh more, or less)
`show N` · `list [mine|group NAME|overdue|customer ADDRESS]`
`followup N YYYY-MM-DD [HH:MM]|clear` · `actiondue N YYYY-MM-DD [HH:MM]|clear` — reminder dates \
(the ticket group's business-hours time zone; 09:00 when no time is given)
`away` · `back` — stop or start getting new tickets
`canned list` · `canned add NAME | text` · `canned remove NAME` — canned responses for replies \
(placeholders: {{customer_name}} {{ticket_number}} {{assignee}} {{subject}} {{group}})
`new email ADDRESS subject | body` — open a ticket for a customer and mail them
`new sms +15551234567 text` — open a ticket for a customer and text them
`help` — this text"""


@dataclass(frozen=True)
class CommandContext:
    desk: Desk
    actor: Actor
    directory: Directory
    text: str
    key: IdempotencyKey | None
    thread_ticket: int | None  # the card's ticket when typed in its thread (N may be omitted)


async def run_command(ctx: CommandContext) -> str:
    words = ctx.text.strip().split()
    if not words or words[0].lower() in ("help", "-h", "--help"):
        return _help(ctx)
    verb, args = words[0].lower(), words[1:]
    handler = COMMANDS.get(verb)
    if handler is None:
        return f"⚠️ Unknown command `{verb}`.\n" + _help(ctx)
    try:
        return await handler(ctx, args)
    except Rejected as exc:
        return f"⚠️ {_safe(str(exc))}"


def _help(ctx: CommandContext) -> str:
    return HELP.format(levels=ctx.desk.settings.tickets.priorities, statuses="|".join(STATUSES))


def _number(ctx: CommandContext, args: list[str], usage: str) -> tuple[int, list[str]]:
    """The ticket number first in ``args`` ("42" or "#42"), or the thread's ticket."""
    if args and args[0].lstrip("#").isdigit():
        return int(args[0].lstrip("#")), args[1:]
    if ctx.thread_ticket is not None:
        return ctx.thread_ticket, args
    raise BadRequest(f"which ticket? usage: {usage}")


def _done(result: ActionResult) -> str:
    # Results name customers (their display names are theirs to choose): escape them.
    return "Already done." if result.duplicate else f"✅ {_safe(result.text)}"


def _address(word: str) -> str:
    """Slack turns a typed address into "<mailto:a@b.c|a@b.c>" → "a@b.c"."""
    return word.strip("<>").split("|")[-1].removeprefix("mailto:")


async def _reply(ctx: CommandContext, args: list[str]) -> str:
    n, rest = _number(ctx, args, "reply N text")
    return _done(await actions.reply(ctx.desk, actor=ctx.actor, number=n, text=" ".join(rest), key=ctx.key))


async def _note(ctx: CommandContext, args: list[str]) -> str:
    n, rest = _number(ctx, args, "note N text")
    return _done(await actions.note(ctx.desk, actor=ctx.actor, number=n, text=" ".join(rest), key=ctx.key))


async def _assign(ctx: CommandContext, args: list[str]) -> str:
    n, rest = _number(ctx, args, "assign N @user|me")
    if len(rest) != 1:
        raise BadRequest("usage: assign N @user|me")
    if rest[0].lower() == "me":
        assignee = ctx.actor
    else:
        match = MENTION_RE.match(rest[0])
        if not match:
            raise BadRequest(f"{rest[0]!r} is not a person: mention them (@name) or say me")
        assignee = await ctx.directory.actor(match.group(1))
    return _done(await actions.assign(ctx.desk, actor=ctx.actor, number=n, assignee=assignee, key=ctx.key))


async def _transfer(ctx: CommandContext, args: list[str]) -> str:
    n, rest = _number(ctx, args, "transfer N group note")
    if not rest:
        raise BadRequest("usage: transfer N group note")
    return _done(await actions.transfer(ctx.desk, actor=ctx.actor, number=n, group=rest[0],
                                        note_text=" ".join(rest[1:]), key=ctx.key))


async def _priority(ctx: CommandContext, args: list[str]) -> str:
    n, rest = _number(ctx, args, "priority N level")
    levels = ctx.desk.settings.tickets.priorities
    if len(rest) != 1 or not rest[0].lstrip("pP").isdigit():
        raise BadRequest(f"usage: priority N 1-{levels} (1 is the highest)")
    return _done(await actions.set_priority(ctx.desk, actor=ctx.actor, number=n,
                                            priority=int(rest[0].lstrip("pP")), key=ctx.key))


async def _status(ctx: CommandContext, args: list[str]) -> str:
    n, rest = _number(ctx, args, "status N status")
    if len(rest) != 1:
        raise BadRequest(f"usage: status N {'|'.join(STATUSES)}")
    return _done(await actions.set_status(ctx.desk, actor=ctx.actor, number=n, status=rest[0].lower(),
                                          key=ctx.key))


async def _close(ctx: CommandContext, args: list[str]) -> str:
    n, _ = _number(ctx, args, "close N")
    return _done(await actions.close(ctx.desk, actor=ctx.actor, number=n, key=ctx.key))


async def _reopen(ctx: CommandContext, args: list[str]) -> str:
    n, _ = _number(ctx, args, "reopen N")
    return _done(await actions.reopen(ctx.desk, actor=ctx.actor, number=n, key=ctx.key))


async def _link(ctx: CommandContext, args: list[str]) -> str:
    n, rest = _number(ctx, args, "link N M")
    if len(rest) != 1 or not rest[0].lstrip("#").isdigit():
        raise BadRequest("usage: link N M (two ticket numbers)")
    return _done(await actions.link(ctx.desk, actor=ctx.actor, number=n, other=int(rest[0].lstrip("#")),
                                    key=ctx.key))


async def _replyto(ctx: CommandContext, args: list[str]) -> str:
    n, rest = _number(ctx, args, "replyto N ADDRESS|reset")
    if len(rest) != 1:
        raise BadRequest("usage: replyto N ADDRESS (or reset: back to the customer's own address)")
    address = None if rest[0].lower() == "reset" else _address(rest[0])
    return _done(await actions.set_reply_to(ctx.desk, actor=ctx.actor, number=n, address=address,
                                            key=ctx.key))


async def _contact(ctx: CommandContext, args: list[str]) -> str:
    n, rest = _number(ctx, args, "contact N email ADDRESS|phone NUMBER")
    if len(rest) < 2 or rest[0].lower() not in ("email", "phone"):
        raise BadRequest("usage: contact N email ADDRESS, or contact N phone +15551234567")
    kind, value = rest[0].lower(), "".join(rest[1:])
    return _done(await actions.link_contact(ctx.desk, actor=ctx.actor, number=n, key=ctx.key,
                                            **{kind: value}))


async def _customer(ctx: CommandContext, args: list[str]) -> str:
    n, rest = _number(ctx, args, "customer N good|bad|clear")
    if len(rest) != 1 or rest[0].lower() not in ("good", "bad", "clear"):
        raise BadRequest("usage: customer N good|bad|clear")
    flag = None if rest[0].lower() == "clear" else rest[0].lower()
    return _done(await actions.flag_contact(ctx.desk, actor=ctx.actor, number=n, flag=flag, key=ctx.key))


async def _show(ctx: CommandContext, args: list[str]) -> str:
    n, _ = _number(ctx, args, "show N")
    t = await reports.show_ticket(ctx.desk.db, n, now=ctx.desk.clock.now(), settings=ctx.desk.settings)
    check_allowed(ctx.desk.settings, ctx.actor, group=t["group"], action="see")
    who = f"<@{t['assignee']}>" if t["assignee"] else "unassigned"
    lines = [f"*#{t['number']}* {_safe(t['subject'])}",
             f"{t['status']} · P{t['priority']} · {t['group']} · {who} · "
             f"{_safe(t['requester']['email'] or t['requester']['phone'] or '')}"]
    for msg in t["messages"][-5:]:
        lines.append(f"> _{msg['kind']}_ {_safe(msg['sender'])}: {_safe(msg['body'][:200])}")
    return "\n".join(lines)


async def _list(ctx: CommandContext, args: list[str]) -> str:
    now, db = ctx.desk.clock.now(), ctx.desk.db
    what = args[0].lower() if args else "open"
    groups = visible_groups(ctx.desk.settings, ctx.actor)
    rules = {"now": now, "settings": ctx.desk.settings}
    if what == "mine":
        rows = await reports.list_tickets(db, status="open", assignee=ctx.actor.slack_user_id,
                                          queue_order=True, **rules)
    elif what == "group" and len(args) == 2:
        check_allowed(ctx.desk.settings, ctx.actor, group=args[1], action="see")
        rows = await reports.list_tickets(db, status="open", groups=[args[1]], queue_order=True, **rules)
    elif what == "customer" and len(args) == 2:
        rows = await reports.list_tickets(db, customer=_address(args[1]), groups=groups, **rules)
    elif what == "overdue":
        rows = await reports.list_tickets(db, overdue=True, groups=groups, queue_order=True, **rules)
    elif what == "open":
        rows = await reports.list_tickets(db, status="open", groups=groups, queue_order=True, **rules)
    else:
        raise BadRequest("usage: list [mine|group NAME|overdue|customer ADDRESS]")
    if not rows:
        return "No tickets."
    lines = [f"#{t['number']} · {t['status']} · P{t['priority']} · w{t['weight']} · {t['group']}"
             f"{_flags(t)} · {_safe(t['subject'][:80])}" for t in rows[:30]]
    if len(rows) > 30:
        lines.append(f"…and {len(rows) - 30} more")
    return "\n".join(lines)


def _flags(t: dict) -> str:
    """What a list line says about a ticket's clocks."""
    flags = []
    if t["sla"]["first_response_breached"]:
        flags.append("first response overdue")
    if t["sla"]["resolution_breached"]:
        flags.append("resolution overdue")
    if t["idle"]:
        flags.append(f"idle {t['idle_minutes'] // 60} h")
    return "".join(f" · :red_circle: {f}" if "overdue" in f else f" · {f}" for f in flags)


async def _new(ctx: CommandContext, args: list[str]) -> str:
    if args and args[0].lower() == "sms":
        # The number may be written in groups ("+1 555 222 3333"): it ends at the first word.
        digits = 1
        while digits < len(args) and re.fullmatch(r"[+\d().-]+", args[digits]):
            digits += 1
        if digits == 1 or digits == len(args):
            raise BadRequest("usage: new sms +15551234567 text")
        return _done(await staff_opened.open_ticket_for_customer(
            ctx.desk, actor=ctx.actor, phone="".join(args[1:digits]), subject="",
            body=" ".join(args[digits:]), key=ctx.key))
    if len(args) < 2 or args[0].lower() != "email":
        raise BadRequest("usage: new email ADDRESS subject | body, or new sms +15551234567 text")
    address = _address(args[1])
    subject, sep, body = " ".join(args[2:]).partition("|")
    if not sep:
        raise BadRequest("separate the subject from the body with |: new email ADDRESS subject | body")
    return _done(await staff_opened.open_ticket_for_customer(ctx.desk, actor=ctx.actor, email=address,
                                                        subject=subject, body=body, key=ctx.key))


# ----- reminder dates ---------------------------------------------------------------------------

DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")  # 2026-12-01
TIME_RE = re.compile(r"^(\d{1,2}):(\d{2})$")  # 9:30, 17:05
REMINDER_TIME = time(9, 0)  # a reminder date without a time: the start of a usual working day


def group_zone(settings: Settings, group: str) -> ZoneInfo:
    """The time zone of ``group``'s business hours (the default entry's for an unknown group)."""
    config = settings.group_by_name(group)
    hours = settings.business_hours.get(config.business_hours if config else "default") \
        or settings.business_hours.get("default")
    return hours.zone if hours is not None else ZoneInfo("UTC")


def reminder_instant(settings: Settings, group: str, day: str, at: str | None = None) -> datetime:
    """"2026-12-01" (and "14:30", else 09:00) in ``group``'s business-hours time zone, as a
    UTC instant; ``BadRequest`` saying what is wrong with a date or time that is not one."""
    if not DATE_RE.match(day):
        raise BadRequest(f"{day!r} is not a date: write it as YYYY-MM-DD, e.g. 2026-12-01")
    try:
        chosen_day = date.fromisoformat(day)
    except ValueError:
        raise BadRequest(f"{day} is not a day of the calendar: check the month and the day") from None
    chosen_time = REMINDER_TIME
    if at is not None:
        match = TIME_RE.match(at)
        if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
            raise BadRequest(f"{at!r} is not a time of day: write it as HH:MM (24-hour), e.g. 14:30")
        chosen_time = time(int(match.group(1)), int(match.group(2)))
    zone = group_zone(settings, group)
    local = datetime.combine(chosen_day, chosen_time, tzinfo=zone)
    # A time the clocks skip when they change (02:30 on a spring-forward night) does not exist
    # there: say so rather than pick an hour for them.
    if local.astimezone(timezone.utc).astimezone(zone).replace(tzinfo=None) != local.replace(tzinfo=None):
        raise BadRequest(f"{day} {chosen_time:%H:%M} does not exist in {zone.key} (the clocks change "
                         "that night): choose another time")
    return local.astimezone(timezone.utc)


def _reminder(which: str, verb: str):
    usage = f"{verb} N YYYY-MM-DD [HH:MM] (or {verb} N clear)"

    async def handle(ctx: CommandContext, args: list[str]) -> str:
        n, rest = _number(ctx, args, usage)
        at = None
        if len(rest) == 1 and rest[0].lower() == "clear":
            pass
        elif len(rest) in (1, 2):
            ticket, _ = await reports.describe(ctx.desk, n)
            at = reminder_instant(ctx.desk.settings, ticket.group, rest[0], rest[1] if len(rest) == 2 else None)
        else:
            raise BadRequest(f"usage: {usage}")
        result = await actions.set_reminder(ctx.desk, actor=ctx.actor, number=n, which=which, at=at,
                                            key=ctx.key)
        answer = _done(result)
        if at is not None and not result.duplicate:
            zone = group_zone(ctx.desk.settings, ticket.group)
            if zone.key != "UTC":
                answer += f" ({at.astimezone(zone):%Y-%m-%d %H:%M} {zone.key})"
            if at <= ctx.desk.clock.now():
                answer += " That is in the past: the reminder comes with the scheduler's next pass."
        return answer

    return handle


# ----- availability -----------------------------------------------------------------------------


async def _away(ctx: CommandContext, args: list[str]) -> str:
    return await availability.set_away(ctx.desk, actor=ctx.actor, away=True)


async def _back(ctx: CommandContext, args: list[str]) -> str:
    return await availability.set_away(ctx.desk, actor=ctx.actor, away=False)


# ----- canned responses -------------------------------------------------------------------------

# What follows "canned add" / "canned remove", line breaks and spacing kept (the words the
# dispatcher split are not enough: a canned text keeps its lines).
CANNED_REST_RE = re.compile(r"^\s*canned\s+(?:add|remove)\s*(.*)$", re.S | re.I)  # "canned add Hi | Hello"
PREVIEW = 80  # characters of each text shown by "canned list"


def _unslack(text: str) -> str:
    """Slack sends "&", "<" and ">" typed in a command as "&amp;", "&lt;", "&gt;": the text
    as typed ("&amp;" last, so a typed "&lt;" stays "&lt;")."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


async def _canned(ctx: CommandContext, args: list[str]) -> str:
    usage = "canned list, canned add NAME | text, or canned remove NAME"
    sub = args[0].lower() if args else "list"
    if sub == "list":
        return _canned_list(await canned.list_responses(ctx.desk))
    match = CANNED_REST_RE.match(ctx.text)
    if sub not in ("add", "remove") or match is None:
        raise BadRequest(f"usage: {usage}")
    rest = _unslack(match.group(1))
    if sub == "add":
        name, sep, text = rest.partition("|")
        if not sep:
            raise BadRequest("separate the name from the text with |: canned add NAME | text")
        saved = await canned.add(ctx.desk, actor=ctx.actor, name=name, text=text)
        return f"✅ Canned response *{_safe(saved.name)}* saved: the Reply modal offers it from now on."
    removed = await canned.remove(ctx.desk, actor=ctx.actor, name=rest)
    return f"✅ Canned response *{_safe(removed.name)}* removed."


def _canned_list(responses: list[canned.Canned]) -> str:
    if not responses:
        return "No canned responses yet. Add one: /ticket canned add NAME | text"
    lines = [f"*Canned responses* ({len(responses)})"]
    for c in responses:
        origin = ("from the config file" if c.source == canned.CONFIG else
                  f"added by <@{c.added_by}>" if c.added_by else "added in Slack")
        preview = " ".join(c.text.split())
        preview = preview if len(preview) <= PREVIEW else preview[:PREVIEW - 1].rstrip() + "…"
        lines.append(f"• *{_safe(c.name)}* ({origin}): {_safe(preview)}")
    return "\n".join(lines)


COMMANDS = {"reply": _reply, "note": _note, "assign": _assign, "transfer": _transfer,
            "priority": _priority, "status": _status, "close": _close, "reopen": _reopen,
            "link": _link, "replyto": _replyto, "contact": _contact, "customer": _customer, "show": _show, "list": _list, "new": _new,
            "followup": _reminder("follow_up", "followup"), "actiondue": _reminder("action_required", "actiondue"),
            "away": _away, "back": _back, "canned": _canned}
