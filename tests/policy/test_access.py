"""Who may see which collection, job and media item, checked once for every surface:
outside a key's scope, a thing answers exactly as a missing one does."""

from __future__ import annotations

import pytest

from pipeline import Job, Pipeline
from policy import access
from policy.principals import OPEN, Principal
from rag.errors import Forbidden, NotFound
from tests.api.conftest import text_pdf
from tests.conftest import offline

TEAM = Principal(key_id="team", collections=frozenset({"team"}))


def _message(exc: pytest.ExceptionInfo[Exception], name: str) -> str:
    return str(exc.value).replace(name, "X")


@pytest.fixture(scope="module")
def pipe(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    pipeline = Pipeline(offline(tmp_path_factory.mktemp("access")))
    pdf = text_pdf(["Quarterly numbers for the team."])
    for collection in ("team", "secret"):
        report = pipeline.ingest_bytes(collection, {f"{collection}/a.pdf": pdf,
                                                    f"{collection}/b.txt": collection.encode()})
        assert not report.failed, report.summary()
    return pipeline


@pytest.mark.integration
def test_hidden_and_missing_collections_answer_alike(pipe: Pipeline) -> None:
    assert access.collection(pipe, TEAM, "team") == "team"
    assert access.collection(pipe, OPEN, "secret") == "secret"
    with pytest.raises(NotFound) as hidden:
        access.collection(pipe, TEAM, "secret")
    with pytest.raises(NotFound) as missing:
        access.collection(pipe, TEAM, "nothing-here")
    assert _message(hidden, "secret") == _message(missing, "nothing-here")
    assert "GET /v1/models" in str(hidden.value) and "`collections` tool" in str(hidden.value)


@pytest.mark.integration
def test_lists_show_only_what_the_key_may_see(pipe: Pipeline) -> None:
    assert access.visible_names(TEAM, pipe.collection_names()) == ["team"]
    assert [r["name"] for r in access.visible_rows(TEAM, pipe.collections())] == ["team"]
    assert {r["name"] for r in access.visible_rows(OPEN, pipe.collections())} == {
        "team", "secret"}


@pytest.mark.integration
def test_media_follows_the_collections_that_store_it(pipe: Pipeline) -> None:
    """The same PDF is stored in both collections (media is shared by content), so the
    team key sees its page image; a page only ``secret`` stores is hidden like a key
    that does not exist."""
    (hit,) = pipe.search("team", "quarterly numbers", limit=1)
    assert hit.media
    access.require_media_visible(pipe, TEAM, hit.media)
    only_secret = Principal(key_id="s", collections=frozenset({"secret"}))
    access.require_media_visible(pipe, only_secret, hit.media)
    nobody = Principal(key_id="n", collections=frozenset({"other"}))
    with pytest.raises(NotFound) as hidden:
        access.require_media_visible(pipe, nobody, hit.media)
    with pytest.raises(NotFound) as missing:
        access.require_media_visible(pipe, nobody, "0" * 16 + "-p1")
    assert _message(hidden, hit.media) == _message(missing, "0" * 16 + "-p1")


def test_writes_and_jobs_outside_the_scope() -> None:
    access.require_writable(TEAM, "team")
    access.require_creatable(TEAM, "team")
    with pytest.raises(NotFound, match="may not create it"):
        access.require_writable(TEAM, "secret")
    with pytest.raises(Forbidden, match="may not create collection 'secret'"):
        access.require_creatable(TEAM, "secret")
    job = Job(id="abc", collection="secret")
    assert access.require_job_visible(OPEN, job) is job
    with pytest.raises(NotFound, match="job 'abc' does not exist"):
        access.require_job_visible(TEAM, job)
