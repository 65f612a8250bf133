"""Adapter helper for ``mailparse``: an HTML part → readable plain text for a Slack card.

selectolax's Lexbor engine builds the tree as a browser would (HTML5 tree construction: what
follows a stray ``</body>`` or ``</html>`` still belongs to the body); ``_Writer`` then walks it
once and writes plain text: inline elements add no spaces (``Hel<span>l</span>o`` is one word),
blocks and ``<br>`` break lines, list items get bullets or numbers, table rows go on lines with
" | " between cells, and blockquotes get "> " marks so quoted history reads as quoted.

Must not fetch anything the HTML references, must not leave markup in the text, must not let the
text grow faster than the input, and must not hand the parser a document it needs super-linear
time for (``_depth_cut``). No ticket logic here.
"""

from __future__ import annotations

import bisect
import re

from selectolax.lexbor import LexborHTMLParser

from bot.inbound.mailparse.parts import _Walk

# HTML rendering limits (see _html_to_text and _depth_cut).
MAX_HTML_CHARS = 4_000_000
# Lexbor, like every HTML5 tree builder, scans the stack of open elements at each block start
# tag, so nesting costs O(depth²): 8,000 nested <div>s take 35 ms, 64,000 take 8 s. Browsers cap
# the depth (Blink at 512); past MAX_HTML_DEPTH the rest of the part is not rendered.
MAX_HTML_DEPTH = 256
_FAST_TAGS = 8_000  # a document with at most this many "<" is parsed without the depth scan

# Elements whose content is never shown. "img" shows no alt text: in mail it is a logo or a
# tracking pixel far more often than a picture the customer describes.
_HIDDEN = frozenset({
    "head", "title", "script", "style", "template", "noscript", "svg", "math", "img", "object",
    "iframe", "audio", "video", "canvas", "map", "x-select", "datalist", "input", "textarea",
})
# Line breaks a block element asks for around itself: 2 = a blank line, 1 = a new line.
_BLOCK_BREAKS = {
    **dict.fromkeys(("p", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "hr",
                     "ul", "ol", "dl", "figure", "fieldset"), 2),
    **dict.fromkeys(("div", "li", "dt", "dd", "tr", "table", "caption", "thead", "tbody",
                     "tfoot", "section", "article", "header", "footer", "nav", "aside", "main",
                     "center", "address", "form", "details", "summary", "legend", "figcaption",
                     "hgroup", "search", "dialog", "menu", "dir", "listing", "xmp", "body"), 1),
}
_BULLETS = ("• ", "◦ ", "▪ ")
_MAX_QUOTE_MARKS = 10  # ">>>>>>>>>> " at most, however deep the blockquotes
_MAX_LIST_INDENT = 4  # nested lists indent two spaces per level, up to this many levels

# A list box's tags: "<select name=x>", "</SELECT>", not "<selected>"
_SELECT_TAG = re.compile(r"<(/?)select(?![^\t\n\f\r />])", re.IGNORECASE)
# CSS that hides an element: "display: none", "DISPLAY:NONE !important"
_DISPLAY_NONE = re.compile(r"display\s*:\s*none", re.IGNORECASE)
# CSS that turns an inline element (a button link, a span) into a block: "display:block"
_DISPLAY_BLOCK = re.compile(r"display\s*:\s*block", re.IGNORECASE)
# CSS that keeps line breaks as written: "white-space: pre-wrap", "white-space:pre"
_WHITE_SPACE_PRE = re.compile(r"white-space\s*:\s*pre", re.IGNORECASE)
# HTML's collapsible white space (not U+00A0: "&nbsp;&nbsp;" keeps its width): "a \n\t b" → "a b"
_HTML_SPACE = re.compile(r"[ \t\n\r\f]+")
# Invisible characters newsletters pad preheaders with: "Sale\u200c\u034f\u00ad" → "Sale"
_INVISIBLE = re.compile("[\u00ad\u034f\u200b\u200c\u2060\ufeff]")
# Three or more line breaks (lines that were only spaces included): "a\n\n\n\nb" → "a\n\nb"
_EXTRA_BLANK_LINES = re.compile(r"\n{3,}")


