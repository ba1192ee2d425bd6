"""The MCP surface: mmrag as a tool for assistants (Model Context Protocol).

``build_server`` makes one :class:`mcp.server.MCPServer` whose tools are thin calls to
:class:`~pipeline.Pipeline` public methods under the rules of :mod:`policy`; ``mmrag
mcp`` serves it over stdio and ``mmrag serve`` mounts its streamable-HTTP endpoint
(:mod:`mcpserver.http`) at ``/mcp`` of the API app (:mod:`api.mcp`), behind the API's
keys and collection scopes. Nothing here imports ``api/``. The package is called
``mcpserver`` so that it never shadows the SDK's own ``mcp`` package.
"""

from mcpserver.server import Transport, build_server

__all__ = ["Transport", "build_server"]
