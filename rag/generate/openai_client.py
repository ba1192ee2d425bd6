"""The official ``openai`` SDK client, built the same way for every OpenAI-compatible
caller (the ``openai`` generator and the ``vlm`` reranker)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from openai import OpenAI

# Some endpoints (no auth) still need *a* key, or the SDK refuses to build a client.
PLACEHOLDER_API_KEY = "not-needed"


class LazyOpenAI:
    """A client made on first use from ``settings()`` (anything with ``base_url``,
    ``api_key`` and ``timeout_s``). The client is cheap, but building it lazily keeps
    construction free of I/O and lets settings be fixed up (tests, CLI flags) before the
    first request."""

    def __init__(self, settings: Callable[[], Any], max_retries: int) -> None:
        self._settings = settings
        self._max_retries = max_retries
        self._client: OpenAI | None = None
        self._lock = threading.Lock()

    def get(self) -> OpenAI:
        with self._lock:
            if self._client is None:
                s = self._settings()
                self._client = OpenAI(
                    base_url=s.base_url,
                    api_key=s.api_key or PLACEHOLDER_API_KEY,
                    timeout=s.timeout_s,
                    max_retries=self._max_retries,
                )
            return self._client