def _html_to_text(html: str, walk: _Walk) -> str:
    """Readable text of an HTML part; the rest of an oversized or overdeep part is a defect."""
    if len(html) > MAX_HTML_CHARS:
        walk.defect(f"HTML part longer than {MAX_HTML_CHARS} characters; rest not rendered")
        html = html[:MAX_HTML_CHARS]
    # A list box never shows in mail, and parsers treat what is in one in ways that changed
    # over the years (and that _depth_cut cannot follow): it becomes an unknown element.
    html = _SELECT_TAG.sub(r"<\1x-select", html)
    if html.count("<") > _FAST_TAGS:
        cut = _depth_cut(html)
        if cut is not None:
            walk.defect(f"HTML nested deeper than {MAX_HTML_DEPTH} elements; rest not rendered")
            html = html[:cut]
    tree = LexborHTMLParser(html)
    writer = _Writer(budget=2 * len(html) + 1000)
    _walk_tree(tree.root, writer)
    return writer.result()


# ---------------------------------------------------------------- the depth scan

# One token of the depth scan, kept to the HTML5 tokenizer where it decides what is markup:
# a comment opener "<!--", a bogus comment "<!DOCTYPE html>" / "<?xml …?>" / "</ 3>", or a tag
# whose quoted attribute values may hold ">": '<a title="x>y" href=z>', "</DIV >", "<br/>"
_SCAN_TOKEN = re.compile(
    r"<!--|<[!?][^>]*>?|</(?![A-Za-z])[^>]*>?|<(/?)([A-Za-z][^\t\n\f\r />]*)"
    r"(?:[\t\n\f\r /]+|[^\t\n\f\r />][^\t\n\f\r />=]*"
    r"(?:[\t\n\f\r ]*=[\t\n\f\r ]*(?:\"[^\"]*\"|'[^']*'|[^\t\n\f\r >\"'][^\t\n\f\r >]*))?)*(>)?"
)
# Any text between tags: "a", " x "
_NOT_SPACE = re.compile(r"[^\t\n\f\r ]")
# Where a comment ends: "-->" or "--!>"; "<!-->" and "<!--->" are empty comments.
_COMMENT_END = re.compile(r"--!?>")
_VOID = frozenset({
    "area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "image", "img",
    "input", "keygen", "link", "meta", "param", "source", "track", "wbr",
})
_RAW_TEXT = frozenset({"script", "style", "xmp", "iframe", "noembed", "noframes", "textarea",
                       "title"})
_FORMATTING = frozenset({"a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small",
                         "strike", "strong", "tt", "u"})
_HEADINGS = ("h1", "h2", "h3", "h4", "h5", "h6")
_CLOSES_P = frozenset({
    "address", "article", "aside", "blockquote", "center", "details", "dialog", "dir", "div",
    "dl", "fieldset", "figcaption", "figure", "footer", "header", "hgroup", "main", "menu", "nav",
    "ol", "p", "search", "section", "summary", "ul", *_HEADINGS, "pre", "listing", "form", "li",
    "dd", "dt", "table", "hr", "xmp",
})
_SCOPE = frozenset({"applet", "caption", "html", "table", "td", "th", "marquee", "object",
                    "template", "foreignobject", "desc", "title", "mi", "mo", "mn", "ms",
                    "mtext", "annotation-xml"})  # "title": SVG's; HTML's is raw text
