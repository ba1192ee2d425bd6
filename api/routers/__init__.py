"""One router per resource; each route translates HTTP to one service call and back.

The ``/v1`` prefix is set on each router rather than at include time so that
``route.path`` is the full template (``/v1/collections/{name}``), which is what the
metrics label requests by.
"""

V1 = "/v1"
