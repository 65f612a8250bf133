"""Manager digests out: one email per recipient, handler group and period, sent exactly once.

The ledger row (``digest_sends``) and the mail's outbox intent are written in one transaction,
and the row's key is the recipient, group and period: a pass repeated after a restart, two
worker processes, or ``deskbell digest --send`` run twice find the row and queue nothing
(``force`` sends again and counts it). On PostgreSQL a second writer of the same row waits
for the first to commit and then finds it. The figures are read before, outside the write
transaction, so building them never holds the writer.

Decides what the mail says (its subject, its figures, the template); the email sender makes
the MIME. No rendering, no network I/O, no clock (``now`` is given).
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.config.schema import Digest
from bot.core import intents
from bot.core.desk import Desk
from bot.core.digest_report import DigestReport, build
from bot.core.digest_schedule import Period, group_names, latest_due
from bot.core.views import OutgoingMail, snapshot
from bot.store import models as m
from bot.store import upsert

log = logging.getLogger(__name__)

TEMPLATE = "digest/manager/digest"


@dataclass(frozen=True)
class Outcome:
    group: str
    period: Period
    queued: tuple[str, ...]  # recipients whose mail was queued now
    already: tuple[str, ...]  # recipients who had it already (not sent again)


def subject(report: DigestReport, period: Period) -> str:
    kind = "Weekly" if report.period == "weekly" else "Daily"
    when = (f"{period.first_day:%d %b} – {period.last_day:%d %b %Y}" if period.days > 1
            else f"{period.first_day:%a %d %b %Y}")
    return (f"[{report.group}] {kind} digest, {when}: {report.new.value} new, "
            f"{report.resolved.value} resolved, {report.backlog_total.value} in the backlog")


async def report_for(desk: Desk, digest: Digest, group: str, period: Period, *, now: datetime) -> DigestReport:
    async with desk.db.reading() as s:
        return await build(s, desk.settings, digest, group, period, now=now)


async def send(desk: Desk, digest: Digest, group: str, period: Period, *, now: datetime,
               force: bool = False) -> Outcome:
    """Queue the digest of ``group`` for ``period`` to each recipient who has not had it."""
    # Addresses are compared without case (one manager listed twice gets one mail).
    addresses = {r.lower(): r for r in reversed(digest.recipients)}
    recipients = list(dict.fromkeys(r.lower() for r in digest.recipients))
    if not force:
        async with desk.db.reading() as s:
            had = set(await _recorded(s, digest, group, period))
        if not set(recipients) - had:
            return Outcome(group, period, (), tuple(recipients))
    report = await report_for(desk, digest, group, period, now=now)
    values = {"report": snapshot(report)}
    title = subject(report, period)
    async with desk.db.transaction() as s:
        claimed = await _claim(s, digest, group, period, recipients, now=now, force=force)
        for recipient in claimed:
            item = intents.mail(s, now=now, sender=desk.settings.email_out.from_address, mail=OutgoingMail(
                template=TEMPLATE, values=values, to_address=addresses[recipient], subject=title, date=now,
                message_id=f"digest.{secrets.token_hex(8)}@{desk.settings.email_out.reply_domain}"))
            await s.flush()
            row = await s.get_one(m.DigestSend, (digest.name, group, period.start, recipient))
            row.outbox_id = item.id
    log.info("digest %s for %s, %s: queued for %d recipient(s)", digest.name, group,
             period.first_day.isoformat(), len(claimed))
    return Outcome(group, period, tuple(claimed), tuple(r for r in recipients if r not in claimed))


async def _recorded(s: AsyncSession, digest: Digest, group: str, period: Period) -> list[str]:
    return list((await s.scalars(select(m.DigestSend.recipient).where(
        m.DigestSend.digest == digest.name, m.DigestSend.group == group,
        m.DigestSend.period_start == period.start))).all())


async def _claim(s: AsyncSession, digest: Digest, group: str, period: Period, recipients: list[str], *,
                 now: datetime, force: bool) -> list[str]:
    """The recipients this transaction sends to: those without a row (all of them, forced)."""
    insert = upsert.insert_for(s, m.DigestSend).values([
        {"digest": digest.name, "group": group, "period_start": period.start, "recipient": r,
         "times": 1, "created_at": now, "updated_at": now} for r in recipients])
    if force:
        statement = insert.on_conflict_do_update(
            index_elements=["digest", "group", "period_start", "recipient"],
            set_={"times": m.DigestSend.times + 1, "updated_at": now})
    else:
        statement = insert.on_conflict_do_nothing()
    claimed = set((await s.scalars(statement.returning(m.DigestSend.recipient))).all())
    return [r for r in recipients if r in claimed]


async def send_due(desk: Desk, *, now: datetime) -> int:
    """The scheduler's job: each configured digest's latest due period, for each of its
    groups, to whoever has not had it. One group's failure does not stop the others."""
    queued = 0
    for digest in desk.settings.digests:
        period = latest_due(digest, now)
        for group in group_names(desk.settings, digest):
            try:
                queued += len((await send(desk, digest, group, period, now=now)).queued)
            except Exception:  # the next pass tries again; the other digests go out meanwhile
                log.exception("digest %s for %s failed", digest.name, group)
    return queued