_SPECIAL = _SCOPE | _CLOSES_P | frozenset({
    "area", "base", "basefont", "bgsound", "body", "br", "button", "col", "colgroup", "embed",
    "frame", "frameset", "head", "iframe", "img", "input", "keygen", "link", "meta", "noembed",
    "noframes", "noscript", "param", "plaintext", "script", "select", "source", "style",
    "tbody", "textarea", "tfoot", "thead", "title", "tr", "track", "wbr",
})
_TABLE_PARTS = frozenset({"td", "th", "tr", "tbody", "thead", "tfoot", "caption", "table"})
_TABLE_SIBLINGS = {
    "td": ("td", "th"), "th": ("td", "th"), "tr": ("tr",),
    "tbody": ("tbody", "thead", "tfoot"), "thead": ("tbody", "thead", "tfoot"),
    "tfoot": ("tbody", "thead", "tfoot"),
}
# HTML start tags that end the <svg> or <math> they appear in (HTML5 §13.2.6.5).
_BREAKOUT = frozenset({
    "b", "big", "blockquote", "body", "br", "center", "code", "dd", "div", "dl", "dt", "em",
    "embed", *_HEADINGS, "head", "hr", "i", "img", "li", "listing", "menu", "meta", "nobr", "ol",
    "p", "pre", "ruby", "s", "small", "span", "strong", "strike", "sub", "sup", "table", "tt",
    "u", "ul", "var", "font",
})
# A <font> that is an HTML breakout: '<font color="red">', "<font size=2>"
_FONT_BREAKOUT = re.compile(r"[\s/](?:color|face|size)\s*=")
# What may stand before the "/>" of a self-closing tag: a space, a quote, or the tag name itself
_SELF_CLOSE_AFTER = frozenset("\t\n\f\r \"'")
# Start tags that do not reopen closed formatting elements: blocks and table parts.
_NO_REOPEN = _CLOSES_P | frozenset({
    "table", "caption", "col", "colgroup", "tbody", "td", "tfoot", "th", "thead", "tr", "hr",
    "param", "source", "track", "frame", "frameset", "head", "body", "html", "template",
    "textarea", "iframe", "noembed", "noframes", "noscript", "plaintext", "script", "style",
    "title", "base", "basefont", "bgsound", "link", "meta",
})
# What a start tag does besides opening its element (see _DepthScan.close_previous).
_START_RULES = {
    **dict.fromkeys(_VOID | {"html", "body", "head", "frameset"}, "skip"),
    **dict.fromkeys(_HEADINGS, "heading"),
    **dict.fromkeys(("li", "dd", "dt"), "item"),
    **dict.fromkeys((*_TABLE_SIBLINGS, "caption", "colgroup"), "table"),
    "option": "option", "optgroup": "option", "button": "button",
}
# The categories an open element counts in (see _DepthScan.in_scope).
_CATEGORIES = {
    "scope": _SCOPE,
    "button": _SCOPE | {"button"},
    "list": _SCOPE | {"ol", "ul"},
    "table": frozenset({"html", "table", "template"}),
    "special": _SPECIAL,
    "li_stop": _SPECIAL - {"address", "div", "p"},
    "foreign": frozenset({"svg", "math"}),
    "integration": frozenset({"foreignobject", "desc", "title", "mi", "mo", "mn", "ms", "mtext",
                              "annotation-xml"}),
    "marker": frozenset({"applet", "object", "marquee", "template", "td", "th", "caption"}),
}


def _depth_cut(html: str) -> int | None:
    """Where the element nesting of ``html`` first exceeds MAX_HTML_DEPTH, or None.

    A cost guard, not a parser: it follows the HTML5 rules that open and close elements (end
    tags within scope, a <p> or <li> closing the previous one, table cells, formatting elements
    reopened) and, where it cannot follow them, errs towards counting deeper than the real
    tree. Linear in the input.
    """
    scan = _DepthScan()
    skip = _Skipper(html)
    pos = 0
    while (match := _SCAN_TOKEN.search(html, pos)) is not None:
        if _NOT_SPACE.search(html, pos, match.start()):
            scan.reopen()  # text reopens formatting elements a block closed
        pos = match.end()
        name = match.group(2)
        if name is None:
            if match.group(0) == "<!--":
                pos = skip.comment(pos)
            continue
        name = name.lower()  # (a tag without its ">" may end the document; it counts anyway)
        if match.group(1):
            scan.end_tag(name)
            continue
        if name in _RAW_TEXT and not scan.foreign():
            end = skip.raw_text(name, pos)
            if end >= 0:
                pos = end
                continue
        if scan.start_tag(name, *_start_flags(match.group(0).lower(), name)) > MAX_HTML_DEPTH:
            return match.start()
    return None


def _start_flags(tag: str, name: str) -> tuple[str, bool, bool]:
    """The tag as written, whether it closes itself ("<path/>", '<path d="M0"/>', "<br />",
    not "<a href=x/>" whose href is "x/"), and whether it ends an <svg> it is in (an HTML
    element does; a <font> only with color, face or size)."""
    self_closing = tag.endswith("/>") and (
        tag[-3] in _SELF_CLOSE_AFTER or len(tag) == len(name) + 3)
    breakout = name in _BREAKOUT and (name != "font" or bool(_FONT_BREAKOUT.search(tag)))
    return tag, self_closing, breakout


