"""The gateway server: OpenAI- and Anthropic-compatible HTTP over the router."""

from polyroute.server.app import create_app
from polyroute.server.gateway import Gateway

__all__ = ["Gateway", "create_app"]
