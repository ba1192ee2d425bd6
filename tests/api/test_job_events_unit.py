"""Job event streams read job state off the event loop, once per poll interval however
many clients follow the job."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from api.service import RagService
from pipeline import Job, Pipeline
from tests.conftest import offline


def test_followers_share_one_read_in_a_worker_thread(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    with Pipeline(offline(tmp_path)) as pipe:
        job, _ = pipe.new_job("c", ["u/a.txt"])
        pipe._jobs.store.save(job)  # queued on disk, not run: its state stays put
        service = RagService(pipe.settings, pipe)
        reads: list[int] = []
        real = pipe.job

        def slow_read(job_id: str) -> Job:
            reads.append(threading.get_ident())
            time.sleep(0.05)  # a slow disk: followers arriving meanwhile share this read
            return real(job_id)

        monkeypatch.setattr(pipe, "job", slow_read)

        async def follow() -> None:
            loop_thread = threading.get_ident()
            first = await asyncio.gather(*(service._snapshot(job.id, 0.2) for _ in range(200)))
            assert len(reads) == 1 and reads[0] != loop_thread
            assert all(j is first[0] for j in first) and first[0].id == job.id
            again = await service._snapshot(job.id, 0.2)  # fresh: served from the cache
            assert again is first[0] and len(reads) == 1
            await asyncio.sleep(0.15)  # older than half the poll interval: read again
            await asyncio.gather(*(service._snapshot(job.id, 0.2) for _ in range(50)))
            assert len(reads) == 2

        asyncio.run(follow())
