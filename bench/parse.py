"""Benchmark: our mail parser against the bare stdlib parse, on the suite's own mail corpus.

Not a test. Run from the project root:

    python bench/parse.py [--rounds 20]

The corpus is every mail fixture of the test suite (``tests/corpus.py``: odd real-world mail
and the per-area quirk fixtures, all built by our tests, the 10 MB attachment left out so it
does not dominate). Each round parses the whole corpus once with
``bot.inbound.mailparse.parse_email`` (headers, bodies, HTML to text, reply splitting,
attachments, TNEF, reports) and once with ``email.message_from_bytes(policy=default)``
followed by ``get_body()`` — the least any reader of the mail must do. It prints both rates
and the ratio (target ≥ 0.5), and the slowest fixtures for us.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import datetime, timezone
from email import message_from_bytes, policy
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.core.errors import MailParseError  # noqa: E402
from bot.inbound.mailparse import parse_email  # noqa: E402
from tests import corpus  # noqa: E402

SKIP = {"odd:big_attachment_10mb"}
NOW = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)


def ours(raw: bytes) -> None:
    try:
        parse_email(raw, received_at=NOW, envelope_sender="customer@example.net",
                    recipients=("help@support.example.com",), door="smtp",
                    our_message_id_domain="support.example.com")
    except MailParseError:
        pass


def bare(raw: bytes) -> None:
    msg = message_from_bytes(raw, policy=policy.default)
    body = msg.get_body(("plain", "html"))
    if body is not None:
        try:
            body.get_content()
        except (LookupError, ValueError, AttributeError):
            pass


def rate(fn, mails: list[bytes], rounds: int) -> float:  # noqa: ANN001
    start = time.perf_counter()
    for _ in range(rounds):
        for raw in mails:
            fn(raw)
    return rounds * len(mails) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20, help="passes over the corpus per parser")
    args = parser.parse_args()
    corpus_mail = {name: make() for name, make in corpus.fixtures().items() if name not in SKIP}
    mails = [raw for raw in corpus_mail.values() if raw is not None]
    size = sum(map(len, mails))
    print(f"$ python bench/parse.py --rounds {args.rounds}")
    print(f"Corpus: {len(mails)} messages, {size / 1024:.0f} kB, Python {sys.version.split()[0]}")
    for fn in (ours, bare):  # warm caches and imports
        rate(fn, mails, 1)
    bare_rate = rate(bare, mails, args.rounds)
    our_rate = rate(ours, mails, args.rounds)
    ratio = our_rate / bare_rate
    print(f"  email.message_from_bytes + get_body: {bare_rate:8.0f} msg/s")
    print(f"  bot.inbound.mailparse.parse_email:   {our_rate:8.0f} msg/s   ratio {ratio:.2f} "
          f"(target >= 0.50) {'met' if ratio >= 0.5 else '**missed**'}")
    slowest = sorted(((rate(ours, [raw], 3) ** -1, name) for name, raw in corpus_mail.items()
                      if raw is not None), reverse=True)[:5]
    print("  slowest for us: " + ", ".join(f"{name} {seconds * 1000:.1f} ms" for seconds, name in slowest))


if __name__ == "__main__":
    main()
