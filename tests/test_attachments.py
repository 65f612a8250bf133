"""Customers' files reach the card's thread (issue 21, acceptance 1, 2, 4 and 5).

Mail goes through the real SMTP door; the files go to a fake Slack Web API that implements the
upload flow of ``files_upload_v2`` (getUploadURLExternal, the bytes, completeUploadExternal) and
refuses what Slack refuses (a channel name instead of its id, a wrong length, an unknown
thread). Download links are fetched over HTTP from the app's own web server.
"""

from __future__ import annotations

import asyncio
import hashlib
from email.message import EmailMessage
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
import tnefparse
from sqlalchemy import func, select

import yaml

from bot.config import Settings
from bot.store.db import Database
from tests.test_process import BotProcess, _send, write_config
from bot.core import intents, reports
from bot.store import models as m
from tests import mailfixtures as fx
from tests.conftest import DOMAIN, deliver, running, settings_dict, wait_until
from tests.tnef_writer import TnefFile, tnef_stream

SECRET = "file-link-secret-for-tests"
PDF = b"%PDF-1.4\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(300)
CONTRACT = b"%PDF-1.7 contract " + bytes(range(200))


def settings(tmp_path, fake_slack, **overrides) -> Settings:
    data = settings_dict(tmp_path, slack_url=fake_slack.url,
                         attachments={"link_secret": SECRET, **overrides.pop("attachments", {})}, **overrides)
    return Settings.model_validate(data)


def mail_with_files(*, subject: str = "Invoice problem", message_id: str = "<files.1@example.net>",
                    files: list[tuple[str, str, bytes]] | None = None, inline_png: bool = True,
                    winmail: bool = True) -> bytes:
    """A customer's mail: text and HTML (with an inline cid: image), a PDF, Outlook's
    winmail.dat holding a contract, and a file with a non-ASCII name (RFC 2231)."""
    msg = EmailMessage()
    msg["From"] = "Ann Customer <ann@example.net>"
    msg["To"] = f"help@{DOMAIN}"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg.set_content("See the attached files.")
    if inline_png:
        msg.add_alternative('<p>See <img src="cid:shot1@example.net"></p>', subtype="html")
        msg.get_payload()[1].add_related(PNG, "image", "png", cid="<shot1@example.net>", filename="screenshot.png")
    for name, ctype, data in files if files is not None else [("invoice.pdf", "application/pdf", PDF),
                                                              ("Übersicht März.txt", "text/plain", "Grüße".encode())]:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=name)
    if winmail:
        msg.add_attachment(tnef_stream([TnefFile("contract.pdf", CONTRACT)]), maintype="application",
                           subtype="ms-tnef", filename="winmail.dat")
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


def local(app, link: str) -> str:
    """The link as the app made it (web.public_url), sent to where the test's app listens."""
    host, port = app.listening.web
    return urlsplit(link)._replace(netloc=f"{host}:{port}").geturl()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def files_in_thread(app, fake_slack, count: int) -> list[dict]:
    [card] = await wait_until(lambda: fake_slack.cards() or None, timeout=15)
    await wait_until(lambda: len(fake_slack.shared_files(card)) >= count, timeout=15)
    await asyncio.sleep(0.2)  # anything more would show up now
    return fake_slack.shared_files(card)


async def test_each_file_of_a_mail_is_uploaded_once_into_the_cards_thread(tmp_path, fake_slack):
    async with running(settings(tmp_path, fake_slack)) as app:
        await deliver(app, mail_with_files())
        shared = await files_in_thread(app, fake_slack, 4)
        shown = await reports.show_ticket(app.db, 1, now=app.clock.now(), settings=app.settings)

    assert sorted((f["name"], sha(f["data"])) for f in shared) == sorted([
        ("screenshot.png", sha(PNG)), ("invoice.pdf", sha(PDF)), ("Übersicht März.txt", sha("Grüße".encode())),
        ("contract.pdf", sha(CONTRACT))])
    uploads = [c for c in fake_slack.calls if c.method == "files.completeUploadExternal"]
    assert len(uploads) == 4 and all(c.ok for c in uploads)
    [card] = fake_slack.cards()
    assert "📎 4 files" in str(card.args["blocks"])
    listed = shown["messages"][0]["attachments"]
    assert sorted((a["name"], a["sha256"], a["withheld"]) for a in listed) == sorted(
        (f["name"], sha(f["data"]), False) for f in shared)
    assert {a["name"]: a["sniffed_type"] for a in listed}["screenshot.png"] == "image/png"


