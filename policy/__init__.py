"""Rules every surface applies the same way.

Who may see which collection, job and media item (:mod:`policy.principals`,
:mod:`policy.access`), what an upload may be called (:mod:`policy.names`) and how much
may be uploaded (:mod:`policy.uploads`), how a query image is loaded
(:mod:`policy.images`) and which search filters a caller may send
(:mod:`policy.filters`). The HTTP API, MCP and the CLI import these; written once here,
a security rule cannot drift between two copies.

Layering: below the surfaces, above :mod:`pipeline` and the core of :mod:`rag` (the
only packages this one imports). Nothing here knows HTTP statuses or MCP result types:
rules raise :mod:`rag.errors` classes and each surface maps them once.
"""
