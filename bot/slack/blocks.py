"""Block Kit for ticket cards, thread messages and notices.

Pure functions: view in, ``{"text", "blocks"}`` out. Every piece of customer text is either
put in a ``plain_text`` object (Slack shows it literally: no mentions, links or *bold*) or,
where mrkdwn is unavoidable, escaped with ``escape_mrkdwn``. Limits are Slack's: 50 blocks,
section text 3,000 characters, header 150, message ``text`` 40,000. No I/O here.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from bot.core.filetypes import extension, is_executable
from bot.core.views import AttachmentView, CardView, MessageView, QuarantineView, TicketView, stars

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_HEADER = 150
MAX_FIELD = 2000
MAX_TEXT = 40000
BODY_SECTIONS = 3  # a card shows at most this many sections of the message; the rest is trimmed

STATUS_LABELS = {"new": "🆕 New", "open": "🟢 Open", "waiting": "⏳ Waiting on customer",
                 "on_hold": "⏸ On hold", "resolved": "✅ Resolved", "closed": "🔒 Closed"}


def escape_mrkdwn(text: str) -> str:
    """Slack's three control characters (https://api.slack.com/reference/surfaces/formatting#escaping).

    "<!channel> & co" → "&lt;!channel&gt; &amp; co": no mention, link or entity survives.
    """
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def trim(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…"


def plain(text: str, limit: int = MAX_SECTION) -> dict[str, Any]:
    # emoji=False: a customer's ":bomb:" stays the characters they typed.
    return {"type": "plain_text", "text": trim(text, limit) or " ", "emoji": False}


def mrkdwn(text: str, limit: int = MAX_SECTION) -> dict[str, Any]:
    """Our own mrkdwn (labels, links we build): callers escape any customer text inside it."""
    return {"type": "mrkdwn", "text": trim(text, limit) or " ", "verbatim": True}


def body_sections(text: str, *, max_sections: int = BODY_SECTIONS) -> list[dict[str, Any]]:
    """The message text in plain_text sections, cut on line breaks where possible."""
    text = text.strip() or "(no text)"
    chunks: list[str] = []
    rest = text
    while rest and len(chunks) < max_sections:
        if len(rest) <= MAX_SECTION:
            chunks.append(rest)
            rest = ""
            break
        cut = rest.rfind("\n", 0, MAX_SECTION - 100)
        cut = cut if cut > MAX_SECTION // 2 else MAX_SECTION - 100
        chunks.append(rest[:cut])
        rest = rest[cut:].lstrip("\n")
    blocks = [{"type": "section", "text": plain(chunk)} for chunk in chunks]
    if rest:
        blocks.append(context(f"… {len(rest):,} more characters not shown"))
    return blocks


def context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [plain(text, MAX_FIELD)]}


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "—"


def slack_date(at: datetime) -> str:
    """An instant each reader sees in their own time zone ("Tomorrow at 9:00 AM"); clients
    that cannot show it read the UTC fallback.
    https://api.slack.com/reference/surfaces/formatting#date-formatting"""
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {{time}}|{_when(at.astimezone(timezone.utc))}>"


def duration(minutes: int) -> str:
    """45 → "45 min", 300 → "5 h", 3000 → "2 d 2 h"."""
    if minutes < 60:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h"
    return f"{hours // 24} d" + (f" {hours % 24} h" if hours % 24 else "")


OVERDUE = "🔴"  # Block Kit has no coloured text: a red circle and bold mark a missed target


def _target_line(words: str, late: str, *, due: datetime | None, met_at: datetime | None,
                 breached: bool, running: bool, paused: bool) -> str | None:
    """One SLA target: met (in time or late), overdue, due, or nothing to say."""
    if met_at is not None:
        if breached:
            return f"{OVERDUE} *{late}:* {slack_date(met_at)}" + (f" (due {slack_date(due)})" if due else "")
        return f"{words} ✓ {slack_date(met_at)}"
    if due is None or not running:
        return None
    if breached:
        return f"{OVERDUE} *{words} overdue since {slack_date(due)}*"
    return None if paused else f"{words} due {slack_date(due)}"


