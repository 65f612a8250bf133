"""Doors out: senders the outbox dispatcher hands intents to (email today; SMS next). Each
renders its channel's format and delivers; none decides what to send or touches the database."""
