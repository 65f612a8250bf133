"""Mail whose headers, file names or bodies are in a charset nobody declared, or not the one declared.

Three kinds: raw 8-bit header bytes in an East Asian legacy charset (``sjis_*``, ``gbk_*``,
``euckr_*``, ``big5_*``, ``eucjp_*``), Japanese mail labelled ISO-2022-JP that holds Microsoft/NEC
extensions or is really Shift_JIS (``jis_*``), and attachment file names in raw cp932
(``filename_*``); plus Latin-1 mail of the same shape (``latin_*``), which must still read as it
did. Every message is written here by hand, as bytes, from a description of what the sending
software does (each builder's docstring says which, and the RFC it breaks); none is copied from
another project's test mail. Short subjects and names (3 to 4 characters) are there on purpose:
they are too short for statistical charset detection.

``EXPECTED`` was written from the text each fixture encodes, not by running the parser: keys
``subject``, ``requester_name``, ``requester_email``, ``body_contains`` and ``attachments``. This
module must not touch the network, read or write files, or import the code under test.
"""

from __future__ import annotations

import base64
from collections.abc import Callable

SUPPORT = "help@support.example.com"
DATE = "Date: Mon, 03 Mar 2025 09:12:44 +0900"


def _mail(*header_lines: str | bytes, body: bytes) -> bytes:
    """Hand-built mail with CRLF line ends as on the wire (RFC 5322 §2.1). Header lines given as
    bytes go out exactly as the sender wrote them, raw 8-bit bytes included."""
    lines = [line if isinstance(line, bytes) else line.encode("ascii") for line in header_lines]
    return b"\r\n".join([*lines, b"", body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")])


def _plain(charset: str, cte: str = "8bit") -> tuple[str, str, str]:
    return ("MIME-Version: 1.0", f"Content-Type: text/plain; charset={charset}",
            f"Content-Transfer-Encoding: {cte}")


def _jis(text: str) -> bytes:
    """ISO-2022-JP the way Windows mailers write it (CP50220): JIS X 0208 escape segments whose
    two-byte codes come from cp932, so NEC row 13 (①, Ⅰ, ㈱, №) goes out too. RFC 1468 has
    no such characters; Python's iso2022_jp codec refuses them, so the bytes are built here."""
    out = bytearray()
    double = False
    for char in text:
        if char.isascii():
            if double:
                out += b"\x1b(B"
                double = False
            out += char.encode("ascii")
            continue
        if not double:
            out += b"\x1b$B"
            double = True
        out += _sjis_to_jis(char.encode("cp932"))
    if double:
        out += b"\x1b(B"
    return bytes(out)


def _sjis_to_jis(pair: bytes) -> bytes:
    """One Shift_JIS double-byte code → its JIS X 0208 row/cell bytes (JIS X 0208:1997 annex 1)."""
    lead, trail = pair
    row = (lead - (0x70 if lead <= 0x9F else 0xB0)) * 2 - 1  # odd row first
    if trail >= 0x9F:
        return bytes([row + 1, trail - 0x7E])
    return bytes([row, trail - (0x20 if trail >= 0x80 else 0x1F)])


def _word(charset: str, data: bytes) -> str:
    """One RFC 2047 B-encoded word over ``data`` as given (right or wrong for ``charset``)."""
    return f"=?{charset}?B?{base64.b64encode(data).decode('ascii')}?="


# --------------------------------------------------------------------------- 1. raw 8-bit headers


def sjis_subject() -> bytes:
    """A Japanese web-form script (PHP ``mail()`` with a Shift_JIS internal encoding) that writes
    the Subject as raw cp932 bytes instead of RFC 2047 words (RFC 5322 §2.2: header bodies are
    US-ASCII). The body is labelled Shift_JIS correctly."""
    return _mail(
        "From: Yamada Taro <taro.yamada@example.co.jp>",
        "To: " + SUPPORT,
        b"Subject: " + "【至急】ログインできません（パスワード再設定）".encode("cp932"),
        DATE,
        "Message-ID: <form.20250303.0912@web.example.co.jp>",
        *_plain("Shift_JIS"),
        body="お世話になっております。\nログインできません。\n山田\n".encode("cp932"),
    )


def sjis_subject_short() -> bytes:
    """The same script with a four-kanji Subject (見積依頼, "request for a quote") and an English
    body in US-ASCII: nothing else in the message names a charset."""
    return _mail(
        "From: Sato Hanako <hanako.sato@example.co.jp>",
        "To: " + SUPPORT,
        b"Subject: " + "見積依頼".encode("cp932"),
        DATE,
        "Message-ID: <form.20250303.0913@web.example.co.jp>",
        *_plain("us-ascii", "7bit"),
        body=b"Please send a quote for 20 units of the Pro plan.\n\nSato\n",
    )


def gbk_subject() -> bytes:
    """A Chinese e-commerce back office that sends its notices with a raw GBK Subject (RFC 5322
    §2.2, RFC 2047 ignored) and labels the body gb2312 although it writes GBK."""
    return _mail(
        "From: Wang Fang <wang.fang@example.cn>",
        "To: " + SUPPORT,
        b"Subject: " + "关于发票的问题，请尽快回复".encode("gbk"),
        DATE,
        "Message-ID: <notice.88231@shop.example.cn>",
        *_plain("gb2312"),
        body="您好，我上个月的发票还没有收到。\n谢谢！\n".encode("gbk"),
    )


def gbk_subject_short() -> bytes:
    """The same back office with a four-character Subject (发票问题, "invoice question") and a
    US-ASCII body: no charset named anywhere."""
    return _mail(
        "From: Li Wei <li.wei@example.cn>",
        "To: " + SUPPORT,
        b"Subject: " + "发票问题".encode("gbk"),
        DATE,
        "Message-ID: <notice.88232@shop.example.cn>",
        *_plain("us-ascii", "7bit"),
        body=b"Hello, the invoice for order 88232 is missing.\n",
    )


def gbk_name_short() -> bytes:
    """A Chinese webmail relay that copies the account's display name into From as raw GBK
    (RFC 5322 §3.2.3 display names are ASCII or RFC 2047 words): three characters, 王小明."""
    return _mail(
        b"From: " + "王小明".encode("gbk") + b" <xiaoming.wang@example.cn>",
        "To: " + SUPPORT,
        "Subject: Account locked",
        DATE,
        "Message-ID: <relay.5521@mail.example.cn>",
        *_plain("us-ascii", "7bit"),
        body=b"My account is locked after the password change.\n",
    )


def euckr_name() -> bytes:
    """A Korean groupware gateway that writes the sender's name raw in EUC-KR (cp949) into
    From, without RFC 2047 words: three syllables, 김민수."""
    return _mail(
        b"From: " + "김민수".encode("cp949") + b" <minsu.kim@example.co.kr>",
        "To: " + SUPPORT,
        "Subject: Order 20250303-17",
        DATE,
        "Message-ID: <gw.20250303.17@example.co.kr>",
        *_plain("us-ascii", "7bit"),
        body=b"Hello, order 20250303-17 arrived damaged.\n",
    )


def euckr_subject() -> bytes:
    """The same gateway with a raw cp949 Subject and name, and the body labelled as Outlook labels
    Korean (``ks_c_5601-1987``, really cp949), base64-encoded."""
    body = "안녕하세요.\n어제 주문한 상품을 취소하고 싶습니다.\n감사합니다.\n".encode("cp949")
    return _mail(
        b"From: " + "박서준".encode("cp949") + b" <seojun.park@example.co.kr>",
        "To: " + SUPPORT,
        b"Subject: " + "주문 취소 요청드립니다".encode("cp949"),
        DATE,
        "Message-ID: <gw.20250303.18@example.co.kr>",
        *_plain("ks_c_5601-1987", "base64"),
        body=base64.encodebytes(body),
    )


def big5_subject() -> bytes:
    """A Taiwanese web shop's contact form that writes the Subject as raw Big5 (RFC 5322 §2.2)
    and the body as Big5, labelled."""
    return _mail(
        "From: Chen Mei-Ling <meiling.chen@example.com.tw>",
        "To: " + SUPPORT,
        b"Subject: " + "請問我的訂單什麼時候出貨".encode("cp950"),
        DATE,
        "Message-ID: <contact.3391@shop.example.com.tw>",
        *_plain("big5"),
        body="您好，訂單編號 3391 還沒有收到。\n謝謝！\n".encode("cp950"),
    )


def big5_subject_short() -> bytes:
    """The same form with a four-character Subject (訂單查詢, "order inquiry") and a US-ASCII
    body."""
    return _mail(
        "From: Lin Chih-Hao <chihhao.lin@example.com.tw>",
        "To: " + SUPPORT,
        b"Subject: " + "訂單查詢".encode("cp950"),
        DATE,
        "Message-ID: <contact.3392@shop.example.com.tw>",
        *_plain("us-ascii", "7bit"),
        body=b"Where is order 3392?\n",
    )


def eucjp_subject() -> bytes:
    """An old Unix mail script (Perl, EUC-JP) that puts the Subject raw in EUC-JP (RFC 1468 asks
    for ISO-2022-JP in RFC 2047 words) and labels the body EUC-JP."""
    return _mail(
        "From: Suzuki Ichiro <ichiro.suzuki@example.ne.jp>",
        "To: " + SUPPORT,
        b"Subject: " + "パスワードの再発行について".encode("euc_jp"),
        DATE,
        "Message-ID: <cron.7781@host.example.ne.jp>",
        *_plain("EUC-JP"),
        body="パスワードの再発行をお願いします。\n鈴木\n".encode("euc_jp"),
    )


# --------------------------------------------------------------------------- 2. ISO-2022-JP


def jis_circled_digits() -> bytes:
    """Outlook and Becky! on Japanese Windows encode ISO-2022-JP as CP50220: NEC row 13
    characters (①②③, Ⅰ Ⅱ, ㈱, №) go out inside ``ESC $ B`` segments although RFC 1468's JIS X
    0208 has none of them. Here in the body, the Subject and the From name."""
    body = ("お世話になっております。\n以下の点についてご確認ください。\n"
            "①請求書の金額\n②納品日\n③支払方法\n"
            "フェーズⅠとフェーズⅡの費用も教えてください。\n"
            "№1234\n㈱サンプル商事 山田\n")
    return _mail(
        "From: " + _word("ISO-2022-JP", _jis("山田 太郎")) + " <taro.yamada@example.jp>",
        "To: " + SUPPORT,
        "Subject: " + _word("ISO-2022-JP", _jis("【ご相談】①と②について")),
        DATE,
        "Message-ID: <becky.20250303.1@example.jp>",
        *_plain("ISO-2022-JP", "7bit"),
        body=_jis(body),
    )


def jis_labelled_sjis() -> bytes:
    """A PHP form script that writes the ISO-2022-JP labels by hand but leaves out the conversion
    of its Shift_JIS text: the body and the Subject's encoded word say ISO-2022-JP and hold
    Shift_JIS bytes (8-bit, no escape sequences), which breaks RFC 1468. Japanese mail clients
    show it anyway."""
    return _mail(
        "From: Tanaka Ken <ken.tanaka@example.jp>",
        "To: " + SUPPORT,
        "Subject: " + _word("ISO-2022-JP", "請求書の再発行".encode("cp932")),
        DATE,
        "Message-ID: <php.20250303.2@example.jp>",
        *_plain("ISO-2022-JP"),
        body="いつもお世話になっております。\n請求書の再発行をお願いします。\n田中\n".encode("cp932"),
    )


def jis_raw_subject() -> bytes:
    """Old Japanese mobile gateways and scripts that put ISO-2022-JP escape sequences straight into
    the Subject, with no RFC 2047 word around them (RFC 1468 §3 requires the words)."""
    return _mail(
        "From: Ito Yuki <yuki.ito@example.jp>",
        "To: " + SUPPORT,
        b"Subject: " + _jis("お問い合わせ"),
        DATE,
        "Message-ID: <gw.20250303.3@mobile.example.jp>",
        *_plain("ISO-2022-JP", "7bit"),
        body=_jis("解約の方法を教えてください。\n伊藤\n"),
    )


# --------------------------------------------------------------------------- 3. file names


def filename_cp932() -> bytes:
    """A Japanese Windows webmail that writes the attachment's file name as raw cp932 bytes in
    quotes (RFC 2183 §2.3 wants ASCII; RFC 2231 is the way), with ① in it, which plain
    Shift_JIS lacks. The text part is ISO-2022-JP."""
    name = "見積書①.pdf".encode("cp932")
    return _mail(
        "From: Kobayashi Aoi <aoi.kobayashi@example.jp>",
        "To: " + SUPPORT,
        "Subject: Quote",
        DATE,
        "Message-ID: <web.20250303.4@example.jp>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b1"',
        body=b"\n".join([
            b"--b1",
            b"Content-Type: text/plain; charset=ISO-2022-JP",
            b"Content-Transfer-Encoding: 7bit",
            b"",
            _jis("見積書を送付いたします。"),
            b"--b1",
            b'Content-Type: application/pdf; name="' + name + b'"',
            b'Content-Disposition: attachment; filename="' + name + b'"',
            b"Content-Transfer-Encoding: base64",
            b"",
            base64.encodebytes(b"%PDF-1.4\n%quote\n").strip(),
            b"--b1--",
            b"",
        ]),
    )


def filename_rfc2231_shift_jis() -> bytes:
    """A mailer that does use RFC 2231 but labels cp932 bytes ``shift_jis``: ① (NEC row 13) is not
    in Shift_JIS proper, so a strict decoder loses it."""
    quoted = "".join(f"%{b:02X}" for b in "見積書①.pdf".encode("cp932"))
    return _mail(
        "From: Kobayashi Aoi <aoi.kobayashi@example.jp>",
        "To: " + SUPPORT,
        "Subject: Quote again",
        DATE,
        "Message-ID: <web.20250303.5@example.jp>",
        "MIME-Version: 1.0",
        'Content-Type: multipart/mixed; boundary="b1"',
        body=b"\n".join([
            b"--b1",
            b"Content-Type: text/plain; charset=us-ascii",
            b"",
            b"Quote attached.",
            b"--b1",
            b"Content-Type: application/pdf",
            b"Content-Disposition: attachment; filename*=shift_jis''" + quoted.encode("ascii"),
            b"Content-Transfer-Encoding: base64",
            b"",
            base64.encodebytes(b"%PDF-1.4\n%quote\n").strip(),
            b"--b1--",
            b"",
        ]),
    )


# --------------------------------------------------------------------------- 4. Latin-1, as before


def latin_headers() -> bytes:
    """A European desktop client of the 2000s that writes Subject and From raw in Windows-1252
    (RFC 5322 §2.2 broken the Western way)."""
    return _mail(
        b"From: Fran\xe7ois M\xfcller <francois.muller@example.fr>",
        "To: " + SUPPORT,
        "Subject: R\xe9servation annul\xe9e \x96 caf\xe9".encode("latin-1"),
        DATE,
        "Message-ID: <oe.20250303.6@example.fr>",
        *_plain("iso-8859-1"),
        body="Bonjour, la réservation du café est annulée.\n".encode("cp1252"),
    )


def latin_short() -> bytes:
    """The same kind of client with a one-word Subject (Grüße) and a short name (Zoë Brontë): short
    Latin-1 strings that a CJK decoder could also swallow."""
    return _mail(
        "From: Zo\xeb Bront\xeb <zoe.bronte@example.co.uk>".encode("latin-1"),
        "To: " + SUPPORT,
        "Subject: Gr\xfc\xdfe".encode("latin-1"),
        DATE,
        "Message-ID: <oe.20250303.7@example.co.uk>",
        *_plain("us-ascii", "7bit"),
        body=b"Just saying hello.\n",
    )


FIXTURES: dict[str, Callable[[], bytes]] = {
    "sjis_subject": sjis_subject,
    "sjis_subject_short": sjis_subject_short,
    "gbk_subject": gbk_subject,
    "gbk_subject_short": gbk_subject_short,
    "gbk_name_short": gbk_name_short,
    "euckr_name": euckr_name,
    "euckr_subject": euckr_subject,
    "big5_subject": big5_subject,
    "big5_subject_short": big5_subject_short,
    "eucjp_subject": eucjp_subject,
    "jis_circled_digits": jis_circled_digits,
    "jis_labelled_sjis": jis_labelled_sjis,
    "jis_raw_subject": jis_raw_subject,
    "filename_cp932": filename_cp932,
    "filename_rfc2231_shift_jis": filename_rfc2231_shift_jis,
    "latin_headers": latin_headers,
    "latin_short": latin_short,
}

EXPECTED: dict[str, dict] = {
    "sjis_subject": {
        "subject": "【至急】ログインできません（パスワード再設定）",
        "requester_name": "Yamada Taro",
        "requester_email": "taro.yamada@example.co.jp",
        "body_contains": ["ログインできません。"],
    },
    "sjis_subject_short": {
        "subject": "見積依頼",
        "requester_name": "Sato Hanako",
        "requester_email": "hanako.sato@example.co.jp",
        "body_contains": ["Please send a quote"],
    },
    "gbk_subject": {
        "subject": "关于发票的问题，请尽快回复",
        "requester_name": "Wang Fang",
        "requester_email": "wang.fang@example.cn",
        "body_contains": ["我上个月的发票还没有收到。"],
    },
    "gbk_subject_short": {
        "subject": "发票问题",
        "requester_name": "Li Wei",
        "requester_email": "li.wei@example.cn",
        "body_contains": ["invoice for order 88232"],
    },
    "gbk_name_short": {
        "subject": "Account locked",
        "requester_name": "王小明",
        "requester_email": "xiaoming.wang@example.cn",
        "body_contains": ["account is locked"],
    },
    "euckr_name": {
        "subject": "Order 20250303-17",
        "requester_name": "김민수",
        "requester_email": "minsu.kim@example.co.kr",
        "body_contains": ["arrived damaged"],
    },
    "euckr_subject": {
        "subject": "주문 취소 요청드립니다",
        "requester_name": "박서준",
        "requester_email": "seojun.park@example.co.kr",
        "body_contains": ["어제 주문한 상품을 취소하고 싶습니다."],
    },
    "big5_subject": {
        "subject": "請問我的訂單什麼時候出貨",
        "requester_name": "Chen Mei-Ling",
        "requester_email": "meiling.chen@example.com.tw",
        "body_contains": ["訂單編號 3391 還沒有收到。"],
    },
    "big5_subject_short": {
        "subject": "訂單查詢",
        "requester_name": "Lin Chih-Hao",
        "requester_email": "chihhao.lin@example.com.tw",
        "body_contains": ["Where is order 3392?"],
    },
    "eucjp_subject": {
        "subject": "パスワードの再発行について",
        "requester_name": "Suzuki Ichiro",
        "requester_email": "ichiro.suzuki@example.ne.jp",
        "body_contains": ["パスワードの再発行をお願いします。"],
    },
    "jis_circled_digits": {
        "subject": "【ご相談】①と②について",
        "requester_name": "山田 太郎",
        "requester_email": "taro.yamada@example.jp",
        "body_contains": ["①請求書の金額", "②納品日", "③支払方法",
                          "フェーズⅠとフェーズⅡの費用", "№1234", "㈱サンプル商事 山田"],
    },
    "jis_labelled_sjis": {
        "subject": "請求書の再発行",
        "requester_name": "Tanaka Ken",
        "requester_email": "ken.tanaka@example.jp",
        "body_contains": ["請求書の再発行をお願いします。"],
    },
    "jis_raw_subject": {
        "subject": "お問い合わせ",
        "requester_name": "Ito Yuki",
        "requester_email": "yuki.ito@example.jp",
        "body_contains": ["解約の方法を教えてください。"],
    },
    "filename_cp932": {
        "subject": "Quote",
        "requester_name": "Kobayashi Aoi",
        "requester_email": "aoi.kobayashi@example.jp",
        "body_contains": ["見積書を送付いたします。"],
        "attachments": ["見積書①.pdf"],
    },
    "filename_rfc2231_shift_jis": {
        "subject": "Quote again",
        "requester_name": "Kobayashi Aoi",
        "requester_email": "aoi.kobayashi@example.jp",
        "body_contains": ["Quote attached."],
        "attachments": ["見積書①.pdf"],
    },
    "latin_headers": {
        "subject": "Réservation annulée – café",
        "requester_name": "François Müller",
        "requester_email": "francois.muller@example.fr",
        "body_contains": ["la réservation du café est annulée."],
    },
    "latin_short": {
        "subject": "Grüße",
        "requester_name": "Zoë Brontë",
        "requester_email": "zoe.bronte@example.co.uk",
        "body_contains": ["Just saying hello."],
    },
}