def rules_lines(t: TicketView) -> list[str]:
    """What the card says about the ticket's clocks (SLA, idle time) and reminder dates, in
    our own mrkdwn: nothing here is customer text."""
    finished = t.status in ("resolved", "closed")
    lines = [line for line in (
        _target_line("First response", "First response late", due=t.first_response_due,
                     met_at=t.first_responded_at, breached=t.first_response_breached,
                     running=not finished, paused=t.sla_paused),
        _target_line("Resolution", "Resolved late", due=t.resolution_due,
                     met_at=t.resolved_at if finished else None, breached=t.resolution_breached,
                     running=not finished, paused=t.sla_paused)) if line]
    if t.sla_paused and not finished:
        lines.append("⏸ SLA paused")
    if t.idle and t.idle_minutes is not None:
        lines.append(f"💤 Idle {duration(t.idle_minutes)}")
    if t.follow_up_at is not None:
        lines.append(f"📅 Follow up {slack_date(t.follow_up_at)}")
    if t.action_required_at is not None:
        lines.append(f"❗ Action required by {slack_date(t.action_required_at)}")
    return lines


def ticket_header(ticket: TicketView) -> str:
    return trim(f"#{ticket.number} {ticket.subject}", MAX_HEADER)


def ticket_card(card: CardView, *, new_card_url: str | None = None) -> dict[str, Any]:
    """A ticket's card; a transferred ticket's old card links to ``new_card_url``."""
    t = card.ticket
    status = STATUS_LABELS.get(t.status, t.status)
    unread = "🔵 Unread · " if t.unread else ""
    category = " / ".join(x for x in (t.category, t.type) if x) or "—"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": plain(ticket_header(t), MAX_HEADER)},
        {"type": "section", "fields": [
            mrkdwn(f"*Status*\n{unread}{status}"),
            mrkdwn(f"*Priority*\nP{t.priority}"),
            mrkdwn(f"*Group*\n{escape_mrkdwn(t.group)}"),
            mrkdwn(f"*Assignee*\n{f'<@{t.assignee}>' if t.assignee else 'Unassigned'}"),
            mrkdwn(f"*Category / type*\n{escape_mrkdwn(category)}"),
            mrkdwn(f"*Received*\n{_when(t.created_at)} via {t.channel}"
                   + (f" ({escape_mrkdwn(t.account)} mailbox)" if t.account else "")),
            mrkdwn(f"*Weight*\n{t.weight:,}"),
        ]},
        {"type": "section", "text": plain(f"From: {t.requester.label}", MAX_FIELD)},
    ]
    rules = rules_lines(t)
    if rules:
        blocks.append({"type": "section", "text": mrkdwn("\n".join(rules))})
    if t.reply_to:
        blocks.append(context(f"↩️ Replies go to {t.reply_to}"))
    if t.requester.phone and t.requester.sms_opted_out:
        blocks.append(context(f"🚫 {t.requester.phone} opted out of texts (STOP): no SMS until they text START"))
    if t.proposed_reply_to:
        blocks.extend(_proposed_reply_to(t))
    if card.first_message is not None:
        if card.first_message.authentication:
            blocks.append(context(_checks_line(card.first_message)))
        blocks.extend(body_sections(card.first_message.body))
        if card.first_message.attachments:
            blocks.append(context(_attachments_line(card.first_message)))
    if t.locked_by and t.lock_expires_at:
        blocks.append(context(f"✍️ {t.locked_by} is replying (until {t.lock_expires_at:%H:%M} UTC)"))
    if t.links:
        blocks.append(context("Linked: " + ", ".join(f"#{n}" for n in t.links)))
    footer = [f"{card.message_count} customer message{'s' if card.message_count != 1 else ''}"]
    if card.attachment_count:
        footer.append(f"📎 {card.attachment_count} file{'s' if card.attachment_count != 1 else ''}")
    if t.rating:
        footer.append(f"Rated {stars(t.rating.score)} {t.rating.score}/5")
    if card.last_action:
        footer.append(card.last_action)
    blocks.append(context(" · ".join(footer)))
    if card.transferred_to:
        where = f"<{new_card_url}|work it from the new card>" if new_card_url else "work it from the new card"
        blocks.append({"type": "context", "elements": [mrkdwn(
            f"➡️ Transferred to {escape_mrkdwn(card.transferred_to)}: {where}")]})
    else:
        blocks.append(card_actions(t))
    text = f"#{t.number} {t.subject} — from {t.requester.label}"
    return {"text": trim(escape_mrkdwn(text), MAX_TEXT), "blocks": blocks[:MAX_BLOCKS],
            "unfurl_links": False, "unfurl_media": False}


