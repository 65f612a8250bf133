"""Adapter helper for ``mailparse``: what charset undeclared or mislabelled bytes really are.

Bytes that failed UTF-8 are tried in the charsets the same message declares elsewhere, then in
the East Asian legacy charsets (gb18030, cp932, euc-jp, cp949, cp950); a reading is taken only
when it looks like writing in one script (``_plausibility``), because a header of four
characters is too short for statistical detection. ISO-2022-JP is read as Windows reads it
(CP50220/CP50221/CP50222), NEC and IBM extensions and stray Shift_JIS included.

Must not look at headers or MIME structure (callers pass the bytes and the labels), must not
record defects (the caller knows where the bytes came from and says so), must not raise on bad
bytes, and must not search long input: the candidate search is for header-sized strings, and
cp1252, which decodes anything, is never tried here (it is every caller's last resort).
No ticket logic here.
"""

from __future__ import annotations

import codecs
import functools
import re
import unicodedata
from collections.abc import Iterable

# The candidate search (decode five ways, judge each) runs on at most this many bytes: header
# values and file names. Longer input is only tried in the charsets the message declares.
MAX_GUESS_BYTES = 1024
# Only this much of a long decoding is judged: a body's first lines tell as much as all of it.
MAX_JUDGED_CHARS = 512
# Mean weight per non-ASCII character (see _plausibility) from which a reading counts as text.
PLAUSIBLE = 0.5
# A reading below this mean has to beat a good Latin-1 reading of the same bytes (see _guess).
CLEAR = 1.5

# Mislabelled charsets decode better as their supersets (WHATWG Encoding Standard label table):
# Outlook says ks_c_5601-1987 and sends cp949, "gb2312" mail is usually GBK, iso-8859-1 is cp1252.
_CHARSET_SUPERSETS = {
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "iso-8859-8-i": "iso-8859-8",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "tis-620": "cp874",
    "windows-874": "cp874",
}

# ISO-2022-JP labels → the stdlib codec that reads a text within the standard. A text it
# refuses is read the Windows way (_decode_cp5022x). RFC 1468 (-jp), RFC 2237 (-jp-1),
# RFC 1554 (-jp-2); cp5022x are Windows' names for its own flavours.
_JIS_LABELS = {
    "iso-2022-jp": "iso2022_jp_2",
    "csiso2022jp": "iso2022_jp_2",
    "iso-2022-jp-1": "iso2022_jp_2",
    "iso-2022-jp-2": "iso2022_jp_2",
    "csiso2022jp2": "iso2022_jp_2",
    "iso-2022-jp-3": "iso2022_jp_3",
    "iso-2022-jp-2004": "iso2022_jp_2004",
    "iso-2022-jp-ext": "iso2022_jp_ext",
    "cp50220": "iso2022_jp_2",
    "cp50221": "iso2022_jp_ext",
    "cp50222": "iso2022_jp_ext",
}
# Raw bytes in a message labelled ISO-2022-JP are one of the two 8-bit Japanese charsets.
_JIS_8BIT = ("cp932", "euc_jp")
# The East Asian legacy charsets in the order a tie is settled: most mail first.
_CANDIDATES = ("gb18030", "cp932", "euc_jp", "cp949", "cp950")
# Scripts a charset can encode but its language's text does not use: Big5's ETEN rows and GB
# 2312 rows 4-5 hold kana, cp949 rows 10-11 too; a reading made of them is a wrong charset.
_FOREIGN = {
    "gb18030": frozenset({"kana", "halfkana", "hangul"}),
    "cp950": frozenset({"kana", "halfkana", "hangul"}),
    "cp949": frozenset({"kana", "halfkana"}),
    "cp932": frozenset({"hangul"}),
    "euc_jp": frozenset({"hangul"}),
}
# Labels that say nothing about 8-bit bytes that failed UTF-8.
_NO_HINT = {"ascii", "utf-8", "utf-7", "utf-16", "utf-16-le", "utf-16-be", "utf-32",
            "utf-32-le", "utf-32-be"}

