"""SMS length: how many segments a text costs, counted the way carriers and Twilio count them.

A text is sent in the GSM 7-bit default alphabet (3GPP TS 23.038 §6.2.1, with its basic
extension table §6.2.1.1) when every character is in it, else in UCS-2, i.e. UTF-16 code
units. One message holds 140 octets: 160 septets or 70 UCS-2 units. A longer text is
concatenated, and each part gives 6 octets to the header that numbers it (3GPP TS 23.040
§9.2.3.24.1, the 8-bit reference Twilio uses): 153 septets or 67 units per part. Carriers bill,
and Twilio charges, per part.

Segments are counted by walking the text, not by dividing: a character that takes two units
(an extension character, ESC + septet; an emoji outside the BMP, a surrogate pair) is never
split between two parts, so when only one unit is left in a part it stays empty and the pair
starts the next one. Twilio's segment calculator and handsets do the same, and a split pair
would arrive as two wrong characters. Grapheme clusters of several code points (flags, ZWJ
families, a letter with a combining accent) are not kept together: the standard library has
no grapheme segmentation, and the receiving handset joins them again; Twilio's own calculator
keeps them whole, so near a boundary it may count one part more for such texts.

Pure functions over ``str``: must not send, shorten or re-encode anything (no "smart
encoding" of curly quotes into GSM look-alikes: what is counted is what is sent), and must not
import any SDK or do I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7 = "GSM-7"
UCS2 = "UCS-2"

# The 128 code points of the GSM 7-bit default alphabet in order, 16 a line (TS 23.038
# §6.2.1): GSM7_BASIC[0x24] is the septet 0x24. Note 0x24 is "¤", not "€" (the euro sign is in
# the extension table), 0x09 is "Ç" (not "ç"), and 0x1B is ESC, the escape to the extension
# table: it stands here only to keep the positions, and is not a character a text may carry.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    ' !"#¤%&\'()*+,-./'
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
# The basic extension table (TS 23.038 §6.2.1.1): each is sent as ESC + a septet, so costs 2.
# Form feed 0x0A, ^ 0x14, { 0x28, } 0x29, \ 0x2F, [ 0x3C, ~ 0x3D, ] 0x3E, | 0x40, € 0x65.
GSM7_EXTENSION = "\f^{}\\[~]|€"

# A bare ESC would make the receiver read the next septet from the extension table, so a text
# holding one cannot be sent as GSM-7 as it stands: it goes as UCS-2.
_BASIC = frozenset(GSM7_BASIC) - {"\x1b"}
_EXTENSION = frozenset(GSM7_EXTENSION)

# (units in a single message, units in each part of a concatenated one)
_SIZES = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True)
class SmsLength:
    encoding: str     # "GSM-7" or "UCS-2"
    # Septets (an extension character counts 2) or UTF-16 code units (outside the BMP, 2).
    units: int
    segments: int     # 0 for empty text, 1 when it fits one message, else the number of parts
    per_segment: int  # 160 / 70 for a single message, 153 / 67 for each part of a concatenated one
    # Units left empty at the end of a part because a two-unit character moved whole to the
    # next one; why segments can exceed ceil(units / per_segment).
    padding: int = 0

    def remaining(self) -> int:
        """Units still free in the last segment before the text costs one more. An empty text
        has a whole message free. In units, not characters: an extension character or an
        emoji needs 2; and one character outside GSM-7 would change the encoding altogether."""
        if self.segments == 0:
            return self.per_segment
        return self.segments * self.per_segment - self.units - self.padding


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM 7-bit default alphabet or its extension table."""
    return all(ch in _BASIC or ch in _EXTENSION for ch in text)


def sms_length(text: str) -> SmsLength:
    """The encoding, size and number of segments ``text`` costs as one SMS."""
    encoding = GSM7 if is_gsm7(text) else UCS2
    costs = [_cost(ch, encoding) for ch in text]
    units = sum(costs)
    single, part = _SIZES[encoding]
    if units == 0:
        return SmsLength(encoding, 0, 0, single)
    if units <= single:
        return SmsLength(encoding, units, 1, single)
    segments, used, padding = 1, 0, 0
    for cost in costs:
        if used + cost > part:
            # The pair does not fit in what is left: it starts the next part whole, and the
            # unit left behind is sent empty.
            segments, padding, used = segments + 1, padding + part - used, 0
        used += cost
    return SmsLength(encoding, units, segments, part, padding)


def _cost(ch: str, encoding: str) -> int:
    if encoding == GSM7:
        return 2 if ch in _EXTENSION else 1
    # Python's str holds code points; UTF-16 needs a surrogate pair above the BMP.
    return 2 if ord(ch) > 0xFFFF else 1
