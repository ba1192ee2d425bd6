"""LLM-free condensing of a chat into a standalone retrieval query."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from rag.generate.base import condense_query, is_follow_up

ROUTER = "Tell me about the X200 router"


def user(text: str | list[dict[str, Any]]) -> dict[str, Any]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def test_standalone_question_is_unchanged() -> None:
    history = [user(ROUTER), assistant("It is a router [1].")]
    q = "How do I reset the X200 router to factory settings?"
    assert condense_query(q, history) == q
    assert condense_query("  What  is RRF fusion? ", []) == "What is RRF fusion?"


def test_anaphoric_follow_up_gets_the_subject() -> None:
    history = [user(ROUTER), assistant("The X200 is a home router with four ports [1].")]
    assert condense_query("what about its port?", history) == f"{ROUTER} what about its port?"


def test_chain_of_follow_ups_walks_back_to_the_subject() -> None:
    history = [
        user("Which firmware does the router need?"),
        assistant("..."),
        user(ROUTER),
        assistant("..."),
        user([{"type": "text", "text": "what about its port?"},
              {"type": "image_url", "image_url": {"url": "data:image/png;base64,AA"}}]),
        assistant("Port 8080 [2]."),
    ]
    assert condense_query("and the second one?", history) == (
        f"{ROUTER} what about its port? and the second one?"
    )


def test_latest_question_repeated_in_history_is_not_doubled() -> None:
    history = [user(ROUTER), assistant("..."), user("and the price?")]
    assert condense_query("and the price?", history) == f"{ROUTER} and the price?"


def test_assistant_and_system_turns_are_ignored() -> None:
    history = [{"role": "system", "content": "Be terse."}, assistant("Hello! Ask away.")]
    assert condense_query("what about it?", history) == "what about it?"


def test_follow_up_detection() -> None:
    assert is_follow_up("what about its port?")
    assert is_follow_up("and the second one?")
    assert is_follow_up("More?")
    assert is_follow_up("why?")  # too short to retrieve on
    assert not is_follow_up("What warranty period covers the X200 router?")
    assert not is_follow_up("Moreover, which cable suits gigabit Ethernet ports?")


questions = st.text(alphabet="abcdefgh XYZ?,.'", max_size=60)


@given(questions, st.lists(st.tuples(st.sampled_from(["user", "assistant", "system"]),
                                     questions), max_size=6))
def test_condensed_query_ends_with_the_question_and_uses_only_user_turns(
    question: str, turns: list[tuple[str, str]]
) -> None:
    history = [{"role": r, "content": t} for r, t in turns]
    query = condense_query(question, history)
    assert query.endswith(" ".join(question.split()))
    users = " ".join(" ".join(t.split()) for r, t in turns if r == "user")
    for word in query.split():
        assert word in question.split() or word in users.split()