# ISO-2022-JP designations (RFC 1468; JIS X 0201 katakana as CP50221 writes it; JIS X 0212 from
# RFC 2237): b"\x1b$B" → JIS X 0208, b"\x1b(I" → half-width katakana, b"\x1b(B" → ASCII
_JIS_ESCAPE = re.compile(rb"\x1b(\$[@B]|\$\(D|\([BJHI]|&@)")
# One two-byte JIS code inside a double-byte segment: b'$"' → あ (row 4, cell 2)
_JIS_PAIR = re.compile(rb"[\x21-\x7e]{2}")
# Katakana between Shift Out and Shift In (CP50222): b"\x0e1\x0f" → ｱ
_SHIFT_OUT = re.compile(rb"\x0e([^\x0f]*)\x0f?")
# JIS X 0201 katakana as 7-bit codes → their 8-bit Shift_JIS bytes: b"1" → b"\xb1" (ｱ)
_KANA_TO_SJIS = bytes.maketrans(bytes(range(0x21, 0x60)), bytes(range(0xA1, 0xE0)))
# A run of non-ASCII characters, judged as one word: "PDFファイル" → "ファイル"
_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


# --------------------------------------------------------------------------- labels


def _codec(label: str | None) -> str | None:
    """The stdlib codec for a charset label, through the superset table; None if unknown."""
    label = (label or "").strip().strip("\"'").lower()
    if not label:
        return None
    try:
        return codecs.lookup(_CHARSET_SUPERSETS.get(label, label)).name
    except LookupError:
        return None


def _is_jis(label: str | None) -> bool:
    return (label or "").strip().strip("\"'").lower() in _JIS_LABELS


def _hints(labels: Iterable[str | None]) -> list[str]:
    """Codecs to try first, from the labels a message declares, in order, without repeats: an
    ISO-2022-JP label stands for cp932 and euc-jp, UTF-8 and ASCII labels for nothing."""
    found: list[str] = []
    for label in labels:
        names = _JIS_8BIT if _is_jis(label) else (_codec(label),)
        for name in names:
            if name and name not in _NO_HINT and name not in found:
                found.append(name)
    return found


# --------------------------------------------------------------------------- the search


def _guess(data: bytes, labels: Iterable[str | None]) -> tuple[str, str] | None:
    """(text, codec) of the most plausible reading of ``data``, or None (the caller falls back
    to cp1252). The message's declared charsets go first, at any length; the East Asian
    candidates only for up to MAX_GUESS_BYTES. Call it only on bytes that failed UTF-8."""
    hints = _hints(labels)
    found = _best(data, hints)
    if found:
        return found[0], found[1]
    if len(data) > MAX_GUESS_BYTES:
        return None
    found = _best(data, [name for name in _CANDIDATES if name not in hints])
    if found is None or (_reads_as_latin1(data) and not _clearly_cjk(found[0], found[2])):
        return None
    return found[0], found[1]


def _best(data: bytes, names: list[str]) -> tuple[str, str, float] | None:
    """The plausible strict decoding with the highest score; the earlier codec wins a tie."""
    best: tuple[str, str, float] | None = None
    for name in names:
        try:
            text = data.decode(name)
        except (LookupError, ValueError):
            continue
        score = _plausibility(text[:MAX_JUDGED_CHARS], _FOREIGN.get(name, frozenset()))
        if score >= PLAUSIBLE and (best is None or score > best[2]):
            best = (text, name, score)
    return best


def _reads_as_latin1(data: bytes) -> bool:
    """Whether cp1252 gives a plausible Latin text ("Grüße", "l’été"): a CJK reading must then
    be clearly better to be taken, since Latin-1 words also pass as one or two CJK characters."""
    try:
        text = data.decode("cp1252")
    except ValueError:  # 0x81, 0x8D, 0x8F, 0x90, 0x9D are unassigned in cp1252
        return False
    return _plausibility(text) >= PLAUSIBLE


def _clearly_cjk(text: str, score: float) -> bool:
    """A CJK reading that beats a plausible Latin-1 one: two characters at least (one is what a
    Latin-1 letter and the ASCII letter after it make: "Ça" → "ド" in cp950) and a high score."""
    return score >= CLEAR and sum(not char.isascii() for char in text) >= 2


