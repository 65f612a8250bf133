"""Raise this process's open-file limit to what the OS allows, once, at start-up.

Each SMTP session and HTTP connection is a file descriptor; distributions start services with
a soft limit of 1,024 while allowing far more. The session caps (``smtp_in.max_sessions``,
``web.max_connections``) are what bound the count; this only keeps the soft limit from being
the thing that breaks first. Must not be called from library code: ``app.py`` calls it.
``open_file_limit()`` only reads the limit (the SMTP door checks its caps against it).
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

TARGET = 65536  # plenty for every cap; some systems report an unlimited hard limit


def open_file_limit() -> int | None:
    """The soft RLIMIT_NOFILE in force (None where the platform has no such limit, or it is
    unlimited)."""
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


def raise_open_file_limit() -> int | None:
    """Raise the soft RLIMIT_NOFILE towards the hard limit; return the soft limit in force
    afterwards (None where the platform has no such limit)."""
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = TARGET if hard == resource.RLIM_INFINITY else min(hard, TARGET)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError) as exc:  # a container may forbid it: keep what we have
            log.info("open-file limit stays at %s: %s", soft, exc)
    return soft