class _Skipper:
    """Finds where comments and raw text (<style>, <script>) end. When an end is missing, the
    rest of the document is scanned as markup (counting too much, never too little), and the
    search is not repeated: there is no end after a later start either."""

    def __init__(self, html: str) -> None:
        self.html = html
        self.lower = html.lower()
        self.missing: dict[str, int] = {}  # what has no end after this position

    def comment(self, pos: int) -> int:
        """After the comment that starts at ``pos`` ("<!--" just read)."""
        if self.html.startswith((">", "->"), pos):
            return self.html.index(">", pos) + 1  # "<!-->" and "<!--->" are empty comments
        if pos >= self.missing.get("<!--", len(self.html) + 1):
            return pos
        end = _COMMENT_END.search(self.html, pos)
        if end is None:
            self.missing["<!--"] = pos
            return pos
        return end.end()

    def raw_text(self, name: str, pos: int) -> int:
        """After the "</name" that ends a raw-text element (-1: none); only "</style" followed
        by a space, "/" or ">" ends <style>, not "</styles"."""
        needle = "</" + name
        if pos >= self.missing.get(needle, len(self.lower) + 1):
            return -1
        start = pos
        while True:
            pos = self.lower.find(needle, pos)
            if pos < 0:
                self.missing[needle] = start
                return -1
            pos += len(needle)
            if pos >= len(self.lower) or self.lower[pos] in "\t\n\f\r />":
                return pos


_CATEGORIES_OF: dict[str, tuple[str, ...]] = {}


def _categories(name: str) -> tuple[str, ...]:
    """The categories of _CATEGORIES that ``name`` is in, looked up once per name."""
    found = _CATEGORIES_OF.get(name)
    if found is None:
        found = tuple(category for category, members in _CATEGORIES.items() if name in members)
        if len(_CATEGORIES_OF) < 1000:  # hostile input may invent any number of tag names
            _CATEGORIES_OF[name] = found
    return found


class _Formatting:
    """One entry of the list of active formatting elements (<b>, <font>, <a> …)."""

    __slots__ = ("name", "tag", "index", "segment")

    def __init__(self, name: str, tag: str, index: int, segment: "_Segment") -> None:
        self.name, self.tag, self.segment = name, tag, segment
        self.index = index  # its place on the stack; -1 while a block has closed it


class _Segment:
    """The active formatting elements since the last open marker (a table cell, an <object>)."""

    __slots__ = ("order", "by_tag", "by_name", "closed")

    def __init__(self) -> None:
        self.order: list[_Formatting] = []  # the list itself
        self.by_tag: dict[str, list[_Formatting]] = {}
        self.by_name: dict[str, list[_Formatting]] = {}
        self.closed = 0  # entries a block closed: the browser may reopen them


