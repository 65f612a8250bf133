"""Carrier keywords in a customer's text (CTIA and Twilio's defaults): STOP and its synonyms
opt the contact out of SMS, START/UNSTOP opt back in, HELP is answered with
``twilio.help_text``. Only a text that is the keyword alone counts ("stop." too; "please stop
the service" is a customer's request, not an opt-out).

Must not decide where the text goes (intake threads it) nor send anything itself: it records
the contact's state, an event, and the help answer as an outbox intent.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bot.core import intents, lifecycle
from bot.core.desk import Desk
from bot.messages import InboundMessage
from bot.store import models as m

STOP = frozenset({"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT"})
START = frozenset({"START", "UNSTOP"})
HELP = frozenset({"HELP"})


def keyword(body: str) -> str | None:
    """STOP, START or HELP when the text is one of their words alone, else None."""
    word = body.strip().strip(".!").strip().upper()
    if word in STOP:
        return "STOP"
    if word in START:
        return "START"
    if word in HELP:
        return "HELP"
    return None


async def apply(s: AsyncSession, desk: Desk, msg: InboundMessage, contact: m.Contact, word: str) -> None:
    now = desk.clock.now()
    actor = f"customer:{msg.sender_address}"
    if word in ("STOP", "START"):
        opted_out = word == "STOP"
        if contact.sms_opted_out != opted_out:
            contact.sms_opted_out = opted_out
            lifecycle.record_event(s, None, "sms_opt_out" if opted_out else "sms_opt_in", actor=actor,
                                   now=now, phone=msg.sender_address)
        return
    if not contact.sms_opted_out:
        our_number = msg.recipients[0] if msg.recipients else desk.settings.twilio.from_number
        intents.customer_sms(s, ticket_id=None, message_id=None, to=msg.sender_address, from_=our_number,
                             template="help", values={"help_text": desk.settings.twilio.help_text},
                             now=now)
