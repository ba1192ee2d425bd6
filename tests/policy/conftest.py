from tests.api.conftest import corpus, server  # noqa: F401  (the shared API server fixtures)
