"""Adapter: Slack interactivity (buttons, modals, ``/ticket``, thread messages, App Home) →
one core action each.

Every listener acks first and works after. Durable effects (cards, thread posts, customer
mail) are outbox rows written by core; only short-lived UI answers go straight to Slack here
(``views.open`` needs its trigger within 3 seconds, ephemeral notes are worthless later).
Idempotency keys: ``action_ts`` for buttons, ``view.id``+``hash`` for submits, ``trigger_id``
for slash commands, ``event_id`` for events. No ticket logic here.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.core import actions, canned, reports
from bot.core.actions import IdempotencyKey
from bot.core.desk import Desk
from bot.core.errors import Rejected
from bot.core.segments import sms_length
from bot.core.staff import Actor, visible_groups
from bot.messages import Attachment
from bot.slack import files as slack_files
from bot.slack import modals
from bot.slack.blocks import escape_mrkdwn
from bot.slack.commands import CommandContext, reminder_instant, run_command
from bot.slack.identity import Directory
from bot.slack.sender import remote_id

log = logging.getLogger(__name__)


def build_bolt_app(desk: Desk, *, client: AsyncWebClient, signing_secret: str,
                   gate: "AckFirst | None" = None) -> AsyncApp:
    app = AsyncApp(client=client, signing_secret=signing_secret, process_before_response=False,
                   raise_error_for_unhandled_request=False)
    Listeners(desk, client, gate=gate or AckFirst()).register(app)
    return app


class AckFirst:
    """Slack's 3-second ack deadline comes before our work.

    Wraps the HTTP handler to count requests not yet answered; core actions wait until none
    are (at most ``max_wait`` seconds, so a steady stream cannot starve them) and then run a
    few at a time. Under a burst of presses every press is acknowledged before the
    transactions queue up behind each other on the event loop.
    """

    def __init__(self, *, slots: int = 2, max_wait: float = 0.25) -> None:
        self.unanswered = 0
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._slots = asyncio.Semaphore(slots)
        self.max_wait = max_wait
        self.working = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def wrap(self, handler: Callable[[Any], Awaitable[Any]]) -> Callable[[Any], Awaitable[Any]]:
        async def handle(request: Any) -> Any:
            self.unanswered += 1
            self._quiet.clear()
            try:
                return await handler(request)
            finally:
                self.unanswered -= 1
                if not self.unanswered:
                    self._quiet.set()
        return handle

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        self.working += 1
        self._idle.clear()
        try:
            try:
                await asyncio.wait_for(self._quiet.wait(), self.max_wait)
            except asyncio.TimeoutError:
                pass
            async with self._slots:
                yield
        finally:
            self.working -= 1
            if not self.working:
                self._idle.set()

    async def drain(self, timeout: float) -> None:
        """On shutdown: let actions already acknowledged to Slack finish (up to ``timeout``)."""
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except asyncio.TimeoutError:
            log.warning("stopping with %s Slack action(s) unfinished", self.working)


class Listeners:
    def __init__(self, desk: Desk, client: AsyncWebClient, *, gate: AckFirst) -> None:
        self.desk, self.client, self.gate = desk, client, gate
        self.directory = Directory(client)

    def register(self, app: AsyncApp) -> None:
        app.action("ticket.reply")(self.on_reply)
        app.action("ticket.reply_anyway")(self.on_reply_anyway)
        app.action("ticket.note")(self.on_note_button)
        app.action("ticket.assign_me")(self.on_assign_me)
        app.action("ticket.close")(self.on_close)
        app.action("ticket.reopen")(self.on_reopen)
        app.action("ticket.unlock")(self.on_unlock)
        app.action("ticket.use_reply_to")(self.on_use_reply_to)
        app.action("ticket.keep_reply_to")(self.on_keep_reply_to)
        app.action("ticket.more")(self.on_more)
        app.action("reply.canned")(self.on_canned)
        app.action("ticket.follow_up")(self.on_follow_up)
        for callback in ("reply", "note", "assign", "transfer", "fields", "category", "link"):
            app.view(callback)(getattr(self, f"submit_{callback}"))
        app.view_closed("reply")(self.on_reply_closed)
        app.command(self.desk.settings.slack.command)(self.on_command)
        app.event("message")(self.on_message)
        app.event("app_home_opened")(self.on_home)

    # ----- helpers ----------------------------------------------------------------------------

    async def _tell(self, user: str, channel: str | None, text: str) -> None:
        """A private note to one person: ephemeral in the channel, else a DM."""
        text = escape_mrkdwn(text)  # it may quote a customer's name or subject
        try:
            if channel:
                await self.client.chat_postEphemeral(channel=channel, user=user, text=text)
            else:
                await self.client.chat_postMessage(channel=user, text=text)
        except SlackApiError as exc:
            log.warning("could not tell user=%s error=%s", user, exc.response.get("error"))

    async def _run(self, user: str, channel: str | None, call: Any, *, quiet: bool = True) -> None:
        """Run one core action; refusals and results go back to the user privately."""
        try:
            async with self.gate.turn():
                result = await call
        except Rejected as exc:
            await self._tell(user, channel, f"⚠️ {exc}")
            return
        except Exception:  # process boundary: the action's transaction rolled back
            log.exception("slack action failed user=%s", user)
            await self._tell(user, channel, "⚠️ That did not work on our side and nothing was changed. "
                                            "Please try again in a moment.")
            return
        if not quiet and not result.duplicate:
            await self._tell(user, channel, result.text)

    @staticmethod
    def _button(body: dict[str, Any]) -> tuple[str, int, str | None, IdempotencyKey]:
        action = body["actions"][0]
        raw = action.get("value") or action.get("selected_option", {}).get("value", "")
        number = int(raw.rsplit(":", 1)[-1])
        channel = (body.get("channel") or {}).get("id")
        key = IdempotencyKey("action_ts", f"{action['action_id']}:{action.get('action_ts', '')}")
        return body["user"]["id"], number, channel, key

    @staticmethod
    def _values(view: dict[str, Any]) -> dict[str, Any]:
        """block_id → the submitted value (text, selected option value, or user id)."""
        values: dict[str, Any] = {}
        for block_id, actions_ in (view.get("state") or {}).get("values", {}).items():
            element = actions_.get("value") or next(iter(actions_.values()), {})
            if "selected_option" in element:
                option = element["selected_option"]
                values[block_id] = option["value"] if option else None
            elif "selected_user" in element:
                values[block_id] = element["selected_user"]
            elif element.get("type") == "file_input":
                values[block_id] = element.get("files") or []
            else:
                values[block_id] = element.get("value")
        return values

    @staticmethod
    def _view_key(view: dict[str, Any]) -> IdempotencyKey:
        return IdempotencyKey("view", f"{view['id']}:{view.get('hash', '')}")

    # ----- buttons ----------------------------------------------------------------------------

    async def on_reply(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        await self._open_reply(body, force=False)

    async def on_reply_anyway(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        await self._open_reply(body, force=True)

    async def _open_reply(self, body: dict[str, Any], *, force: bool) -> None:
        user, number, channel, _ = self._button(body)
        if channel is None and body.get("view"):
            channel = modals.read_metadata(body["view"])[1]
        actor = await self.directory.actor(user)
        try:
            lock = await actions.take_lock(self.desk, actor=actor, number=number, force=force)
            if lock.held_by_other:
                until = f"{lock.expires_at:%H:%M} UTC" if lock.expires_at else "soon"
                view = modals.lock_warning_modal(number, lock.held_by_other, until, channel=channel)
            else:
                ticket, last = await reports.describe(self.desk, number)
                view = modals.reply_modal(ticket, last, self.desk.settings, channel=channel,
                                          canned=await canned.list_responses(self.desk))
        except Rejected as exc:
            await self._tell(user, channel, f"⚠️ {exc}")
            return
        try:
            if force and body.get("view"):
                await self.client.views_update(view_id=body["view"]["id"], view=view)
            else:
                await self.client.views_open(trigger_id=body["trigger_id"], view=view)
        except SlackApiError as exc:
            # No modal (the trigger expired): do not leave "X is replying" on the card.
            log.warning("reply modal not opened ticket=%s error=%s", number, exc.response.get("error"))
            if view.get("callback_id") == "reply":
                await actions.release_lock(self.desk, actor=actor, number=number)

    async def on_canned(self, ack: Any, body: dict[str, Any]) -> None:
        """A canned response picked in the Reply modal replaces the text, its placeholders
        filled in for this ticket ({assignee}: the assignee, else whoever is replying)."""
        await ack()
        view = body["view"]
        number, channel = modals.read_metadata(view)
        user = body["user"]["id"]
        try:
            chosen = await canned.find(self.desk, body["actions"][0]["selected_option"]["value"])
            ticket, last = await reports.describe(self.desk, number)
        except Rejected as exc:
            await self._tell(user, channel, f"⚠️ {exc}")
            return
        writer = await self.directory.actor(ticket.assignee or user)
        current = next((b["block_id"] for b in view["blocks"] if b.get("block_id", "").startswith("text.")),
                       "text.0")
        version = int(current.split(".")[1]) + 1
        await self.client.views_update(view_id=view["id"], hash=view.get("hash"), view=modals.reply_modal(
            ticket, last, self.desk.settings, channel=channel, version=version,
            text=canned.render(chosen.text, ticket, writer.label), canned=await canned.list_responses(self.desk)))

    async def on_follow_up(self, ack: Any, body: dict[str, Any]) -> None:
        """The card's date picker: follow up on that day, 09:00 in the group's business hours."""
        await ack()
        action = body["actions"][0]
        user, channel = body["user"]["id"], (body.get("channel") or {}).get("id")
        number = int(action.get("block_id", "").rsplit(":", 1)[-1])  # "ticket:42"
        key = IdempotencyKey("action_ts", f"{action['action_id']}:{action.get('action_ts', '')}")
        try:
            ticket, _ = await reports.describe(self.desk, number)
            at = reminder_instant(self.desk.settings, ticket.group, action.get("selected_date") or "")
        except Rejected as exc:
            await self._tell(user, channel, f"⚠️ {exc}")
            return
        await self._run(user, channel, actions.set_reminder(
            self.desk, actor=await self.directory.actor(user), number=number, which="follow_up", at=at,
            key=key), quiet=False)

    async def on_note_button(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        _, number, channel, _ = self._button(body)
        await self.client.views_open(trigger_id=body["trigger_id"], view=modals.note_modal(number, channel=channel))

    async def on_assign_me(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        user, number, channel, key = self._button(body)
        actor = await self.directory.actor(user)
        await self._run(user, channel, actions.assign(self.desk, actor=actor, number=number, assignee=actor,
                                                      key=key, only_if_unassigned=True))

    async def on_close(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        user, number, channel, key = self._button(body)
        await self._run(user, channel, actions.close(
            self.desk, actor=await self.directory.actor(user), number=number, key=key))

    async def on_reopen(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        user, number, channel, key = self._button(body)
        await self._run(user, channel, actions.reopen(
            self.desk, actor=await self.directory.actor(user), number=number, key=key))

    async def on_unlock(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        user, number, channel, _ = self._button(body)
        await self._run(user, channel, actions.release_lock(
            self.desk, actor=await self.directory.actor(user), number=number, admin_unlock=True),
            quiet=False)

    async def on_use_reply_to(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        action = body["actions"][0]
        number, _, address = action.get("value", "").partition(":")  # "42:someone@example.org"
        user, channel = body["user"]["id"], (body.get("channel") or {}).get("id")
        key = IdempotencyKey("action_ts", f"{action['action_id']}:{action.get('action_ts', '')}")
        await self._run(user, channel, actions.use_reply_to(
            self.desk, actor=await self.directory.actor(user), number=int(number), address=address,
            key=key), quiet=False)

    async def on_keep_reply_to(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        user, number, channel, key = self._button(body)
        await self._run(user, channel, actions.keep_reply_to(
            self.desk, actor=await self.directory.actor(user), number=number, key=key), quiet=False)

    async def on_more(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        user, number, channel, _ = self._button(body)
        choice = body["actions"][0]["selected_option"]["value"].split(":", 1)[0]
        try:
            ticket, _ = await reports.describe(self.desk, number)
        except Rejected as exc:
            await self._tell(user, channel, f"⚠️ {exc}")
            return
        settings = self.desk.settings
        view = {
            "assign": lambda: modals.assign_modal(number, channel=channel),
            "transfer": lambda: modals.transfer_modal(number, settings, current_group=ticket.group, channel=channel),
            "fields": lambda: modals.fields_modal(ticket, settings, channel=channel),
            "category": lambda: modals.category_modal(ticket, settings, channel=channel),
            "link": lambda: modals.link_modal(number, channel=channel),
        }[choice]()
        await self.client.views_open(trigger_id=body["trigger_id"], view=view)

    # ----- modal submissions ------------------------------------------------------------------

    async def _submit(self, ack: Any, body: dict[str, Any], errors: dict[str, str] | None = None):
        """Ack a submission (with field errors, if any); returns (actor, number, channel, key)."""
        if errors:
            await ack(response_action="errors", errors=errors)
            return None
        await ack()
        view = body["view"]
        number, channel = modals.read_metadata(view)
        return await self.directory.actor(body["user"]["id"]), number, channel, self._view_key(view)

    async def submit_reply(self, ack: Any, body: dict[str, Any]) -> None:
        values = self._values(body["view"])
        text_block = next((k for k in values if k.startswith("text.")), "text.0")
        text = (values.get(text_block) or "").strip()
        shared = values.get("files") or []
        errors = {} if text or shared else {text_block: "Write the reply first."}
        how = values.get("channel") or "auto"
        if shared and how != "sms" and (too_big := self._too_big_for_mail(text, shared)):
            errors["files"] = too_big
        if text and how in ("sms", "both"):
            length = sms_length(text)
            if length.segments > modals.SMS_WARN_SEGMENTS:
                errors[text_block] = (f"As a text this is {length.segments} SMS parts ({length.encoding}, "
                                      f"{length.units} units); at most {modals.SMS_WARN_SEGMENTS}. "
                                      "Shorten it or send it by email.")
        context = await self._submit(ack, body, errors or None)
        if context:
            actor, number, channel, key = context
            try:
                files = await slack_files.fetch(self.client, shared) if shared else []
            except slack_files.FetchFailed as exc:
                await self._tell(actor.slack_user_id, channel, f"⚠️ Nothing was sent: {exc}.")
                return
            await self._run(actor.slack_user_id, channel, actions.reply(
                self.desk, actor=actor, number=number, text=text, key=key,
                channel=how, status_after=values.get("status_after"), files=files))

    def _too_big_for_mail(self, text: str, shared: list[dict[str, Any]]) -> str | None:
        """Said on the file input before anything is fetched: which file makes the mail too big."""
        limit = self.desk.settings.email_out.max_message_bytes
        sizes = [Attachment(name=str(f.get("name") or "file"), content_type="", data=b"",
                            withheld_size=int(f.get("size") or 0)) for f in shared]
        total = len(text.encode()) * 2 + actions.REPLY_OVERHEAD_BYTES + actions.mail_size(sizes)
        if total <= limit:
            return None
        biggest = max(sizes, key=lambda f: f.size)
        return (f"{biggest.name} ({biggest.size / 1048576:.1f} MB) makes the mail {total / 1048576:.1f} MB: "
                f"over the {limit / 1048576:.1f} MB the mail server takes. Remove it or send a smaller file.")

    async def on_reply_closed(self, ack: Any, body: dict[str, Any]) -> None:
        await ack()
        number, channel = modals.read_metadata(body["view"])
        actor = await self.directory.actor(body["user"]["id"])
        try:
            await actions.release_lock(self.desk, actor=actor, number=number)
        except Rejected:
            pass  # someone else holds it now (they pressed "reply anyway"): leave theirs alone

    async def submit_note(self, ack: Any, body: dict[str, Any]) -> None:
        text = (self._values(body["view"]).get("text") or "").strip()
        context = await self._submit(ack, body, None if text else {"text": "Write the note first."})
        if context:
            actor, number, channel, key = context
            await self._run(actor.slack_user_id, channel,
                            actions.note(self.desk, actor=actor, number=number, text=text, key=key))

    async def submit_assign(self, ack: Any, body: dict[str, Any]) -> None:
        target = self._values(body["view"]).get("user")
        context = await self._submit(ack, body, None if target else {"user": "Pick someone."})
        if context:
            actor, number, channel, key = context
            assignee = actor if target == actor.slack_user_id else await self.directory.actor(target)
            await self._run(actor.slack_user_id, channel, actions.assign(
                self.desk, actor=actor, number=number, assignee=assignee, key=key))

    async def submit_transfer(self, ack: Any, body: dict[str, Any]) -> None:
        values = self._values(body["view"])
        note = (values.get("note") or "").strip()
        context = await self._submit(ack, body, None if note else {"note": "Say why: the next person needs it."})
        if context:
            actor, number, channel, key = context
            category, type_ = json.loads(values["category"]) if values.get("category") else (None, None)
            assignee = await self.directory.actor(values["user"]) if values.get("user") else None
            await self._run(actor.slack_user_id, channel, actions.transfer(
                self.desk, actor=actor, number=number, group=values["group"], note_text=note,
                assignee=assignee, category=category, type_=type_, key=key))

    async def submit_fields(self, ack: Any, body: dict[str, Any]) -> None:
        values = self._values(body["view"])
        context = await self._submit(ack, body)
        if context:
            actor, number, channel, key = context
            await self._run(actor.slack_user_id, channel, actions.set_priority(
                self.desk, actor=actor, number=number, priority=int(values["priority"]),
                key=IdempotencyKey(key.kind, key.key + ":priority")))
            await self._run(actor.slack_user_id, channel, actions.set_status(
                self.desk, actor=actor, number=number, status=values["status"],
                key=IdempotencyKey(key.kind, key.key + ":status")))

    async def submit_category(self, ack: Any, body: dict[str, Any]) -> None:
        values = self._values(body["view"])
        context = await self._submit(ack, body)
        if context:
            actor, number, channel, key = context
            category, type_ = json.loads(values["category"])
            await self._run(actor.slack_user_id, channel, actions.set_category(
                self.desk, actor=actor, number=number, category=category, type_=type_, key=key))

    async def submit_link(self, ack: Any, body: dict[str, Any]) -> None:
        other = (self._values(body["view"]).get("other") or "").strip().lstrip("#")
        context = await self._submit(ack, body, None if other.isdigit() else {"other": "A ticket number, like 42."})
        if context:
            actor, number, channel, key = context
            await self._run(actor.slack_user_id, channel, actions.link(
                self.desk, actor=actor, number=number, other=int(other), key=key))

    # ----- slash command, events, home --------------------------------------------------------

    async def on_command(self, ack: Any, body: dict[str, Any], respond: Any) -> None:
        await ack()
        actor = await self.directory.actor(body["user_id"])
        trigger = body.get("trigger_id")
        try:
            async with self.gate.turn():
                text = await run_command(CommandContext(
                    desk=self.desk, actor=actor, directory=self.directory, text=body.get("text", ""),
                    key=IdempotencyKey("trigger_id", trigger) if trigger else None, thread_ticket=None))
        except Exception:  # process boundary: whatever broke, the person who typed it hears so
            log.exception("slash command failed user=%s", body.get("user_id"))
            text = ("⚠️ That did not work on our side and nothing was changed. "
                    "Please try again in a moment.")
        await respond(text=text, response_type="ephemeral")

    async def on_message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        """A staff message in a card's thread is an internal note — never sent to the customer."""
        if event.get("subtype") or event.get("bot_id") or not event.get("thread_ts"):
            return
        if event.get("thread_ts") == event.get("ts"):
            return
        number = await reports.ticket_for_card(self.desk.db,
                                               remote_id=remote_id(event["channel"], event["thread_ts"]))
        if number is None:
            return
        actor = await self.directory.actor(event["user"])
        key = IdempotencyKey("event_id", body.get("event_id") or f"{event['channel']}:{event['ts']}")
        await self._run(actor.slack_user_id, event["channel"], actions.note(
            self.desk, actor=actor, number=number, text=event.get("text", ""), key=key, from_thread=True))

    async def on_home(self, event: dict[str, Any]) -> None:
        if event.get("tab", "home") != "home":
            return
        user = event["user"]
        now = self.desk.clock.now()
        groups = visible_groups(self.desk.settings, Actor(user))
        mine = await reports.list_tickets(self.desk.db, now=now, status="open", assignee=user, queue_order=True,
                                          settings=self.desk.settings)
        queue = await reports.list_tickets(self.desk.db, now=now, status="open", groups=groups, queue_order=True,
                                           settings=self.desk.settings)
        await self.client.views_publish(user_id=user, view=modals.home_view(mine=mine, queue=queue))
