"""One router per resource; each route translates HTTP to one service call and back.

The ``/v1`` prefix is set on each router rather than at include time so that
``route.path`` is the full template (``/v1/collections/{name}``), which is what the
metrics label requests by.
"""

from fastapi import Response

V1 = "/v1"


def json_response(body: str) -> Response:
    """A response model already serialised (in the worker thread that built it): an
    ``async`` route returning the model itself would have FastAPI validate and encode
    it again on the event loop, which many concurrent searches then queue behind."""
    return Response(body, media_type="application/json")