def _decode_undeclared(data: bytes, labels: Iterable[str | None]) -> tuple[str, str | None]:
    """Header bytes nobody labelled → (text, what they were read as; None if nothing to fix):
    ISO-2022-JP escapes, UTF-8 (RFC 6532), the search, then cp1252 with replacement."""
    if b"\x1b" in data and _JIS_ESCAPE.search(data):
        return _decode_cp5022x(data)[0], "iso-2022-jp"
    if data.isascii():
        return data.decode("ascii"), None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    found = _guess(data, labels)
    if found:
        return found
    return data.decode("cp1252", errors="replace"), "cp1252"


# --------------------------------------------------------------------------- ISO-2022-JP


def _decode_jis(data: bytes, label: str) -> tuple[str, bool] | None:
    """Bytes labelled ISO-2022-JP → (text, within the standard), or None when they are 8-bit
    without escape sequences (not ISO-2022-JP at all: the caller tries UTF-8 and Shift_JIS)."""
    if data.isascii():
        try:
            return data.decode(_JIS_LABELS[label.strip().strip("\"'").lower()]), True
        except (LookupError, ValueError):
            return _decode_cp5022x(data)[0], False
    if b"\x1b" in data:
        return _decode_cp5022x(data)[0], False
    return None


def _decode_cp5022x(data: bytes) -> tuple[str, bool]:
    """ISO-2022-JP as Windows decodes it (CP50220/CP50221/CP50222): each JIS X 0208 code moves to
    its Shift_JIS code and is read as cp932, which adds NEC row 13 (①, Ⅰ, ㈱, №) and the
    NEC-selected IBM rows 89-92; 8-bit bytes outside the escapes are read as Shift_JIS, as
    Windows reads them. Returns the text and whether every byte decoded."""
    pieces = _JIS_ESCAPE.split(data)  # [text, designation, text, designation, text, ...]
    texts: list[str] = []
    exact = True
    charset = b"(B"
    for index, piece in enumerate(pieces):
        if index % 2:
            charset = charset if piece == b"&@" else piece  # ESC & @ only announces JIS X 0208-1990
            continue
        text, ok = _decode_jis_segment(piece, charset)
        texts.append(text)
        exact = exact and ok
    return "".join(texts), exact


def _decode_jis_segment(data: bytes, charset: bytes) -> tuple[str, bool]:
    """One stretch between escape sequences, in the character set the last one designated."""
    codec = "cp932"
    if charset in (b"$B", b"$@"):
        data = _JIS_PAIR.sub(lambda m: _jis_to_sjis(m.group()), data)
    elif charset == b"$(D":
        data, codec = _JIS_PAIR.sub(lambda m: _jis_x0212_to_euc(m.group()), data), "euc_jp"
    elif charset == b"(I":
        data = data.translate(_KANA_TO_SJIS)
    else:  # ASCII or JIS X 0201 Roman; raw 8-bit bytes here are Shift_JIS
        data = _SHIFT_OUT.sub(lambda m: m.group(1).translate(_KANA_TO_SJIS), data)
    try:
        return data.decode(codec), True
    except UnicodeDecodeError:
        return data.decode(codec, errors="replace"), False


def _jis_x0212_to_euc(pair: bytes) -> bytes:
    """JIS X 0212 is EUC-JP's third code set, after 0x8F: b"0!" → b"\x8f\xb0\xa1" (丂)."""
    return b"\x8f" + bytes((pair[0] | 0x80, pair[1] | 0x80))


def _jis_to_sjis(pair: bytes) -> bytes:
    """One JIS X 0208 code → its Shift_JIS code (JIS X 0208:1997 annex 1), NEC and IBM rows
    included: b"0!" (row 16, cell 1) → b"\\x88\\x9f" (亜); b"-!" (row 13) → b"\\x87\\x40" (①)."""
    row, cell = pair[0] - 0x21, pair[1] - 0x21  # both 0-based
    lead = (row >> 1) + (0x81 if row < 62 else 0xC1)
    if row & 1:
        trail = cell + 0x9F
    else:
        trail = cell + 0x40 + (cell >= 0x3F)  # 0x7F is not a trail byte
    return bytes((lead, trail))


