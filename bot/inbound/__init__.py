"""Doors in: SMTP today (IMAP and the Twilio SMS webhook join here). A door only commits what
it receives to the spool and answers; ``pipeline`` parses spooled messages and hands them to
``core.intake.ingest``. None holds ticket logic."""
