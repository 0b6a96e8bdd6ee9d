"""Serving: the long-running HTTP services of the runtime image (the image classifier)."""
