"""Charsets nobody declared, or declared wrong, against ``parse_email`` directly.

Raw 8-bit header bytes and file names in East Asian legacy charsets, ISO-2022-JP with Microsoft
extensions or holding Shift_JIS, and Latin-1 that must read as it always did. The mail and what a
reader expects come from ``tests/inbound/fixtures_charsets.py``; the rest is built here from short
strings. These tests must not touch the network or a database, and must not patch the email
library (only our own search, to prove where it does not run).
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone

import pytest

from bot.inbound.mailparse import parse_email
from bot.messages import InboundMessage
from tests.inbound.fixtures_charsets import EXPECTED, FIXTURES, SUPPORT, _jis

RECEIVED = datetime(2025, 3, 3, 10, 16, tzinfo=timezone.utc)


def parse(raw: bytes) -> InboundMessage:
    return parse_email(raw, received_at=RECEIVED, envelope_sender="customer@example.net",
                       recipients=(SUPPORT,))


def has_defect(msg: InboundMessage, *words: str) -> bool:
    return any(all(word in defect for word in words) for defect in msg.defects)


def mail(subject: bytes = b"Hello", *, sender: bytes = b"Customer <customer@example.net>",
         ctype: bytes = b"text/plain; charset=us-ascii", body: bytes = b"Hello.\r\n",
         cte: bytes = b"8bit") -> bytes:
    return b"\r\n".join([
        b"From: " + sender,
        b"To: " + SUPPORT.encode(),
        b"Subject: " + subject,
        b"Date: Mon, 03 Mar 2025 09:12:44 +0900",
        b"Message-ID: <charset-test@example.net>",
        b"MIME-Version: 1.0",
        b"Content-Type: " + ctype,
        b"Content-Transfer-Encoding: " + cte,
        b"",
        body,
    ])


def with_attachment(name_bytes: bytes, *, text_ctype: bytes, text: bytes) -> bytes:
    """A text part (whose charset the message thereby declares) and a file with a raw 8-bit name."""
    return mail(ctype=b'multipart/mixed; boundary="b1"', cte=b"7bit", body=b"\r\n".join([
        b"--b1",
        b"Content-Type: " + text_ctype,
        b"",
        text,
        b"--b1",
        b'Content-Type: application/pdf; name="' + name_bytes + b'"',
        b'Content-Disposition: attachment; filename="' + name_bytes + b'"',
        b"Content-Transfer-Encoding: base64",
        b"",
        base64.b64encode(b"%PDF-1.4\n"),
        b"--b1--",
        b"",
    ]))


# --------------------------------------------------------------------------- every fixture


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_reads_as_a_person_expects(name):
    msg = parse(FIXTURES[name]())
    expected = EXPECTED[name]
    seen = {
        "subject": msg.subject,
        "requester_name": msg.sender_name,
        "requester_email": msg.sender_address,
        "attachments": [a.name for a in msg.attachments],
    }
    for key, value in expected.items():
        if key == "body_contains":
            for text in value:
                assert text in msg.body, (text, msg.body)
        else:
            assert seen[key] == value, (key, seen[key], msg.defects)


def test_every_fixture_has_an_expectation_with_only_the_agreed_keys():
    assert sorted(FIXTURES) == sorted(EXPECTED)
    agreed = {"subject", "requester_name", "requester_email", "body_contains", "attachments"}
    assert all(set(expected) <= agreed for expected in EXPECTED.values())


# --------------------------------------------------------------------------- raw 8-bit headers


@pytest.mark.parametrize(("name", "header", "codec"), [
    ("sjis_subject", "Subject", "cp932"),
    ("sjis_subject_short", "Subject", "cp932"),
    ("gbk_subject", "Subject", "gb18030"),
    ("gbk_subject_short", "Subject", "gb18030"),
    ("gbk_name_short", "From", "gb18030"),
    ("euckr_name", "From", "cp949"),
    ("euckr_subject", "Subject", "cp949"),
    ("big5_subject", "Subject", "big5"),  # the charset its body declares comes first
    ("big5_subject_short", "Subject", "cp950"),
    ("eucjp_subject", "Subject", "euc_jp"),
])
def test_raw_cjk_header_is_still_a_defect_naming_the_charset_used(name, header, codec):
    msg = parse(FIXTURES[name]())
    assert has_defect(msg, f"8-bit {header} header", codec), msg.defects


@pytest.mark.parametrize(("text", "codec"), [
    ("見積依頼", "cp932"),
    ("お願い", "cp932"),
    ("至急対応", "cp932"),
    ("テスト", "cp932"),
    ("ご相談", "cp932"),
    ("発送の件", "cp932"),
    ("发票问题", "gbk"),
    ("退款申请", "gbk"),
    ("密码重置", "gbk"),
    ("订单查询", "gbk"),
    ("无法登录", "gbk"),
    ("訂單查詢", "big5"),
    ("退款問題", "big5"),
    ("帳號密碼", "big5"),
    ("無法登入", "big5"),
    ("환불 요청", "cp949"),
    ("비밀번호", "cp949"),
    ("배송 문의", "cp949"),
    ("주문 확인", "cp949"),
])
def test_short_raw_subject_in_its_own_script(text, codec):
    # Four characters are too few for statistical detection; the plausibility check decides.
    assert parse(mail(text.encode(codec))).subject == text


@pytest.mark.parametrize("name", ["김민수", "이지은", "박서준", "최영호", "정수빈"])
def test_short_raw_korean_name(name):
    msg = parse(mail(sender=name.encode("cp949") + b" <kr@example.co.kr>"))
    assert msg.sender_name == name and msg.sender_address == "kr@example.co.kr"


@pytest.mark.parametrize("name", ["王小明", "李娜", "张伟", "陈静", "刘洋"])
def test_short_raw_chinese_name(name):
    msg = parse(mail(sender=name.encode("gbk") + b" <cn@example.cn>"))
    assert msg.sender_name == name and msg.sender_address == "cn@example.cn"


@pytest.mark.parametrize("text", [
    "Grüße", "café", "Müller", "naïve", "Straße", "Ça va", "Größe", "Zoë", "Ångström",
    "Smørrebrød", "Señor Núñez", "Crème brûlée", "Øre", "Ärger über Öl", "Préavis: 30 jours",
    "Prix 20 €", "Café – réservation", "façade", "Düsseldorf", "Málaga", "l’été",
])
def test_latin1_raw_subject_reads_as_before(text):
    msg = parse(mail(text.encode("cp1252")))
    assert msg.subject == text
    assert has_defect(msg, "8-bit Subject header decoded as cp1252"), msg.defects


def test_shift_jis_trail_byte_0x5c_is_not_a_backslash():
    # ソ is 0x83 0x5C and 表 is 0x95 0x5C in Shift_JIS: read before the address is parsed, the
    # 0x5C never acts as a quoted-pair backslash (RFC 5322 §3.2.1).
    msg = parse(mail("ソフト表示".encode("cp932"),
                     sender=b'"' + "ソフト開発部".encode("cp932") + b'" <dev@example.co.jp>'))
    assert msg.subject == "ソフト表示"
    assert msg.sender_name == "ソフト開発部" and msg.sender_address == "dev@example.co.jp"


def test_latin1_raw_from_reads_as_before():
    msg = parse(mail(sender="José García <jose@example.es>".encode("cp1252")))
    assert msg.sender_name == "José García"
    assert has_defect(msg, "8-bit From header decoded as cp1252")


def test_utf8_raw_headers_read_as_before():
    msg = parse(mail("見積依頼 – Grüße".encode("utf-8"),
                     sender="김민수 <kr@example.co.kr>".encode("utf-8")))
    assert msg.subject == "見積依頼 – Grüße" and msg.sender_name == "김민수"
    assert has_defect(msg, "8-bit Subject header decoded as utf-8")


def test_garbage_bytes_fall_back_to_cp1252_with_a_defect():
    msg = parse(mail(b"\x80\x81\xfe\xff\xa0 broken"))
    assert msg.subject.endswith("broken")
    assert has_defect(msg, "8-bit Subject header decoded as cp1252")


# --------------------------------------------------------------------------- charsets declared elsewhere


def test_charset_of_a_text_part_decides_an_ambiguous_file_name():
    # 見積書 in EUC-JP is also a valid GB 2312 string (稽持慕): the message's own EUC-JP text
    # part says which it is. With a GB 2312 text part the same bytes read as Chinese.
    name = "見積書.pdf".encode("euc_jp")
    japanese = parse(with_attachment(name, text_ctype=b"text/plain; charset=EUC-JP",
                                     text="見積書です。".encode("euc_jp")))
    chinese = parse(with_attachment(name, text_ctype=b"text/plain; charset=gb2312",
                                    text="附件。".encode("gbk")))
    assert [a.name for a in japanese.attachments] == ["見積書.pdf"]
    assert [a.name for a in chinese.attachments] == [name.decode("gb18030")]
    assert has_defect(japanese, "8-bit Content-Disposition header decoded as euc_jp")


def test_declared_single_byte_charset_does_not_swallow_cjk_bytes():
    # cp1252 decodes almost any bytes; a Latin-1 text part must not make a cp932 name mojibake.
    msg = parse(with_attachment("見積書①.pdf".encode("cp932"),
                                text_ctype=b"text/plain; charset=iso-8859-1", text=b"Ci-joint."))
    assert [a.name for a in msg.attachments] == ["見積書①.pdf"]


def test_encoded_word_charset_counts_as_declared():
    name = "見積書.pdf".encode("euc_jp")
    raw = with_attachment(name, text_ctype=b"text/plain; charset=us-ascii", text=b"Attached.")
    raw = raw.replace(b"Subject: Hello", b"Subject: " +
                      b"=?EUC-JP?B?" + base64.b64encode("見積書".encode("euc_jp")) + b"?=")
    msg = parse(raw)
    assert msg.subject == "見積書"
    assert [a.name for a in msg.attachments] == ["見積書.pdf"]


def test_header_decoding_sees_the_charsets_noted_before_it():
    # The order parse_email should use: note the parts' charsets, then decode the headers.
    from email import message_from_bytes, policy

    from bot.inbound.mailparse import headers, parts

    raw = mail("見積依頼".encode("euc_jp"), ctype=b"text/plain; charset=euc-jp",
               body="よろしく".encode("euc_jp"))
    msg = message_from_bytes(raw, policy=policy.default)
    walk = parts._Walk()
    parts._note_charsets(msg, walk)
    assert walk.declared_charsets == ["euc-jp"]
    assert headers._decoded_header(msg, "Subject", walk) == "見積依頼"


def test_declared_charsets_are_bounded():
    from bot.inbound.mailparse import parts

    walk = parts._Walk()
    for index in range(100):
        walk.note_charset(f"x-made-up-{index}")
    assert len(walk.declared_charsets) <= parts.MAX_CHARSET_HINTS


# --------------------------------------------------------------------------- ISO-2022-JP


def test_iso2022jp_with_nec_characters_reads_like_windows():
    msg = parse(FIXTURES["jis_circled_digits"]())
    assert "①請求書の金額" in msg.body and "フェーズⅠとフェーズⅡ" in msg.body
    assert msg.subject == "【ご相談】①と②について"
    assert msg.sender_name == "山田 太郎"
    assert has_defect(msg, "iso-2022-jp", "cp50221")


def test_plain_iso2022jp_has_no_defect_and_keeps_its_mappings():
    text = "お世話になっております。〜よろしくお願いします。"
    msg = parse(mail(b"=?ISO-2022-JP?B?" + base64.b64encode(_jis("ご確認")) + b"?=",
                     ctype=b"text/plain; charset=ISO-2022-JP", cte=b"7bit",
                     body=text.encode("iso2022_jp")))
    assert msg.body == text and msg.subject == "ご確認"
    assert msg.defects == ()


def test_iso2022jp_label_on_shift_jis_bytes():
    msg = parse(FIXTURES["jis_labelled_sjis"]())
    assert "請求書の再発行をお願いします。" in msg.body
    assert msg.subject == "請求書の再発行"
    assert has_defect(msg, "text/plain", "'iso-2022-jp'", "cp932")
    assert has_defect(msg, "encoded word", "'iso-2022-jp'", "cp932")


def test_iso2022jp_escapes_mixed_with_raw_shift_jis():
    # Windows' decoder reads 8-bit Shift_JIS between the escape sequences; so do we.
    body = _jis("ご注文①") + b"\r\n" + "発送済みです。".encode("cp932") + b"\r\n"
    msg = parse(mail(ctype=b"text/plain; charset=iso-2022-jp", body=body))
    assert msg.body == "ご注文①\n発送済みです。"
    assert has_defect(msg, "iso-2022-jp")


def test_iso2022jp_halfwidth_katakana_escape():
    # CP50221 writes JIS X 0201 katakana after ESC ( I, 0x21-0x5F: b"\x1b(I1" → ｱ
    body = b"\x1b(I" + bytes(b - 0x80 for b in "ｱﾝｹｰﾄ".encode("cp932")) + b"\x1b(B\r\n"
    msg = parse(mail(ctype=b"text/plain; charset=iso-2022-jp", cte=b"7bit", body=body))
    assert msg.body == "ｱﾝｹｰﾄ"


def test_iso2022jp_jis_x_0212_still_reads():
    text = "丂"  # JIS X 0212 only (RFC 2237 ISO-2022-JP-1)
    body = b"\x1b$(D" + bytes(b & 0x7F for b in text.encode("euc_jp")[1:]) + b"\x1b(B\r\n"
    msg = parse(mail(ctype=b"text/plain; charset=iso-2022-jp", cte=b"7bit", body=body))
    assert msg.body == text


def test_raw_iso2022jp_subject():
    msg = parse(FIXTURES["jis_raw_subject"]())
    assert msg.subject == "お問い合わせ"
    assert has_defect(msg, "Subject", "iso-2022-jp")


def test_raw_iso2022jp_from_name_with_circled_digit():
    msg = parse(mail(sender=_jis("山田①") + b" <yamada@example.jp>"))
    assert msg.sender_name == "山田①" and msg.sender_address == "yamada@example.jp"


def test_truncated_iso2022jp_never_raises():
    msg = parse(mail(ctype=b"text/plain; charset=iso-2022-jp", cte=b"7bit",
                     body=b"\x1b$B$3$s$K$A$O$\x1b(B ok\r\n\x1b$B-"))
    assert msg.body.startswith("こんにちは") and "ok" in msg.body
    assert has_defect(msg, "iso-2022-jp")


# --------------------------------------------------------------------------- file names


def test_raw_cp932_file_name_with_nec_character():
    msg = parse(FIXTURES["filename_cp932"]())
    assert [a.name for a in msg.attachments] == ["見積書①.pdf"]
    assert has_defect(msg, "8-bit", "cp932")


def test_rfc2231_file_name_labelled_shift_jis_holding_cp932():
    msg = parse(FIXTURES["filename_rfc2231_shift_jis"]())
    assert [a.name for a in msg.attachments] == ["見積書①.pdf"]


@pytest.mark.parametrize("name", ["Rechnung_März.pdf", "Résumé.docx", "Angebot Müller.xlsx"])
def test_raw_latin1_file_name_reads_as_before(name):
    msg = parse(with_attachment(name.encode("cp1252"), text_ctype=b"text/plain; charset=us-ascii",
                                text=b"Attached."))
    assert [a.name for a in msg.attachments] == [name]


# --------------------------------------------------------------------------- the plausibility check


def test_one_script_beats_rare_cjk_mixed_with_latin1_symbols():
    from bot.inbound.mailparse import charsets

    real = charsets._plausibility("見積依頼")
    assert real >= charsets.PLAUSIBLE
    assert charsets._plausibility("尒愊埶棅") < real  # the same bytes as GB 18030
    assert charsets._plausibility("¹ØÓÚ·¢Æ±") < charsets.PLAUSIBLE  # GBK bytes as cp1252
    assert charsets._plausibility(b"Gr\xfc\xdfe".decode("cp949")) < charsets.PLAUSIBLE  # Grüße
    assert charsets._plausibility("ｭqｳ谺dｸﾟ") < charsets.PLAUSIBLE  # Big5 bytes as cp932
    assert charsets._plausibility("Grüße") >= charsets.PLAUSIBLE
    assert charsets._plausibility("PDFファイルの件") >= charsets.PLAUSIBLE  # ASCII next to kana


def test_guess_prefers_declared_charsets_and_leaves_cp1252_to_the_caller():
    from bot.inbound.mailparse import charsets

    data = "見積依頼".encode("euc_jp")
    assert charsets._guess(data, ["euc-jp"]) == ("見積依頼", "euc_jp")
    assert charsets._guess("café".encode("cp1252"), []) is None
    assert charsets._guess(b"\x80\x81\xfe\xff", []) is None


# --------------------------------------------------------------------------- cost


def test_search_never_runs_on_ascii_or_utf8(monkeypatch):
    from bot.inbound.mailparse import charsets

    def refuse(*args, **kwargs):
        raise AssertionError("charset search ran")

    monkeypatch.setattr(charsets, "_guess", refuse)
    msg = parse(mail("Grüße 見積依頼".encode("utf-8"), body="Grüße\r\n".encode("utf-8"),
                     ctype=b"text/plain; charset=utf-8"))
    assert msg.subject == "Grüße 見積依頼"


def test_search_skips_long_undeclared_bytes():
    from bot.inbound.mailparse import charsets

    long_subject = ("发票问题" * (charsets.MAX_GUESS_BYTES // 8 + 1)).encode("gbk")
    assert charsets._guess(long_subject, []) is None
    assert charsets._guess(long_subject, ["gbk"]) == (long_subject.decode("gb18030"), "gb18030")
