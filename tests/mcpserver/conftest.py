from tests.api.conftest import corpus  # noqa: F401  (the shared corpus fixture)
