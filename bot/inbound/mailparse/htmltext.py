"""Adapter helper for ``mailparse``: an HTML part → readable plain text.

lxml parses the document; tables become plain blocks and inline styles keep only ``display``;
inscriptis then renders it with a CSS profile without padding, so the text stays linear in
the input. Must not fetch anything the HTML references and must not leave markup in the
text. No ticket logic here.
"""

from __future__ import annotations

from copy import deepcopy

import inscriptis
import lxml.etree
import lxml.html
from inscriptis.css_profiles import CSS_PROFILES
from inscriptis.model.config import ParserConfig

from bot.inbound.mailparse.parts import _Walk

# HTML rendering limits (see _html_to_text).
MAX_HTML_CHARS = 4_000_000
_TABLE_BLOCKS = {"table", "thead", "tbody", "tfoot", "tr", "caption"}


def _unpadded_css() -> dict:
    css = deepcopy(CSS_PROFILES["relaxed"])
    for element in css.values():
        element.padding_inline = 0
    return css


_INSCRIPTIS_CONFIG = ParserConfig(css=_unpadded_css())


def _html_to_text(html: str, walk: _Walk) -> str:
    """Readable text of an HTML part, by inscriptis on a defused copy of the document.

    Inscriptis pads every row of a table to its widest cell and indents by the sum of nested
    paddings (up to 100,000 em each), so 70 KB of crafted HTML renders to 20 MB of spaces.
    Before rendering, tables become plain blocks, inline styles keep only ``display`` (hidden
    preheaders stay hidden) and the CSS profile has no padding, which keeps the text linear in
    the input.
    """
    if len(html) > MAX_HTML_CHARS:
        walk.defect(f"HTML part longer than {MAX_HTML_CHARS} characters; rest not rendered")
        html = html[:MAX_HTML_CHARS]
    html = html.lstrip()
    if html.startswith("<?xml"):
        # lxml refuses a str that carries an XML encoding declaration.
        html = html[html.find("?>") + 2 :] if "?>" in html else ""
    try:
        tree = lxml.html.document_fromstring(html)
    except (lxml.etree.ParserError, ValueError):
        return ""  # no elements at all ("Document is empty")
    for element in tree.iter():
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions
        tag = element.tag.lower()
        if tag in _TABLE_BLOCKS:
            element.tag = "div"
        elif tag in ("td", "th"):
            element.tag = "span"
            element.tail = " " + (element.tail or "")
        for attribute in ("align", "valign"):
            element.attrib.pop(attribute, None)
        style = element.attrib.pop("style", None)
        if style:
            rules = style.split(";")
            kept = [rule for rule in rules if rule.partition(":")[0].strip().lower() == "display"]
            if kept:
                element.set("style", ";".join(kept))
    text = inscriptis.get_text(lxml.html.tostring(tree, encoding="unicode"), _INSCRIPTIS_CONFIG)
    return "\n".join(line.rstrip() for line in text.splitlines()).strip("\n")