async def test_a_real_outlook_winmail_dat_is_unpacked_into_its_file(tmp_path, fake_slack):
    """The shared fixture (an Outlook winmail.dat holding one file), when present."""
    raw = fx.shared_winmail_dat()
    if raw is None:
        pytest.skip("the shared winmail.dat fixture is not on this machine")
    inside = [(a.long_filename(), a.data) for a in tnefparse.TNEF(fx.SHARED_WINMAIL_PATH.read_bytes()).attachments]
    async with running(settings(tmp_path, fake_slack)) as app:
        await deliver(app, raw)
        shared = await files_in_thread(app, fake_slack, len(inside))
    assert [(f["name"], f["data"]) for f in shared] == inside


async def test_an_upload_whose_answer_was_lost_is_not_made_twice(tmp_path, fake_slack):
    """Slack shared the file but its answer never arrived (a dropped connection, a crash right
    after): the next attempt finds the file in the thread instead of uploading it again."""
    fake_slack.lose_upload_answers = 1
    async with running(settings(tmp_path, fake_slack)) as app:
        await deliver(app, mail_with_files(inline_png=False, winmail=False,
                                           files=[("invoice.pdf", "application/pdf", PDF)]))
        [card] = await wait_until(lambda: fake_slack.cards() or None, timeout=15)
        await wait_until(lambda: _all_sent(app), timeout=20)
    assert [f["name"] for f in fake_slack.shared_files(card)] == ["invoice.pdf"]
    assert len([c for c in fake_slack.calls if c.method == "files.getUploadURLExternal"]) == 1


async def test_a_worker_killed_mid_upload_uploads_each_file_once_after_a_restart(tmp_path, fake_slack):
    """SIGKILL of `deskbell worker` after Slack shared the file and before its answer came back;
    a new worker takes the item over when its lease runs out and finds the file there."""
    config = write_config(tmp_path, slack_url=fake_slack.url, attachments={"link_secret": SECRET},
                          outbox={"lease_seconds": 2})
    smtp = BotProcess(config, tmp_path, role="smtp").start()
    try:
        await asyncio.to_thread(_send, smtp.smtp_port, mail_with_files(inline_png=False, winmail=False,
                                                                        files=[("invoice.pdf", "application/pdf", PDF)]))
        fake_slack.upload_answer_delay = 30.0
        worker = BotProcess(config, tmp_path, role="worker").start()
        [card] = await wait_until(lambda: fake_slack.cards() or None, timeout=20)
        await wait_until(lambda: fake_slack.shared_files(card) or None, timeout=20)
        worker.kill()  # mid-upload: shared, not yet recorded
        fake_slack.upload_answer_delay = 0.0
        worker = BotProcess(config, tmp_path, role="worker").start()
        try:
            settings = Settings.model_validate(yaml.safe_load(config.read_text()))
            db = Database(settings.database.url)
            try:
                await wait_until(lambda: _files_sent(db), timeout=30)
            finally:
                await db.dispose()
        finally:
            worker.kill()
    finally:
        smtp.kill()
    assert [f["name"] for f in fake_slack.shared_files(card)] == ["invoice.pdf"]
    assert len([c for c in fake_slack.calls if c.method == "files.getUploadURLExternal"]) == 1


async def _files_sent(db) -> bool:
    async with db.reading() as s:
        return await s.scalar(select(func.count(m.OutboxItem.id)).where(
            m.OutboxItem.kind == intents.FILE, m.OutboxItem.status == "sent")) == 1


async def _all_sent(app) -> bool:
    async with app.db.reading() as s:
        return not await s.scalar(select(func.count(m.OutboxItem.id)).where(
            m.OutboxItem.kind == intents.FILE, m.OutboxItem.status != "sent"))


async def test_a_file_over_the_slack_limit_is_a_signed_link_that_downloads_its_bytes(tmp_path, fake_slack):
    big = bytes(range(256)) * 400  # 100 KB
    data = settings(tmp_path, fake_slack, slack={"max_upload_bytes": 50_000})
    async with running(data) as app:
        await deliver(app, mail_with_files(inline_png=False, winmail=False,
                                           files=[("logs.bin", "application/octet-stream", big)]))
        [card] = await wait_until(lambda: fake_slack.cards() or None, timeout=15)
        post = await wait_until(lambda: next((c for c in fake_slack.thread_of(card) if "logs.bin" in c.args.get("text", "")), None), timeout=15)
        section = post.args["blocks"][0]["text"]["text"]
        link = local(app, section.split("<", 1)[1].split("|", 1)[0].replace("&amp;", "&"))
        async with aiohttp.ClientSession() as http:
            async with http.get(link) as answer:
                assert answer.status == 200 and await answer.read() == big
                assert answer.headers["Content-Disposition"].startswith("attachment;")
                assert answer.headers["X-Content-Type-Options"] == "nosniff"
                assert answer.headers["Content-Type"] == "application/octet-stream"
            parts = urlsplit(link)
            query = parse_qs(parts.query)
            base = f"{parts.scheme}://{parts.netloc}"
            tampered = [f"{parts.path}?exp={query['exp'][0]}&sig={'0' * 64}",  # bad signature
                        f"{parts.path}?exp={int(query['exp'][0]) + 60}&sig={query['sig'][0]}",  # stretched
                        f"/files/999?exp={query['exp'][0]}&sig={query['sig'][0]}",  # another file
                        f"{parts.path}", f"{parts.path}?exp=1&sig={query['sig'][0]}"]  # none, expired
            for path in tampered:
                async with http.get(base + path) as answer:
                    assert answer.status == 403, path
    assert not [c for c in fake_slack.calls if c.method == "files.completeUploadExternal"]


