"""Pantau: a message-queue stream processor for live news."""

__version__ = "0.1.0"
