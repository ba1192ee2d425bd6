"""mmrag core: settings, data types, encoders, vector stores, retrieval, reranking, generation.

Nothing in this package speaks HTTP; ``api/`` and ``cli/`` are thin shells over it.
"""
