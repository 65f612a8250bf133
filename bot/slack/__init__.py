"""The staff door: Block Kit (cards, modals, App Home), interactivity listeners, ``/ticket``,
and the Slack poster. Listeners call one core action each; nothing here holds ticket logic."""
