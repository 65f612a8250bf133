"""Which sender checks failed, by the word of the MTAs we trust (RFC 8601).

A mail's ``Authentication-Results`` headers are only as good as whoever wrote them: the
MTAs in front of Deskbell add theirs on top, but the sender can put any number below. So
only headers from ``smtp_in.authserv_ids`` count, or, when none are configured, only the
topmost one (the nearest MTA's). Must not block or reroute mail: a failure is shown to staff,
who decide; nor verify anything itself (no DNS).
"""

from __future__ import annotations

from collections.abc import Iterable

CHECKED = ("dmarc", "dkim", "spf")
# Results that mean "this sender may not be who the From says" (RFC 8601 §2.7).
FAILING = {"fail", "softfail", "permerror"}

AuthResults = Iterable[tuple[str, Iterable[tuple[str, str]]]]


def failed_checks(auth_results: AuthResults, *, trusted_ids: Iterable[str] = ()) -> dict[str, str] | None:
    """{"dmarc": "fail", …} for each checked method that failed, None when none did. DKIM
    fails only when no signature passed (a mail may carry several)."""
    trusted = {t.lower() for t in trusted_ids}
    headers = list(auth_results)
    # Only the topmost header of a trusted MTA: one lower down, even with a trusted id, may be
    # the sender's own (RFC 8601 §5 asks MTAs to remove those; not all do), and its "pass"
    # must not cancel the real verdict.
    chosen = next((h for h in headers if h[0] in trusted), None) if trusted else \
        (headers[0] if headers else None)
    outcomes: dict[str, set[str]] = {}
    for method, result in chosen[1] if chosen else ():
        if method in CHECKED:
            outcomes.setdefault(method, set()).add(result)
    # A mail may carry several DKIM signatures: one that passes is enough. DMARC and SPF have
    # one verdict each.
    failed = {method: sorted(results & FAILING)[0] for method, results in outcomes.items()
              if results & FAILING and not (method == "dkim" and "pass" in results)}
    return dict(sorted(failed.items(), key=lambda kv: CHECKED.index(kv[0]))) or None


def describe(failed: dict[str, str] | None) -> str:
    """"DMARC fail, SPF softfail" for people."""
    return ", ".join(f"{method.upper()} {result}" for method, result in (failed or {}).items())