async def test_hostile_names_and_contents_are_kept_safely_and_served_as_downloads(tmp_path, fake_slack):
    hostile = [("../../etc/passwd", "text/plain", b"root:x:0:0"),
               ("nul\x00byte.txt", "text/plain", b"nul"),
               ("y" * 300 + ".txt", "text/plain", b"long"),
               ("page.html", "text/html", b"<html><script>alert(1)</script></html>"),
               ("logo.svg", "image/svg+xml", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
               ("empty.txt", "text/plain", b""),
               ("photo.png", "image/png", b"<html><body>not a png</body></html>"),
               ("setup.exe", "application/octet-stream", b"MZ\x90\x00" + bytes(200))]
    data = settings(tmp_path, fake_slack, attachments={"store": "directory", "directory": str(tmp_path / "files")})
    async with running(data) as app:
        await deliver(app, mail_with_files(inline_png=False, winmail=False, files=hostile))
        [card] = await wait_until(lambda: fake_slack.cards() or None, timeout=15)
        await wait_until(lambda: _all_sent(app), timeout=20)
        async with app.db.reading() as s:
            rows = (await s.scalars(select(m.AttachmentRow).order_by(m.AttachmentRow.id))).all()
        served = {}
        async with aiohttp.ClientSession() as http:
            from bot.core.attachment_files import link_for
            for row in rows:
                async with http.get(local(app, link_for(app.settings, row.id, now=app.clock.now()))) as answer:
                    served[row.name] = (answer.status, answer.headers["Content-Type"].split(";")[0],
                                        answer.headers["Content-Disposition"], await answer.read())
    names = [row.name for row in rows]
    assert len(rows) == len(hostile)
    assert all("/" not in n and "\\" not in n and "\x00" not in n and len(n.encode()) <= 255 for n in names)
    # Served only as downloads; nothing a browser would render as a page of ours.
    for name, (status, ctype, disposition, body) in served.items():
        assert status == 200 and disposition.startswith("attachment;")
        assert ctype == "application/octet-stream", (name, ctype)  # even the "PNG" that is HTML
    # Every byte is under the storage directory, named by its hash; nothing was written elsewhere.
    stored = sorted(p for p in (tmp_path / "files").rglob("*") if p.is_file())
    assert {p.name for p in stored} == {sha(d) for _, _, d in hostile}
    assert not (tmp_path / "etc").exists()
    # The program is never uploaded: it is a flagged link.
    shared = {f["name"] for f in fake_slack.shared_files(card)}
    assert "setup.exe" not in shared and "empty.txt" not in shared and len(shared) == len(hostile) - 2
    [flagged] = [c for c in fake_slack.thread_of(card) if "setup.exe" in c.args.get("text", "")]
    assert "⚠ .exe" in flagged.args["blocks"][0]["text"]["text"]
    assert "⚠ .exe setup.exe" in str(card.args["blocks"]) and "⚠ .txt" not in str(card.args["blocks"])


async def test_the_same_file_in_twenty_messages_is_stored_once(tmp_path, fake_slack):
    five_mb = bytes(range(256)) * (5 * 4096)
    data = settings(tmp_path, fake_slack, smtp_in={"max_message_bytes": 10 * 1024 * 1024})
    async with running(data, roles=("smtp", "worker")) as app:
        for n in range(20):
            await deliver(app, mail_with_files(message_id=f"<same.{n}@example.net>", subject=f"Log {n}",
                                               inline_png=False, winmail=False,
                                               files=[("trace.bin", "application/octet-stream", five_mb)]))
        async with app.db.reading() as s:
            blobs = await s.scalar(select(func.count()).select_from(m.Blob).where(m.Blob.sha256 == sha(five_mb)))
            rows = await s.scalar(select(func.count(m.AttachmentRow.id)).where(m.AttachmentRow.sha256 == sha(five_mb)))
            raws = await s.scalar(select(func.count(m.RawMessage.id)))
    assert (blobs, rows, raws) == (1, 20, 20)
