"""Outgoing messages (email, SMS) behind one small interface per channel."""