# --------------------------------------------------------------------------- the plausibility check

# Scripts whose letters are words on their own; two of them in one short header is mojibake.
_ALPHABETS = frozenset({"latin", "greek", "cyrillic", "alpha"})
_CJK = frozenset({"han", "kana", "halfkana", "hangul"})
# Latin-1 and cp1252 symbols that real Latin text puts next to a letter only rarely, but that
# mojibake is full of ("Ã©", "Ð¡"): a run mixing them with letters reads as mojibake.
_MOJIBAKE_MARKS = frozenset("¡¢£¤¥¦§¨©ª¬®¯°±²³´µ¶¸¹º¼½¾¿×÷ƒ†‡ˆ‰˜™•‚„")
# CJK punctuation every East Asian text uses: 、。「」『』【】・ー〜（）！？ and their kin.
_CJK_PUNCT = frozenset("\u3000、。〃々〆〇〈〉《》「」『』【】〔〕〜・ー") | frozenset(
    chr(c) for c in range(0xFF01, 0xFF5F))


def _plausibility(text: str, foreign: frozenset[str] = frozenset()) -> float:
    """How much ``text`` reads like writing rather than a wrong decoding: the mean weight of its
    non-ASCII characters, about 1-2 for real text of one script plus ASCII and punctuation, 0 or
    less for rare CJK characters mixed with Latin-1 symbols; -inf for what no text holds
    (controls, private use, unassigned code points, kana beside hangul, CJK beside accented
    Latin, or a script in ``foreign``: one the decoding charset's language does not write).
    0.0 for pure ASCII."""
    runs = [(m.start(), m.group()) for m in _NON_ASCII.finditer(text)]
    kinds = [[_kind(char) for char in run] for _, run in runs]
    seen = {kind for run_kinds in kinds for kind in run_kinds}
    if not runs:
        return 0.0
    if "bad" in seen or {"kana", "hangul"} <= seen or seen & foreign:
        return float("-inf")
    cjk = bool(seen & _CJK)
    alphabets = seen & _ALPHABETS
    if (cjk and (alphabets - {"greek", "cyrillic"})) or len(alphabets) > 1:
        return float("-inf")
    japanese = bool(seen & {"kana", "halfkana"})
    total = 0.0
    count = 0
    for (start, run), run_kinds in zip(runs, kinds):
        before = text[start - 1] if start else ""
        after = text[start + len(run)] if start + len(run) < len(text) else ""
        weights = [_weight(char, kind, cjk, japanese) for char, kind in zip(run, run_kinds)]
        total += sum(weights) + _run_penalty(run, run_kinds, before, after)
        count += len(run)
    return total / count


def _run_penalty(run: str, kinds: list[str], before: str, after: str) -> float:
    """What a run of non-ASCII characters loses for the company it keeps."""
    glued = (before.isascii() and before.isalpha()) + (after.isascii() and after.isalpha())
    if kinds[0] in _CJK and len(run) == 1:
        # One CJK character inside a Latin word ("Gr廻e" is "Grüße" read as cp949); at a word's
        # edge ("PDF版") it is merely unusual.
        return -3.0 if glued == 2 else -1.0 * glued
    if glued and set(kinds) & {"greek", "cyrillic", "alpha"}:
        return -3.0  # Cyrillic or Greek letters do not share a word with ASCII Latin ones
    if set(kinds) & _CJK:
        return 0.0
    letters = sum(kind == "latin" for kind in kinds)
    if len(run) >= 2 and letters and any(char in _MOJIBAKE_MARKS for char in run):
        return -2.0 * len(run)  # "Ã¼" is "ü" as UTF-8 read as Latin-1; "Œ©" is Shift_JIS
    if letters >= 3:
        return -2.0 * len(run)  # three accented letters in a row: no Latin language does that
    return 0.0


