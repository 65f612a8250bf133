"""Doors out: senders the outbox dispatcher hands rendered rows to (email today; SMS next).
They deliver and report; they never decide what to send or touch the database."""
