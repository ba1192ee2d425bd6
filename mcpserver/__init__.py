"""The MCP surface: mmrag as a tool for assistants (Model Context Protocol).

``build_server`` makes one :class:`mcp.server.MCPServer` whose tools are thin calls to
:class:`~pipeline.Pipeline` public methods; ``mmrag mcp`` serves it over stdio and
``mmrag serve`` mounts it over streamable HTTP at ``/mcp`` (:mod:`mcpserver.http`),
behind the API's keys and collection scopes. The package is called ``mcpserver`` so
that it never shadows the SDK's own ``mcp`` package.
"""

from mcpserver.server import Transport, build_server

__all__ = ["Transport", "build_server"]
