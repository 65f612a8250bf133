"""The domain: tickets, threading, intake and staff actions.

Must not import any adapter (inbound, outbound, slack, outbox, cli, web, app), any SDK or
socket library: everything that leaves the system is written as an outbox row.
"""
