"""Foresight operator."""