# Slack allows five options in an overflow menu.
MORE_OPTIONS = (("assign", "Assign…"), ("transfer", "Transfer…"), ("fields", "Priority & status…"),
                ("category", "Category / type…"), ("link", "Link ticket…"))


def button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    b: dict[str, Any] = {"type": "button", "text": plain(text, 75), "action_id": action_id, "value": value}
    if style:
        b["style"] = style
    return b


def card_actions(t: TicketView) -> dict[str, Any]:
    """The card's buttons; every value is the ticket number, every action one core function."""
    n = str(t.number)
    closed = t.status in ("resolved", "closed")
    elements = [button("Reply", "ticket.reply", n, "primary"), button("Note", "ticket.note", n)]
    if not t.assignee:
        elements.append(button("Assign to me", "ticket.assign_me", n))
    elements.append(button("Reopen", "ticket.reopen", n) if closed else
                    button("Close", "ticket.close", n, "danger"))
    if t.locked_by:
        elements.append(button("Unlock", "ticket.unlock", n))
    elements.append({"type": "overflow", "action_id": "ticket.more",
                     "options": [{"text": plain(label, 75), "value": f"{key}:{n}"}
                                 for key, label in MORE_OPTIONS]})
    elements.append(follow_up_picker(t))  # a resolved ticket may still need a check later
    # Slack refuses an actions block of more than 25 elements (we have at most 7).
    return {"type": "actions", "block_id": f"ticket:{n}", "elements": elements[:25]}


def follow_up_picker(t: TicketView) -> dict[str, Any]:
    """A date to follow the ticket up on (09:00 in its group's business hours, see the
    listener); the date shown is the follow-up's day there."""
    picker: dict[str, Any] = {"type": "datepicker", "action_id": "ticket.follow_up",
                              "placeholder": plain("Follow up on…", 150)}
    if t.follow_up_at is not None:
        picker["initial_date"] = t.follow_up_at.astimezone(ZoneInfo(t.business_timezone)).strftime("%Y-%m-%d")
    return picker


def _proposed_reply_to(t: TicketView) -> list[dict[str, Any]]:
    """A message that joined by weaker evidence (a subject tag, a copied Message-ID) asked for
    replies elsewhere: staff choose; until then replies go where they went."""
    current = t.reply_to or t.requester.email or "the requester"
    return [context(f"⚠️ A message on this ticket asks for replies to go to {t.proposed_reply_to}. "
                    f"It may not come from the customer; replies still go to {current}."),
            {"type": "actions", "block_id": f"reply_to:{t.number}", "elements": [
                button(trim(f"Send replies to {t.proposed_reply_to}", 75), "ticket.use_reply_to",
                       f"{t.number}:{t.proposed_reply_to}"),
                button(trim(f"Keep {current}", 75), "ticket.keep_reply_to", str(t.number))]}]


CHECK_ORDER = ("dmarc", "dkim", "spf")  # the verdict that matters most first