def _weight(char: str, kind: str, cjk: bool, japanese: bool) -> float:
    if kind == "han":
        if japanese and not _in_jis(char):
            return -1.0  # kana beside a character Japanese cannot write: a Chinese reading
        return 2.0 if char in _frequent() else (1.0 if char in _common() else -1.0)
    if kind == "hangul":
        # The Hangul list is a few hundred of 2,350 syllables, the Han one over a thousand of
        # some 7,000 characters: a chance hit is rarer here, so a hit counts for more.
        return 2.5 if char in _frequent() else (1.0 if char in _common() else -1.0)
    if kind == "kana" or char in _CJK_PUNCT:
        return 2.0
    if kind == "halfkana":
        return 0.5  # JIS X 0201 katakana: in old Japanese mail, and in GBK read as cp932
    if kind in ("greek", "cyrillic"):
        return -1.0 if cjk else 1.0  # rows 6-7 of GB 2312 and JIS X 0208 are Greek and Cyrillic
    if kind == "mark":
        return -1.0 if cjk else 0.0
    return {"latin": 1.0, "alpha": 1.0, "sym": 1.0, "space": 0.0}.get(kind, -1.0)


def _kind(char: str) -> str:
    """The script or class of one non-ASCII character, by code point block."""
    code = ord(char)
    if 0x4E00 <= code <= 0x9FFF or 0x3400 <= code <= 0x4DBF:
        return "han"
    if 0x3041 <= code <= 0x30FF and char not in "・ー":
        return "kana"
    if 0xAC00 <= code <= 0xD7A3:
        return "hangul"
    if 0xFF61 <= code <= 0xFF9F:
        return "halfkana"
    if code == 0xA0:
        return "space"
    if 0xA1 <= code <= 0xBF or char in _MOJIBAKE_MARKS:
        return "mark"
    if 0xC0 <= code <= 0x24F or 0x1E00 <= code <= 0x1EFF:
        return "latin" if char.isalpha() else "mark"  # × and ÷ sit among the letters
    if 0x370 <= code <= 0x3FF:
        return "greek"
    if 0x400 <= code <= 0x4FF:
        return "cyrillic"
    if char in _CJK_PUNCT or _is_cjk_symbol(code):
        return "sym"
    category = unicodedata.category(char)
    if category in ("Cc", "Cf", "Co", "Cn", "Cs") or code == 0xFFFD:
        return "bad"  # C1 controls, private use (user-defined rows), unassigned
    if category.startswith("L"):
        return "alpha"  # Hebrew, Arabic, Thai, ... (from a declared single-byte charset)
    if 0x2500 <= code <= 0x257F or 0xF900 <= code <= 0xFAFF or 0x250 <= code <= 0x2AF:
        return "rare"  # box drawing, compatibility ideographs, IPA: rows few texts use
    return "sym" if category[0] in "PSZ" else "rare"


def _is_cjk_symbol(code: int) -> bool:
    """Symbols East Asian mail uses in subjects: general punctuation (— … ※), letterlike (℃ №),
    arrows, maths (≒ ∵), circled digits and roman numerals (① Ⅰ), shapes (■ ★), ㈱ and ㌔."""
    return (0x2010 <= code <= 0x203B or 0x2100 <= code <= 0x2199 or 0x2200 <= code <= 0x22FF
            or 0x2460 <= code <= 0x24FF or 0x25A0 <= code <= 0x26FF or 0x3000 <= code <= 0x303F
            or 0x3200 <= code <= 0x33FF or 0x20A0 <= code <= 0x20CF or 0xFFE0 <= code <= 0xFFE6)


@functools.lru_cache(maxsize=8192)
def _in_jis(char: str) -> bool:
    try:
        char.encode("cp932")
    except UnicodeEncodeError:
        return False
    return True


