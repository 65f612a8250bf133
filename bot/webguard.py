"""HTTP connection guard: a client that does not finish a request's headers in time is cut off.

uvicorn closes idle keep-alive connections but lets a client dribble header bytes forever
(slowloris). Must not know any route.
"""

from __future__ import annotations

from uvicorn.protocols.http.h11_impl import H11Protocol


def header_deadline_protocol(seconds: float) -> type[H11Protocol]:
    """An h11 protocol class for ``uvicorn.Config(http=...)`` with a header deadline."""
    return H11Protocol  # TODO(web hardening): enforce the deadline
