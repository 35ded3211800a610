"""``GET /v1/models/{id}``: one entry of ``GET /v1/models``.

A catalog model (``owned_by`` its provider) or a route name (``owned_by``
``polyroute``), from the same data ``openai_api.list_models`` lists; anything
else is OpenAI's 404 with ``code: "model_not_found"``.  Ids may contain ``/``
(``openai/gpt-4o``, ``step:pipe/step``): the SDK sends it as ``%2F``, which
arrives decoded, so the route takes the rest of the path.
"""

from __future__ import annotations

import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from polyroute.config.validate import route_names
from polyroute.server.errors import RequestError
from polyroute.server.http import authorize, gateway_of, json_response
from polyroute.server.openai_api import list_models


def model_entry(request: Request, model_id: str) -> dict[str, Any] | None:
    router = gateway_of(request).router
    now = int(time.time())
    info = router.catalog.get(model_id)
    if info is not None:
        return {"id": info.id, "object": "model", "created": now, "owned_by": info.provider}
    if model_id in route_names(router.config):
        return {"id": model_id, "object": "model", "created": now, "owned_by": "polyroute"}
    return None


async def retrieve_model(request: Request) -> Response:
    model_id = str(request.path_params.get("model_id", ""))
    if not model_id:  # "/v1/models/": the list, as "/v1/models" answers it
        return await list_models(request)
    authorize(request)
    entry = model_entry(request, model_id)
    if entry is None:
        raise RequestError(
            f"The model '{model_id}' does not exist: not a catalog model or route name "
            "(GET /v1/models lists them)",
            param="model",
            status=404,
            code="model_not_found",
        )
    return json_response(entry)
