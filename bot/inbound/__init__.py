"""Doors in: SMTP today (IMAP and the Twilio SMS webhook join here). Each turns what it
receives into an ``InboundMessage`` and calls ``core.intake.ingest``; none holds ticket logic."""
