"""The outbox dispatcher: hands outbox intents to the sender of their channel, with retries.
No rendering here (senders render)."""