class _DepthScan:
    """The stack of open elements as an HTML5 tree builder would have it, by name only.

    Formatting elements follow HTML5's list of active formatting elements: one that a block
    closed (``<p><b>x</p>``) is reopened by the next text or inline element, and the copy stays
    open until something closes it; at most three alike are kept in the list ("Noah's Ark"),
    though those still open stay open; an end tag that cannot close its element because a block
    was opened inside it leaves the depth as it was. Closed entries count as open: the next
    text may reopen them.
    """

    def __init__(self) -> None:
        self.names: list[str] = []
        self.open: dict[str, list[int]] = {}  # name → stack indexes where it is open
        self.marks: dict[str, list[int]] = {category: [] for category in _CATEGORIES}
        self.entries: list[_Formatting | None] = []  # per stack index, its formatting entry
        self.segments: list[_Segment] = [_Segment()]
        self.closed = 0  # entries closed by a block, in all segments

    def depth(self) -> int:
        return len(self.names) + self.closed

    def foreign(self) -> bool:
        """Inside <svg> or <math> and not back in HTML through <foreignObject> and the like."""
        roots, doors = self.marks["foreign"], self.marks["integration"]
        return bool(roots) and (not doors or doors[-1] < roots[-1])

    def top(self) -> str:
        return self.names[-1] if self.names else ""

    def last(self, *names: str) -> int:
        """Stack index of the innermost open element of these names, -1 if none."""
        best = -1
        for name in names:
            indexes = self.open.get(name)
            if indexes and indexes[-1] > best:
                best = indexes[-1]
        return best

    def in_scope(self, index: int, category: str) -> bool:
        """HTML5 "has an element in scope": no boundary element of ``category`` above it."""
        marks = self.marks[category]
        return index >= 0 and (not marks or marks[-1] <= index)

    def push(self, name: str, entry: _Formatting | None = None) -> None:
        index = len(self.names)
        self.names.append(name)
        self.entries.append(entry)
        self.open.setdefault(name, []).append(index)
        for category in _categories(name):
            self.marks[category].append(index)
            if category == "marker":
                self.segments.append(_Segment())

    def pop_to(self, index: int) -> None:
        while len(self.names) > index:
            name = self.names.pop()
            entry = self.entries.pop()
            self.open[name].pop()
            if entry is not None:  # closed by a block: the browser reopens it
                entry.index = -1
                entry.segment.closed += 1
                self.closed += 1
            for category in _categories(name):
                self.marks[category].pop()
                if category == "marker":  # formatting begun in a table cell ends with it
                    self.closed -= self.segments.pop().closed

    def reopen(self) -> None:
        """HTML5 "reconstruct the active formatting elements", before text or an inline tag."""
        segment = self.segments[-1]
        if self.foreign() or not segment.closed:
            return
        start = len(segment.order)  # the closed entries after the last one still open
        while start and segment.order[start - 1].index < 0:
            start -= 1
        for entry in segment.order[start:]:
            entry.index = len(self.names)
            self.push(entry.name, entry)
        reopened = len(segment.order) - start
        segment.closed -= reopened
        self.closed -= reopened

    def start_tag(self, name: str, tag: str, self_closing: bool, breakout: bool) -> int:
        """Opens ``name``; returns the depth the tree may now have."""
        if breakout and self.foreign():
            self.pop_to(self.foreign_start())  # an HTML element ends the <svg> it is in
        rule = _START_RULES.get(name, "")
        if self.foreign():
            if not self_closing:  # inside <svg>/<math>: "<path/>" stays empty
                self.push(name)
            return self.depth()
        if rule == "table" and not self.open.get("table"):
            return self.depth()  # a cell, row or caption outside any table is ignored
        if name in _CLOSES_P:
            self.close_same(("p",), "button")
        if rule and rule not in ("skip", "table"):
            self.close_previous(name, rule)
        elif rule == "table" and name in _TABLE_SIBLINGS:
            self.close_same(_TABLE_SIBLINGS[name], "table")
            self.imply_rows(name)
        if name not in _NO_REOPEN:
            self.reopen()  # inline elements (void ones too) reopen formatting, as text does
        if name in _FORMATTING:
            if name in ("a", "nobr") and self.segments[-1].by_name.get(name):
                self.end_formatting(name)  # a new link ends the one still open
                self.reopen()
            self.start_formatting(name, tag)
        elif rule != "skip" and not (self_closing and name in ("svg", "math")):
            self.push(name)
        return self.depth()

    def imply_rows(self, name: str) -> None:
        """A cell or row straight in a <table> gets the <tbody> and <tr> the parser adds."""
        if name in ("td", "th") and self.top() in ("table", "tbody", "thead", "tfoot"):
            if self.top() == "table":
                self.push("tbody")
            self.push("tr")
        elif name == "tr" and self.top() == "table":
            self.push("tbody")

    def foreign_start(self) -> int:
        """Stack index of the outermost <svg>/<math> of the foreign content we are in."""
        roots, doors = self.marks["foreign"], self.marks["integration"]
        door = doors[-1] if doors else -1
        return roots[bisect.bisect_right(roots, door)]

    def close_previous(self, name: str, rule: str) -> None:
        """The open element that a new ``name`` implicitly ends, if any (HTML5 §13.2.6.4.7)."""
        if rule == "heading":
            if self.top() in _HEADINGS:
                self.pop_to(len(self.names) - 1)
        elif rule == "item":  # <li>, <dd>, <dt>: unless a block other than div/p is in between
            index = self.last("li") if name == "li" else self.last("dd", "dt")
            if index >= 0 and self.marks["li_stop"][-1] == index:
                self.pop_to(index)
        elif rule == "option":
            if self.top() == "option":
                self.pop_to(len(self.names) - 1)
        elif rule == "button":
            self.close_same(("button",), "scope")

    def close_same(self, names: tuple[str, ...], category: str) -> None:
        index = self.last(*names)
        if self.in_scope(index, category):
            self.pop_to(index)

    def start_formatting(self, name: str, tag: str) -> None:
        segment = self.segments[-1]
        alike = segment.by_tag.setdefault(tag, [])
        if len(alike) >= 3:
            self.forget(alike[0])  # Noah's Ark: the earliest of four alike leaves the list
        entry = _Formatting(name, tag, len(self.names), segment)
        segment.order.append(entry)
        alike.append(entry)
        segment.by_name.setdefault(name, []).append(entry)
        self.push(name, entry)

    def forget(self, entry: _Formatting) -> None:
        """Takes an entry off the list; an element still open stays on the stack."""
        segment = entry.segment
        segment.order.remove(entry)
        segment.by_tag[entry.tag].remove(entry)
        segment.by_name[entry.name].remove(entry)
        if entry.index < 0:
            segment.closed -= 1
            self.closed -= 1
        else:
            self.entries[entry.index] = None

    def end_formatting(self, name: str) -> None:
        """HTML5's adoption agency, as far as depth goes: the element is closed when nothing
        but inline elements was opened inside it; otherwise the depth stays as it was."""
        found = self.segments[-1].by_name.get(name)
        if not found:
            return
        entry = found[-1]
        index = entry.index
        self.forget(entry)
        if index >= 0 and self.in_scope(index, "special"):
            self.pop_to(index)

    def end_tag(self, name: str) -> None:
        foreign = self.foreign()
        if not foreign and name in _FORMATTING:
            self.end_formatting(name)
            return
        if self.names and self.names[-1] == name:  # well-formed mail: closes what it opened
            self.pop_to(len(self.names) - 1)
            return
        index = self.last(name)
        if foreign:
            if name in ("br", "p"):
                self.pop_to(self.foreign_start())  # HTML end tags that leave the <svg>
                if not self.foreign():
                    self.end_tag(name)
            elif index >= self.marks["foreign"][-1]:
                self.pop_to(index)
            return
        if name == "br":
            self.reopen()  # "</br>" is read as "<br>"
            return
        if name in ("body", "html", "form"):
            return  # </form> takes out the form alone, leaving what is open in it
        if name in _HEADINGS:
            index = self.last(*_HEADINGS)
        if name in _TABLE_PARTS:
            category = "table"
        elif name not in _SPECIAL:
            category = "special"  # "any other end tag": only if no special element is above
        else:
            category = {"p": "button", "li": "list"}.get(name, "scope")
        if self.in_scope(index, category):
            self.pop_to(index)


