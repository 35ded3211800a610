"""The web dashboard: a single-page app served by the gateway itself.

``mount(app)`` registers the page at ``/``, its files at ``/static/{path}`` and
the JSON endpoints the pages need (``dashboard.api``).  The page is plain
HTML, CSS and JavaScript modules shipped as package data: nothing is loaded
from a CDN and nothing needs the network at run time.
"""

from __future__ import annotations

import hashlib
import mimetypes
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from polyroute.server.dashboard import api

__all__ = ["STATIC", "mount"]

STATIC: Traversable = resources.files(__package__).joinpath("static")

# Explicit types: the platform's mimetypes table may lack or misname some
# (browsers refuse a module script unless it is served as JavaScript).
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".json": "application/json",
}
# Only the page's own origin: no inline script, no remote anything.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


_cache: dict[str, Asset] = {}


def _asset(name: str) -> Asset | None:
    """A file of ``static/`` by plain name (no folders, no dot files), read once."""
    hit = _cache.get(name)
    if hit is not None:
        return hit
    if not name or "/" in name or "\\" in name or name.startswith("."):
        return None
    entry = STATIC.joinpath(name)
    if not entry.is_file():
        return None
    body = entry.read_bytes()
    suffix = "." + name.rpartition(".")[2] if "." in name else ""
    ctype = CONTENT_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    asset = Asset(body, ctype, '"' + hashlib.sha256(body).hexdigest()[:20] + '"')
    _cache[name] = asset
    return asset


def _serve(request: Request, asset: Asset) -> Response:
    # no-cache = always revalidate: a new release shows at once, and an
    # unchanged file costs a 304 with no body.
    headers = {"etag": asset.etag, "cache-control": "no-cache", **SECURITY_HEADERS}
    match = request.headers.get("if-none-match")
    if match and asset.etag in {m.strip() for m in match.split(",")}:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.content_type, headers=headers)


def _not_found() -> Response:
    return Response(
        b'{"error":{"message":"no such file","type":"not_found_error","param":"path",'
        b'"code":"not_found"}}',
        status_code=404,
        media_type="application/json",
    )


async def index(request: Request) -> Response:
    asset = _asset("index.html")
    return _serve(request, asset) if asset else _not_found()


async def static(request: Request) -> Response:
    asset = _asset(request.path_params["path"])
    return _serve(request, asset) if asset else _not_found()


Endpoint = Callable[[Request], Any]

ROUTES: tuple[tuple[str, Endpoint, list[str]], ...] = (
    ("/", index, ["GET"]),
    ("/static/{path:path}", static, ["GET"]),
    ("/api/v1/dashboard/session", api.session, ["GET"]),
    ("/api/v1/catalog", api.catalog, ["GET"]),
    ("/api/v1/pipelines", api.list_pipelines, ["GET"]),
    ("/api/v1/pipelines/validate", api.validate_pipeline, ["POST"]),
    ("/api/v1/pipelines/yaml", api.pipeline_yaml, ["POST"]),
    ("/api/v1/config/validation", api.config_validation, ["GET"]),
    ("/api/v1/usage/series", api.usage_series, ["GET"]),
)


def _path_of(route: BaseRoute) -> str | None:
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


def mount(app: Starlette) -> None:
    """Register the dashboard on a FastAPI/Starlette ``app``.

    A path already registered (the old status page at ``/``) is replaced, so
    calling this after ``create_app`` never leaves two handlers for one path.
    """
    paths = {path for path, _, _ in ROUTES}
    app.router.routes[:] = [r for r in app.router.routes if _path_of(r) not in paths]
    for path, endpoint, methods in ROUTES:
        app.add_route(path, endpoint, methods=methods)
