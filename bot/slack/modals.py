"""Block Kit modals and the App Home tab.

Pure functions: views in, Slack view JSON out. ``callback_id`` names the action a submit
performs; ``private_metadata`` carries the ticket number and the card's channel. Customer text
only ever goes into ``plain_text`` objects (see ``blocks``). No I/O here.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from bot.config import Settings
from bot.core.canned import Canned
from bot.core.lifecycle import STATUSES
from bot.core.views import MessageView, TicketView
from bot.slack.blocks import MAX_BLOCKS, context, plain, trim

MODAL_TITLE = 24  # Slack's limit for a modal title


def metadata(number: int, channel: str | None = None) -> str:
    return json.dumps({"ticket": number, "channel": channel})


def read_metadata(view: dict[str, Any]) -> tuple[int, str | None]:
    data = json.loads(view.get("private_metadata") or "{}")
    return int(data["ticket"]), data.get("channel")


def _modal(callback_id: str, title: str, blocks: list[dict[str, Any]], *, number: int,
           channel: str | None, submit: str | None = "Save", notify_on_close: bool = False) -> dict[str, Any]:
    view: dict[str, Any] = {"type": "modal", "callback_id": callback_id,
                            "title": plain(trim(title, MODAL_TITLE), MODAL_TITLE),
                            "close": plain("Cancel", 24), "blocks": blocks[:100],
                            "private_metadata": metadata(number, channel),
                            "notify_on_close": notify_on_close}
    if submit:
        view["submit"] = plain(submit, 24)
    return view


def _text_input(block_id: str, label: str, *, multiline: bool = True, initial: str = "",
                optional: bool = False, placeholder: str = "") -> dict[str, Any]:
    element: dict[str, Any] = {"type": "plain_text_input", "action_id": "value", "multiline": multiline}
    if initial:
        element["initial_value"] = initial[:3000]
    if placeholder:
        element["placeholder"] = plain(placeholder, 150)
    return {"type": "input", "block_id": block_id, "label": plain(label, 2000), "element": element,
            "optional": optional}


def _option(text: str, value: str) -> dict[str, Any]:
    return {"text": plain(trim(text, 75), 75), "value": value[:150]}


def _select(block_id: str, label: str, options: list[tuple[str, str]], *, initial: str | None = None,
            optional: bool = False) -> dict[str, Any]:
    element: dict[str, Any] = {"type": "static_select", "action_id": "value",
                               "options": [_option(t, v) for t, v in options[:100]]}
    chosen = next((o for o in element["options"] if o["value"] == initial), None)
    if chosen:
        element["initial_option"] = chosen
    return {"type": "input", "block_id": block_id, "label": plain(label, 2000), "element": element,
            "optional": optional}


SMS_WARN_SEGMENTS = 3  # a reply by text over this many parts is refused at submit (each part is billed)


MAX_OPTIONS = 100  # Slack's limit for a static_select
MAX_REPLY_FILES = 10  # Slack's limit for a file_input


def reply_modal(ticket: TicketView, last_message: MessageView | None, settings: Settings, *,
                channel: str | None, text: str = "", version: int = 0,
                canned: Sequence[Canned] | None = None) -> dict[str, Any]:
    """Reply to the customer. ``version`` renames the text block so a canned answer can
    replace what is typed (Slack keeps an input's value while its block_id stays the same).
    ``canned``: the responses to offer (``core.canned.list_responses``); None offers the
    config's only."""
    to = f"{ticket.requester.name} <{ticket.reply_to}>" if ticket.reply_to else ticket.requester.label
    blocks: list[dict[str, Any]] = [context(f"To {to} · #{ticket.number} {ticket.subject}")]
    if ticket.proposed_reply_to:
        blocks.append(context(f"⚠️ Not to {ticket.proposed_reply_to}: a message asked for it, nobody "
                              "accepted it yet (see the card)."))
    if last_message is not None:
        blocks.append({"type": "section", "text": plain(
            f"Last message from the customer:\n{trim(last_message.body or '(no text)', 1200)}")})
    offered = ([(c.name, str(i)) for i, c in enumerate(settings.canned_responses)] if canned is None
               else [(c.name, c.key) for c in canned])
    if offered:
        blocks.append({"type": "actions", "block_id": "canned", "elements": [{
            "type": "static_select", "action_id": "reply.canned",
            "placeholder": plain("Insert a canned response", 150),
            "options": [_option(name, key) for name, key in offered[:MAX_OPTIONS]]}]})
        if len(offered) > MAX_OPTIONS:
            blocks.append(context(f"The first {MAX_OPTIONS} of {len(offered)} canned responses are listed "
                                  "(a Slack limit); /ticket canned list shows them all."))
    blocks.append(_text_input(f"text.{version}", "Your reply", initial=text))
    blocks.append({"type": "input", "block_id": "files", "optional": True, "label": plain("Attach files"),
                   "element": {"type": "file_input", "action_id": "files", "max_files": MAX_REPLY_FILES}})
    blocks.append(_select("status_after", "Then set the ticket to", [
        ("Waiting on customer", "waiting"), ("Open", "open"), ("Resolved", "resolved"),
        ("On hold", "on_hold")], initial="waiting"))
    blocks.extend(_send_by(ticket, settings))
    return _modal("reply", f"Reply to #{ticket.number}", blocks, number=ticket.number,
                  channel=channel, submit="Send reply", notify_on_close=True)


def _send_by(ticket: TicketView, settings: Settings) -> list[dict[str, Any]]:
    """How the reply travels, when the customer can be reached more than one way; the default
    is how they wrote (``tickets.mobile_response_via`` for a text)."""
    r = ticket.requester
    if r.phone and r.sms_opted_out:
        return [context(f"🚫 {r.phone} has opted out of texts (STOP): replies go by email only.")]
    if not (r.email and r.phone):
        return []
    default = settings.tickets.mobile_response_via if ticket.channel == "sms" else "email"
    options = {"email": _option("Email", "email"), "sms": _option("SMS", "sms"),
               "both": _option("Both", "both")}
    return [{"type": "input", "block_id": "channel", "label": plain("Send by"),
             "element": {"type": "radio_buttons", "action_id": "value", "options": list(options.values()),
                         "initial_option": options[default]}},
            context(f"A text longer than {SMS_WARN_SEGMENTS} SMS parts is refused; the mail has no such limit.")]


def lock_warning_modal(number: int, holder: str, until: str, *, channel: str | None) -> dict[str, Any]:
    blocks = [{"type": "section", "text": plain(
        f"{holder} is writing a reply to #{number} (until {until}). Two answers at once confuse "
        "customers.")},
        {"type": "actions", "elements": [{"type": "button", "action_id": "ticket.reply_anyway",
                                          "value": str(number), "style": "danger",
                                          "text": plain("Reply anyway", 75)}]}]
    return _modal("lock_warning", f"#{number} is being answered", blocks, number=number,
                  channel=channel, submit=None)


def note_modal(number: int, *, channel: str | None) -> dict[str, Any]:
    return _modal("note", f"Note on #{number}", [
        context("Internal: staff only, never sent to the customer."),
        _text_input("text", "Note")], number=number, channel=channel, submit="Add note")


def assign_modal(number: int, *, channel: str | None) -> dict[str, Any]:
    return _modal("assign", f"Assign #{number}", [{
        "type": "input", "block_id": "user", "label": plain("Assign to"),
        "element": {"type": "users_select", "action_id": "value"}}], number=number, channel=channel,
        submit="Assign")


def transfer_modal(number: int, settings: Settings, *, current_group: str,
                   channel: str | None) -> dict[str, Any]:
    groups = [(g.name, g.name) for g in settings.handler_groups]
    blocks = [_select("group", "Handler group", groups, initial=current_group),
              {"type": "input", "block_id": "user", "optional": True, "label": plain("Person (optional)"),
               "element": {"type": "users_select", "action_id": "value"}}]
    if settings.categories:
        blocks.append(_category_select(settings, optional=True))
    blocks.append(_text_input("note", "Internal note (why)", placeholder="What the next person needs to know"))
    return _modal("transfer", f"Transfer #{number}", blocks, number=number, channel=channel,
                  submit="Transfer")


def _category_select(settings: Settings, *, optional: bool, initial: str | None = None) -> dict[str, Any]:
    options: list[tuple[str, str]] = []
    for c in settings.categories:
        options.append((c.name, json.dumps([c.name, None])))
        options += [(f"{c.name} / {t.name}", json.dumps([c.name, t.name])) for t in c.types]
    return _select("category", "Category / type", options, initial=initial, optional=optional)


def fields_modal(ticket: TicketView, settings: Settings, *, channel: str | None) -> dict[str, Any]:
    priorities = [(f"P{n}" + (" (highest)" if n == 1 else ""), str(n))
                  for n in range(1, settings.tickets.priorities + 1)]
    statuses = [(s.replace("_", " ").capitalize(), s) for s in STATUSES]
    return _modal("fields", f"#{ticket.number} priority", [
        _select("priority", "Priority", priorities, initial=str(ticket.priority)),
        _select("status", "Status", statuses, initial=ticket.status)],
        number=ticket.number, channel=channel)


def category_modal(ticket: TicketView, settings: Settings, *, channel: str | None) -> dict[str, Any]:
    if not settings.categories:
        return _modal("category", f"#{ticket.number} category", [context(
            "No categories are configured (see `categories` in the config).")],
            number=ticket.number, channel=channel, submit=None)
    initial = json.dumps([ticket.category, ticket.type]) if ticket.category else None
    return _modal("category", f"#{ticket.number} category",
                  [_category_select(settings, optional=False, initial=initial)],
                  number=ticket.number, channel=channel)


def link_modal(number: int, *, channel: str | None) -> dict[str, Any]:
    return _modal("link", f"Link #{number}", [
        _text_input("other", "Ticket number to link", multiline=False, placeholder="e.g. 42")],
        number=number, channel=channel, submit="Link")


def home_view(*, mine: list[dict[str, Any]], queue: list[dict[str, Any]]) -> dict[str, Any]:
    """App Home: "My tickets" and "My groups' queue", each sorted by status then age."""
    blocks: list[dict[str, Any]] = [{"type": "header", "text": plain("My tickets", 150)}]
    blocks += _ticket_rows(mine, empty="Nothing assigned to you.")
    blocks += [{"type": "divider"}, {"type": "header", "text": plain("My groups' queue", 150)}]
    blocks += _ticket_rows(queue, empty="Your groups' queues are empty.")
    return {"type": "home", "blocks": blocks[:MAX_BLOCKS]}


def _ticket_rows(rows: list[dict[str, Any]], *, empty: str) -> list[dict[str, Any]]:
    if not rows:
        return [context(empty)]
    shown = [{"type": "section", "text": plain(
        f"#{t['number']} {t['subject']}\n{t['status']} · P{t['priority']} · {t['group']} · "
        f"{t['requester']['email'] or t['requester']['phone'] or ''} · since {t['created_at'][:16].replace('T', ' ')}")}
        for t in rows[:20]]
    if len(rows) > 20:
        shown.append(context(f"and {len(rows) - 20} more — /ticket list"))
    return shown