def _checks_line(message: MessageView) -> str:
    # Sorted here: a stored dict comes back in the database's key order (jsonb has none).
    checks = sorted((message.authentication or {}).items(),
                    key=lambda kv: CHECK_ORDER.index(kv[0]) if kv[0] in CHECK_ORDER else len(CHECK_ORDER))
    failed = ", ".join(f"{k.upper()} {v}" for k, v in checks)
    return f"⚠️ Sender checks failed ({failed}): this mail may not come from the address it shows."


DELIVERY = {"queued": "⏳ Queued for {}", "sent": "✅ Accepted by the mail server for {}",
            "failed": "⚠️ Not delivered to {}"}
SMS_DELIVERY = {"queued": "⏳ Text queued for {}", "sent": "📤 Text sent to the carrier for {}",
                "delivered": "✅ Text delivered to {}", "undelivered": "⚠️ Text not delivered to {}",
                "failed": "⚠️ Text not delivered to {}"}


def thread_message(ticket: TicketView, message: MessageView) -> dict[str, Any]:
    who = message.sender or ticket.requester.label
    verb = {"inbound": "wrote", "outbound": "replied to the customer",
            "note": "added an internal note"}.get(message.kind, "wrote")
    blocks: list[dict[str, Any]] = [context(f"{who} {verb} on {_when(message.created_at)}")]
    if message.authentication:
        blocks.append(context(_checks_line(message)))
    blocks.extend(body_sections(message.body, max_sections=10))
    if message.attachments:
        blocks.append(context(_attachments_line(message)))
    shown = SMS_DELIVERY if message.channel == "sms" else DELIVERY
    if message.kind == "outbound" and message.recipient and message.delivery_status in shown:
        blocks.append(context(shown[message.delivery_status].format(message.recipient)))
    text = f"#{ticket.number}: {who} {verb}"
    return {"text": trim(escape_mrkdwn(text), MAX_TEXT), "blocks": blocks[:MAX_BLOCKS],
            "unfurl_links": False, "unfurl_media": False}


def file_link(file: AttachmentView, link: str | None, why: str) -> dict[str, Any]:
    """A customer's file that is not uploaded into Slack: its name, size and why, and where
    to download it (a signed link, when links are configured)."""
    warning = f"⚠ .{extension(file.name) or 'file'} — a program or script: never opened here. " if file.executable else ""
    name = escape_mrkdwn(file.name)
    where = (f"<{escape_mrkdwn(link)}|Download {name}> (the link expires)" if link else
             "No download link: attachments.link_secret is not set; `deskbell tickets show` lists it")
    text = f"📎 {warning}*{name}* ({_size(file.size)}, {why}). {where}"
    return {"text": trim(f"📎 {file.name}", MAX_TEXT), "blocks": [{"type": "section", "text": mrkdwn(text)}]}


def notice(text: str) -> dict[str, Any]:
    return {"text": trim(escape_mrkdwn(text), MAX_TEXT), "blocks": [context(text)]}


def quarantine_notice(item: QuarantineView) -> dict[str, Any]:
    sender = item.envelope_from if item.envelope_from else "<>"
    lines = (f"Mail held in quarantine #{item.id} ({item.reason}): {item.detail}\n"
             f"From {sender} to {', '.join(item.envelope_to) or '—'}, {item.size:,} bytes. "
             f"Retry with: deskbell reprocess {item.id}")
    return {"text": trim(escape_mrkdwn(f"Mail held in quarantine #{item.id} ({item.reason})"), MAX_TEXT),
            "blocks": [{"type": "section", "text": plain(lines)}]}


def _attachments_line(message: MessageView) -> str:
    names = ", ".join(f"{_flag(a)}{a.name} ({_size(a.size)}{', withheld: over the size limit' if a.withheld else ''})"
                      for a in message.attachments[:20])
    more = len(message.attachments) - 20
    return f"📎 {names}" + (f" and {more} more" if more > 0 else "")


def _flag(file: AttachmentView) -> str:
    """"⚠ .exe " before a program or script: staff see it before anyone opens it."""
    return f"⚠ .{extension(file.name) or 'exe'} " if file.executable or is_executable(file.name, file.sniffed) else ""


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"
