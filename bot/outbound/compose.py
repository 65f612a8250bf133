"""Customer email: jinja2 templates → one RFC 5322 message (text + HTML alternative).

Pure rendering, called at enqueue time: no SMTP, no clock, no database. Threading headers
come ready-made in ``OutgoingEmail`` (core decides them); this module only writes them.
"""

from __future__ import annotations

from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from pathlib import Path

import jinja2

from bot.core.views import OutgoingEmail

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


def template_environment(directory: Path = TEMPLATES) -> jinja2.Environment:
    # Autoescape only the HTML templates: customer text is escaped there, kept as is in text.
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory)),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True)


class EmailComposer:
    def __init__(self, *, from_address: str, from_name: str, loop_marker: str,
                 env: jinja2.Environment | None = None) -> None:
        self.from_address = from_address
        self.from_name = from_name
        self.loop_marker = loop_marker
        self.env = env or template_environment()

    def customer_email(self, mail: OutgoingEmail) -> str:
        context = {"ticket": mail.ticket, "mail": mail, "from_name": self.from_name, **mail.context}
        base = f"email/customer/{mail.template}"
        text = self.env.get_template(f"{base}.txt.j2").render(context)
        html = self.env.get_template(f"{base}.html.j2").render(context)

        msg = EmailMessage(policy=SMTP)
        msg["From"] = Address(display_name=self.from_name, addr_spec=self.from_address)
        msg["To"] = Address(display_name=mail.to_name, addr_spec=mail.to_address) \
            if mail.to_name else mail.to_address
        msg["Reply-To"] = mail.reply_to
        msg["Subject"] = mail.subject
        msg["Date"] = format_datetime(mail.ticket.updated_at)
        msg["Message-ID"] = f"<{mail.message_id}>"
        if mail.in_reply_to:
            msg["In-Reply-To"] = f"<{mail.in_reply_to}>"
        if mail.references:
            msg["References"] = " ".join(f"<{r}>" for r in mail.references)
        if mail.automatic:
            # RFC 3834 §5: mark automatic answers so other robots don't answer them.
            msg["Auto-Submitted"] = "auto-replied"
            # Exchange/Outlook: don't send us out-of-office notices about this mail.
            msg["X-Auto-Response-Suppress"] = "All"
        msg["X-Deskbell-Loop"] = self.loop_marker
        msg["X-Deskbell-Ticket"] = str(mail.ticket.number)
        msg.set_content(text, subtype="plain", charset="utf-8")
        msg.add_alternative(html, subtype="html", charset="utf-8")
        return msg.as_string()
