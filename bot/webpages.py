"""Adapter: the HTML pages customers open (templates/web/), rendered from core's views.

Autoescaped jinja2: every customer's and staff's text is escaped. Must not query anything or
decide what a customer may see (``core.customer_page`` does).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "web"


class WebPages:
    def __init__(self, directory: Path = TEMPLATES) -> None:
        self.env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(directory)), autoescape=True,
                                      undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)

    def render(self, name: str, **context: Any) -> str:
        return self.env.get_template(f"{name}.html.j2").render(context)
