"""`stackcoder/warmChat`: the head of a question's prompt processed while the user writes it;
bad params are ignored and the server keeps answering, over raw JSON-RPC with the embedded model."""

from __future__ import annotations

import time

import pytest
from lsp_helpers import server_env
from lsp_raw_client import RawServer, model_options

from lsp_server.chat import chat_context, chat_context_head
from lsp_server.errors import InvalidParamsError
from lsp_server.protocol import ChatContext, ChatParams, parse_chat, parse_warm_chat

pytestmark = pytest.mark.timeout(300)

CONTEXT = {
    "uri": "file:///w/area.py",
    "selection": "def area(w, h):\n    return w * h\n",
    "languageId": "python",
}


def test_warm_chat_params_are_those_of_chat_without_the_question() -> None:
    warm = parse_warm_chat({"context": CONTEXT})
    assert warm.messages == [] and warm.context.selection == CONTEXT["selection"]
    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert parse_warm_chat({"messages": history}).messages == history
    with pytest.raises(InvalidParamsError):
        parse_chat({"context": CONTEXT})  # a question needs its message
    with pytest.raises(InvalidParamsError):
        parse_warm_chat({"messages": "hi"})
    with pytest.raises(InvalidParamsError):
        parse_warm_chat({"messages": [{"role": "robot", "content": "x"}]})


def test_the_question_independent_context_leads_the_chat_context() -> None:
    ctx = ChatContext(
        uri="file:///w/area.py", selection="return w * h", file_text="def area(w, h):\n    return w * h\n"
    )
    head = chat_context_head(ctx)
    assert "The current file area.py" in head and head.endswith("The selected code:\nreturn w * h")
    assert chat_context(ChatParams([{"role": "user", "content": "why?"}], ctx)).startswith(head)


def test_bad_warm_ups_are_ignored_and_a_warm_up_keeps_the_chat_answering(tmp_path, default_model_dir) -> None:
    server = RawServer(server_env())
    try:
        server.initialize(tmp_path.as_uri(), model_options(default_model_dir))
        assert server.wait_status()["model"]["loaded"]
        server.notify("stackcoder/warmChat", {"messages": "not a list"})
        server.notify("stackcoder/warmChat", {"context": {"selection": 42}})
        server.notify("stackcoder/warmChat", None)
        server.notify("stackcoder/warmChat", {"context": CONTEXT})
        time.sleep(0.5)
        answer = server.call(
            "stackcoder/chat",
            {"messages": [{"role": "user", "content": "What does area return?"}], "context": CONTEXT},
        )
        assert "result" in answer and isinstance(answer["result"]["text"], str), answer
    finally:
        server.close()
