"""SMS segment counting (bot/core/segments.py): GSM-7 vs UCS-2, 160/153 and 70/67, and
two-unit characters that move whole to the next part instead of straddling a boundary."""

from __future__ import annotations

import dataclasses
import math

import pytest

from bot.core.segments import GSM7_BASIC, GSM7_EXTENSION, SmsLength, is_gsm7, sms_length

# TS 23.038 §6.2.1, septet by septet, as Unicode code points (0x1B is the escape itself).
STANDARD_BASIC = [
    0x0040, 0x00A3, 0x0024, 0x00A5, 0x00E8, 0x00E9, 0x00F9, 0x00EC,
    0x00F2, 0x00C7, 0x000A, 0x00D8, 0x00F8, 0x000D, 0x00C5, 0x00E5,
    0x0394, 0x005F, 0x03A6, 0x0393, 0x039B, 0x03A9, 0x03A0, 0x03A8,
    0x03A3, 0x0398, 0x039E, 0x001B, 0x00C6, 0x00E6, 0x00DF, 0x00C9,
    0x0020, 0x0021, 0x0022, 0x0023, 0x00A4, 0x0025, 0x0026, 0x0027,
    0x0028, 0x0029, 0x002A, 0x002B, 0x002C, 0x002D, 0x002E, 0x002F,
    *range(0x0030, 0x0040),
    0x00A1, *range(0x0041, 0x005B), 0x00C4, 0x00D6, 0x00D1, 0x00DC, 0x00A7,
    0x00BF, *range(0x0061, 0x007B), 0x00E4, 0x00F6, 0x00F1, 0x00FC, 0x00E0,
]
STANDARD_EXTENSION = {0x0C, 0x5E, 0x7B, 0x7D, 0x5C, 0x5B, 0x7E, 0x5D, 0x7C, 0x20AC}


def test_the_tables_are_the_standards():
    assert len(STANDARD_BASIC) == 128
    assert [ord(ch) for ch in GSM7_BASIC] == STANDARD_BASIC
    assert {ord(ch) for ch in GSM7_EXTENSION} == STANDARD_EXTENSION
    assert GSM7_BASIC[0x24] == "¤" and "€" not in GSM7_BASIC


def test_empty_text_costs_nothing():
    empty = sms_length("")
    assert empty == SmsLength("GSM-7", 0, 0, 160)
    assert empty.remaining() == 160


def test_160_gsm_characters_fit_one_message_161_take_two_parts_of_153():
    assert sms_length("a" * 160) == SmsLength("GSM-7", 160, 1, 160)
    assert sms_length("a" * 161) == SmsLength("GSM-7", 161, 2, 153)


def test_306_gsm_characters_fill_two_parts_307_need_three():
    assert sms_length("a" * 306).segments == 2
    assert sms_length("a" * 307).segments == 3
    assert sms_length("a" * 307).per_segment == 153


def test_extension_characters_count_two_septets():
    assert sms_length("€" * 80) == SmsLength("GSM-7", 160, 1, 160)
    # 76 "€" fill 152 septets of part 1; the 77th cannot be split, so it starts part 2.
    assert sms_length("€" * 81) == SmsLength("GSM-7", 162, 2, 153, padding=1)
    # ¤ is in the basic table: one septet, where € takes two.
    assert sms_length("¤" * 160).segments == 1
    assert sms_length("Hello {name}").units == 14


def test_an_extension_character_at_a_boundary_moves_to_the_next_part():
    # 152 septets, then "€" (ESC + e) with one septet left: it starts part 2 whole.
    text = "a" * 152 + "€" + "a" * 152
    length = sms_length(text)
    assert length.units == 306
    assert math.ceil(length.units / 153) == 2  # what dividing would say
    assert length.segments == 3
    assert length.padding == 1
    # Part 2 holds "€" + 151 "a"; part 3 the last "a".
    assert length.remaining() == 152


def test_an_extension_character_that_just_fits_stays():
    # 151 + 2 fills part 1 exactly: nothing moves.
    length = sms_length("a" * 151 + "€" + "a" * 153)
    assert (length.units, length.segments, length.padding) == (306, 2, 0)
    assert length.remaining() == 0


def test_one_emoji_makes_the_text_ucs2_and_counts_two_units():
    assert sms_length("😀") == SmsLength("UCS-2", 2, 1, 70)
    assert sms_length("On my way 😀").units == 12
    assert sms_length("On my way 😀").encoding == "UCS-2"


def test_70_bmp_characters_outside_gsm_fit_one_message_71_take_two():
    assert sms_length("ж" * 70) == SmsLength("UCS-2", 70, 1, 70)
    assert sms_length("ж" * 71) == SmsLength("UCS-2", 71, 2, 67)
    assert sms_length("ж" * 134).segments == 2
    assert sms_length("ж" * 135).segments == 3


def test_35_emoji_fit_one_message_36_take_two():
    assert sms_length("😀" * 35) == SmsLength("UCS-2", 70, 1, 70)
    length = sms_length("😀" * 36)
    assert (length.units, length.segments, length.per_segment) == (72, 2, 67)
    # 33 emoji fill 66 units of part 1; the 34th moves whole, so part 2 holds 3.
    assert length.padding == 1
    assert length.remaining() == 67 - 6


def test_a_surrogate_pair_at_a_boundary_moves_whole():
    text = "ж" * 66 + "😀" + "ж" * 66
    length = sms_length(text)
    assert length.units == 134
    assert math.ceil(length.units / 67) == 2  # what dividing would say
    assert length.segments == 3
    assert length.remaining() == 66


def test_a_surrogate_pair_that_just_fits_stays():
    length = sms_length("ж" * 65 + "😀" + "ж" * 67)
    assert (length.units, length.segments, length.padding) == (134, 2, 0)


def test_braces_are_gsm_cyrillic_is_not():
    assert is_gsm7("Hello {name}")
    assert not is_gsm7("Привет")
    assert is_gsm7("")


@pytest.mark.parametrize("ch", [
    "’",       # a curly apostrophe, as phones and word processors type it
    "`",       # ASCII, but not in the GSM alphabet
    "ç",       # only the capital Ç is at 0x09
    "\t",
    "\x1b",    # a bare escape would swallow the next character
    "…",
])
def test_characters_that_look_harmless_make_the_text_ucs2(ch):
    assert not is_gsm7(f"Thanks{ch}")
    assert sms_length("a" * 100 + ch).encoding == "UCS-2"
    assert sms_length("a" * 100 + ch).segments == 2  # 101 units, over 70


def test_every_character_of_both_tables_is_gsm7():
    assert is_gsm7(GSM7_BASIC.replace("\x1b", "") + GSM7_EXTENSION)


def test_remaining():
    assert sms_length("Hello").remaining() == 155
    assert sms_length("Hello €").remaining() == 152
    assert sms_length("a" * 160).remaining() == 0
    assert sms_length("a" * 161).remaining() == 153 * 2 - 161
    assert sms_length("Привет").remaining() == 64
    # One more unit than remaining() costs one more segment.
    for text in ("a" * 200, "ж" * 100):
        length = sms_length(text)
        more = sms_length(text + text[0] * (length.remaining() + 1))
        assert more.segments == length.segments + 1


def test_the_result_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        sms_length("hi").segments = 5  # type: ignore[misc]
