"""Calendly connector for Mathia."""
