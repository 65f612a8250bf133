"""Every mail fixture of the suite in one place: the odd-mail scenarios and the per-area
quirk fixtures, each with what a person reading it expects (where one was written down).

Used by the corpus test (every fixture through the real SMTP door) and by ``bench/parse.py``.
Data only: no parsing here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from tests import mailfixtures
from tests.inbound import expected_odd_mail

# Modules that contribute FIXTURES (name → bytes) and EXPECTED (name → expectations); the
# optional ENVELOPE_FROM (name → SMTP envelope sender) where the envelope matters.
AREAS = ("tests.inbound.fixtures_headers", "tests.inbound.fixtures_charsets",
         "tests.inbound.fixtures_bodies")


def _area(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError:
        return None


def fixtures() -> dict[str, Callable[[], bytes]]:
    found: dict[str, Callable[[], bytes]] = {f"odd:{k}": v for k, v in mailfixtures.ODD_MAIL.items()}
    for module in filter(None, map(_area, AREAS)):
        area = module.__name__.rsplit("_", 1)[-1]
        found.update({f"{area}:{k}": v for k, v in module.FIXTURES.items()})
    return found


def expected() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {f"odd:{k}": v for k, v in expected_odd_mail.EXPECTED.items()}
    for module in filter(None, map(_area, AREAS)):
        area = module.__name__.rsplit("_", 1)[-1]
        found.update({f"{area}:{k}": v for k, v in getattr(module, "EXPECTED", {}).items()})
    return found


def no_header_block() -> set[str]:
    """Fixtures that are not mail at all: the only ones that may be held as unparseable."""
    return {f"odd:{k}" for k in expected_odd_mail.NO_HEADER_BLOCK}


def envelope_from() -> dict[str, str]:
    found: dict[str, str] = {"odd:dsn_bounce": "", "odd:plain_bounce": ""}
    for module in filter(None, map(_area, AREAS)):
        area = module.__name__.rsplit("_", 1)[-1]
        found.update({f"{area}:{k}": v for k, v in getattr(module, "ENVELOPE_FROM", {}).items()})
    return found
