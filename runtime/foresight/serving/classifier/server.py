"""Entry point of ``foresight serve classifier``: reads the environment once and serves with uvicorn."""

from __future__ import annotations

import logging
import os

from .config import ClassifierConfig

__all__ = ["run"]


def run(config: ClassifierConfig, *, log_level: str = "info") -> None:
    """Serve the classifier on ``config.host:config.port`` until interrupted."""
    import uvicorn

    from .app import create_app

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    app = create_app(config, environ=dict(os.environ))
    # access_log off: uvicorn's access lines add nothing the request log and metrics lack, and cost
    # a noticeable share of the cached hot path.
    uvicorn.run(app, host=config.host, port=config.port, log_level=log_level, access_log=False)
