"""Deskbell: an email-first helpdesk whose staff work in Slack."""

__version__ = "0.1.0"
