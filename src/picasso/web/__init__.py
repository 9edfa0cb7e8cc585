"""The web face of Picasso: a FastAPI app from :func:`create_app`. It holds no
algorithm and no framework code; everything goes through the job runner and the
service functions the CLI uses."""

from .app import create_app
from .settings import WebSettings

__all__ = ["WebSettings", "create_app"]