def _walk_tree(root, writer: "_Writer") -> None:
    """Depth-first walk without recursion (the tree may be as deep as the parser allows)."""
    if root is None:
        return
    stack: list[tuple[object, object]] = []  # (element, what its end must undo)
    node = root.child if writer.enter(root) is not None else None
    while True:
        while node is None:
            if not stack or writer.full:
                return
            element, undo = stack.pop()
            writer.leave(undo)
            node = element.next
        tag = node.tag
        if tag == "-text":
            writer.text(node.text_content)
            node = node.next
            continue
        undo = writer.enter(node) if not tag.startswith("-") else None  # "-comment", "-doctype"
        if undo is None:
            node = node.next
            continue
        child = node.child
        if child is None:
            writer.leave(undo)
            node = node.next
        else:
            stack.append((node, undo))
            node = child


class _Writer:
    """Plain text from a stream of enter/text/leave events, the way a browser lays it out.

    Line breaks are requested, not written: ``breaks`` holds how many the next text needs, so a
    closing </p> and an opening <p> make one blank line, not two, and trailing ones vanish.
    """

    def __init__(self, budget: int) -> None:
        self.out: list[str] = []
        self.size = 0
        self.budget = budget  # output characters allowed; the text stays linear in the input
        self.full = False
        self.started = False  # anything written yet (leading breaks are dropped)
        self.line_empty = True
        self.breaks = 0
        self.space = False  # collapsed white space waiting for the next word on this line
        self.cell = False  # a table cell began on a line that already has text: " | " is due
        self.quote = 0  # blockquote depth
        self.last_quote = 0  # quote depth of the last line written
        self.lists: list[list] = []  # [ordered, next number] per open list
        self.marker = ""  # bullet or number waiting for the first text of a list item
        self.pre = 0  # open elements that keep white space as written

    # ---------------------------------------------------------------- events

    def enter(self, node) -> tuple | None:
        """Opens an element; returns what ``leave`` must undo, or None to skip its content."""
        tag = node.tag
        if tag in _HIDDEN:
            return None
        attrs = node.attributes
        style = attrs.get("style") or ""
        if "hidden" in attrs or (style and _DISPLAY_NONE.search(style)):
            return None  # hidden preheaders, tracking blocks
        if tag == "br":
            # Each <br> ends a line; a third in a row would only add another blank line.
            self.breaks = self.breaks + 1 if self.pre else min(self.breaks + 1, 2)
            return ()
        breaks = _BLOCK_BREAKS.get(tag, 0)
        if tag == "p" and "Mso" in (attrs.get("class") or ""):
            breaks = 1  # Outlook sets p.MsoNormal{margin:0}; its empty lines are &nbsp; paragraphs
        elif tag in ("ul", "ol") and self.lists:
            breaks = 1  # a nested list has no margin of its own
        elif not breaks and style and _DISPLAY_BLOCK.search(style):
            breaks = 1
        self.block(breaks)
        pre = tag in ("pre", "listing", "xmp", "plaintext") or bool(
            style and _WHITE_SPACE_PRE.search(style))
        self.pre += pre
        if tag == "blockquote":
            self.quote += 1
        elif tag in ("ul", "ol", "menu", "dir"):
            self.lists.append([tag == "ol", _list_start(attrs.get("start"))])
        elif tag == "li":
            self.marker = self.list_marker()
        elif tag in ("td", "th") and not self.line_empty and not self.breaks:
            self.cell = True
        return (tag, breaks, pre)

    def leave(self, undo: tuple) -> None:
        if not undo:
            return
        tag, breaks, pre = undo
        self.block(breaks)
        self.pre -= pre
        if tag == "blockquote":
            self.quote -= 1
        elif tag in ("ul", "ol", "menu", "dir") and self.lists:
            self.lists.pop()
        elif tag == "li":
            self.marker = ""

    def text(self, data: str) -> None:
        if self.pre:
            for index, line in enumerate(data.split("\n")):
                if index:
                    self.breaks += 1
                if line:
                    self.space = False
                    self.write(line)
            return
        data = _HTML_SPACE.sub(" ", data)
        if data.startswith(" "):
            self.space = True
        words = data.strip(" ")
        if words:
            self.write(words)
            self.space = data.endswith(" ")

    # ---------------------------------------------------------------- output

    def block(self, breaks: int) -> None:
        if breaks > self.breaks:
            self.breaks = breaks
        if breaks:
            self.cell = False

    def write(self, words: str) -> None:
        if self.full:
            return
        if self.breaks and self.started:
            blank = ">" * min(self.quote, self.last_quote, _MAX_QUOTE_MARKS)
            self.emit("\n" + (blank + "\n") * (self.breaks - 1))
            self.line_empty = True
        self.breaks = 0
        if self.line_empty:
            self.emit(self.line_prefix())
            self.last_quote = self.quote
        elif self.cell:
            self.emit(" | ")
        elif self.space:
            self.emit(" ")
        self.emit(words)
        self.started, self.line_empty, self.space, self.cell = True, False, False, False

    def emit(self, chunk: str) -> None:
        self.size += len(chunk)
        if self.size > self.budget:
            self.full = True  # cannot happen with real mail: markup outweighs text
            return
        self.out.append(chunk)

    def line_prefix(self) -> str:
        quote = min(self.quote, _MAX_QUOTE_MARKS)
        prefix = ">" * quote + " " if quote else ""
        depth = min(len(self.lists), _MAX_LIST_INDENT)
        if self.marker:
            prefix += "  " * max(depth - 1, 0) + self.marker
            self.marker = ""
        elif depth:
            prefix += "  " * depth  # a further line of a list item lines up under its text
        return prefix

    def list_marker(self) -> str:
        if not self.lists:
            return _BULLETS[0]  # an <li> outside any list, as sloppy HTML has
        current = self.lists[-1]
        if current[0]:
            current[1] += 1
            return f"{current[1] - 1}. "
        return _BULLETS[min(len(self.lists), len(_BULLETS)) - 1]

    def result(self) -> str:
        text = _INVISIBLE.sub("", "".join(self.out)).replace("\xa0", " ")
        text = "\n".join(line.rstrip() for line in text.split("\n"))
        return _EXTRA_BLANK_LINES.sub("\n\n", text).strip("\n")


def _list_start(value: str | None) -> int:
    """<ol start="3">; anything unusable starts at 1."""
    try:
        return max(min(int((value or "1").strip()), 10**9), -(10**9))
    except ValueError:
        return 1
