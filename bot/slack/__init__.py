"""The staff door: Block Kit (cards, modals, App Home), interactivity listeners, ``/ticket``,
and the Slack sender. Listeners call one core action each; nothing here holds ticket logic."""
