"""Foresight runtime."""
