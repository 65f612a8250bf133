"""The outbox dispatcher: moves rendered rows to their senders with retries. No rendering."""
