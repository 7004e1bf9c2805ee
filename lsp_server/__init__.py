"""The StackCoder language server (pygls): completion, infill, explain, chat and provenance over LSP.

One module per feature's logic: ``completion``, ``infill``, ``explain``, ``chat``, ``provenance``,
``workspace_index`` (+ ``embeddings``; chunks from ``attribution.chunking``); their handlers in
``handlers_lifecycle``, ``handlers_completion`` and ``handlers_actions``, the state in ``app``,
put together by ``server``; ``protocol`` (custom messages, mirrored by
vscode-extension/src/protocol.ts), ``settings``,
``documents`` (UTF-16 positions), ``model_host``, ``streaming``, ``status``, ``rpc`` (JSON-RPC
hardening), ``errors`` and ``cli`` (`stackcoder serve`). Run it with ``stackcoder serve`` or
``python -m lsp_server``.
"""