@functools.cache
def _common() -> frozenset[str]:
    """Characters of the first, most used level of each national standard: GB 2312 level 1
    (rows 16-55), JIS X 0208 level 1 (rows 16-47), Big5's frequent block (0xA440-0xC67E) and
    the 2,350 Hangul syllables of KS X 1001 (of 11,172). Built once, on the first search."""
    found: set[str] = set()
    for codec, leads, trails in (
        ("gb2312", range(0xB0, 0xD8), range(0xA1, 0xFF)),
        ("euc_jp", range(0xB0, 0xD0), range(0xA1, 0xFF)),
        ("cp950", range(0xA4, 0xC7), [*range(0x40, 0x7F), *range(0xA1, 0xFF)]),
        ("euc_kr", range(0xB0, 0xC9), range(0xA1, 0xFF)),
    ):
        for lead in leads:
            # One code per line: an unassigned code is dropped without shifting the next ones.
            row = b"\n".join(bytes((lead, trail)) for trail in trails)
            found.update(row.decode(codec, errors="ignore"))
    return frozenset(found)


@functools.cache
def _frequent() -> frozenset[str]:
    return frozenset(_FREQUENT_HAN + _FREQUENT_HANGUL)


# The most used characters of everyday and support mail, written down for this check: Chinese
# (simplified, then traditional), Japanese kanji, then Hangul syllables (common words, family
# names and given-name syllables). A wrong reading of CJK bytes lands on one of these by chance
# only; a right one mostly does. Order means nothing.
_FREQUENT_HAN = (
    "的一是不了在人有我他这个们中来上大为和国地到以说时要就出会可也你对生能而子那得于着下自之年过"
    "发后作里用道行所然家种事成方多经么去法学如都同现当没动面起看定天分还进好小部其些主样理心她本"
    "前开但因只从想实日军者意无力它与长把机十民第公此已工使情明性知全三又关点正业外将两高间由问很"
    "最重并物手应战向头文体政美相见被利什二等产或新己制身果加西斯月话合回特代内信表化老给世位次度"
    "门任常先海通教儿原东声提立及比员解水名真论处走义各入几口认条平系气题活尔更别打女变四神总何电"
    "数安少报才结反受目太量再感建务做接必场件计管期市直德资命山金指克许统区保至队形社便空决治展马"
    "科司五基眼书非则听白却界达光放强即像难且权思王象完设式色路记南品住告类求据程北边死张该交规万"
    "取拉格望觉术领共确传师观清今切院让识候带导争运笑飞风步改收根干造言联持组每济车亲极林服快办议"
    "往元英士证近失转夫令准布始怎呢存未远叫台单影具罗字爱击流备兵连调深商算质团集百需价花党华城石"
    "级整府离况亚请技际约示复病息究线似官火断精满支视消越器容照须九增研写称企八功吗包片史委乎查轻"
    "易早曾除农找装广显吧阿李标谈吃图念六引历首医局突专费号尽另周较注语仅考落青随选列武红响虽推势"
    "参希古众构房半节土投某案黑维革划敌致陈律足态护七兴派孩验责营星够章音跟志底站严巴例防族供效续"
    "施留讲型料终答紧黄绝奇察母京段依批群项故按河米围江织害斗双境客纪采举杀攻父苏密低朝友诉止细愿"
    "千值仍男钱破网热助倒育属坐帝限船脸职速刻乐否刚威毛状率甚独球般普怕弹校苦创假久错承印晚兰试股"
    "拿脑预谁益阳若哪微尼继送急血惊伤素药适波夜省初喜卫源食险待述陆习置居劳财环排福纳欢雷警获模充"
    "负云停木游龙树疑层冷洲冲射略范竟句室异激汉村哈策演简卡罪判担州静退既衣您宗积余痛检差富灵协角"
    "占配征修皮挥胜降阶审沉坚善妈刘读啊超免压银买养伊怀执副乱抗犯追帮宣佛岁航优怪香著田铁控税左右"
    "份穿艺背阵草脚概恶块顿敢守酒岛托央户烈洋哥索胡款靠评版宝座释景顾弟登货互付伯慢欧换闻危忙核暗"
    "姐介坏讨丽良序升监临亮露永呼味野架域沙掉括鱼杂误湾吉减编楚肯测败屋跑梦散温困渐封救贵缺楼县尚"
    "毫移娘朋画班智亦耳恩短掌恐遗固席松秘谢鲁遇康虑幸均销钟诗藏赶剧票损忽巨旧端探湖录叶春乡附吸予"
    "礼港雨呀板庭妇归睛饭额含顺输摇招婚脱补谓督油疗旅泽材灭逐莫笔亡鲜词圣择寻厂睡博烟授诺伦岸奥唐"
    "卖载洛健堂旁宫喝借君禁阴园谋宋避抓荣姑孙逃牙束跳顶玉镇雪午练迫篇肉馆遍凡础洞卷坦牛宁纸诸训私"
    "庄祖丝翻暴森塔默握戏隐熟骨访弱蒙歌店软典欲萨伙遭盘爸扩盖弄雄稳忘亿刺拥徒姆杨齐赛趣曲刀床迎冰"
    "虚玩析窗醒妻透购替塞努休虎扬途侵刑绿兄迅套贸毕唯谷轮库迹尤竞街促延震弃甲伟麻川申缓潜闪售灯针"
    "哲络抵朱埃抱鼓植纯夏忍页杰筑折郑贝尊吴秀混臣雅振染盛怒舞圆搞狂措姓残秋培迷诚宽宇猛摆梅毁伸摩"
    "盟末乃悲拍丁赵侧渡订账码咨询邮箱注册验退款充值客服登录密码收货地址物流快递取消修改支付失败您"
    "娜伟静洋敏丽强磊军杰涛斌超霞平刚桂英芳燕玲红华秀兰"
    "這個們來為國說時會對於著過發後裡麼經學現當沒動還進樣開從實軍與長機點業將兩間問體見產給話東聲"
    "這員論處義幾認條氣題爾別變總電數報結務場計資區隊形決馬書聽卻達難權設記類據邊張該規萬領確傳師"
    "觀讓識帶導爭運飛風轉準單影羅愛擊備連調團價華級離況亞請際約復專費號盡較語僅考隨選紅響雖勢參眾"
    "構節護興驗責營夠嚴續紀採舉殺蘇訴願錢網熱職樂剛獨創錯試預誰繼驚傷藥適險陸習勞財環歡獲雲遊龍樹"
    "層衝異簡擔靜餘檢靈協徵揮勝階審堅讀壓銀買養懷執亂幫歲優鐵稅藝陣腳惡塊頓島戶評寶釋顧貨換聞壞討"
    "麗臨誤灣減編測敗夢溫漸貴縣遺謝慮銷詩趕劇損舊錄葉鄉禮婦歸飯順輸補謂療澤滅筆鮮詞擇尋廠諾賣載陰"
    "園謀榮孫頂鎮練館礎捲寧紙諸訓莊絲戲隱訪歌軟盤擴蓋穩億擁齊賽趣虛購綠貿畢輪庫競棄偉緩潛閃燈針絡"
    "訂單帳戶詢碼錄儲值運費謝您好號"
    "様御申致願頂届払込売円県駅気済続楽図広対応変発険関確認依頼見積請求注文問合送付拝啓敬具宜卒何皆"
    "弊貴株式担当殿内容記載添付資料予定連絡返信週今月度都府道区町村番号前住所電話携帯更録解約契料金"
    "支振領収書納品検討回答質案内準備完了始終止障害復旧原因調査告策状況在以下上記事情報画面表示操作"
    "方設入力保存削除追加修正成利使可能必要場合際点的再行至急相談発送件山田太郎鈴木佐藤高橋田中伊藤"
)
_FREQUENT_HANGUL = (
    "이다는에의을가하고지서한기로를은도사으리자대수어인시나부정아있해라주게보일상전내면만거여들요니"
    "제소원문드장구비그공경우성무신말세생과마스동안적연관데화방님계개중발실합학분모진위본감회결재통"
    "물것업용금선명유간국현오반단점까습민저터트러미운번필차영당작처행식속설산건청확취환불배송품고객"
    "센터가입밀호변경계정녕감죄립김박최강조윤장임한서권황송류홍양손백허남심노곽채천함염추석길표왕"
    "옥육예봉복태목형두음빈온범승위창준혁훈희숙철혜린은영민지현호우연"
    "요청문의드립니다안녕하세요감사합니다죄송합니다확인주문취소환불배송비밀번호로그인회원가입긴급"
)
