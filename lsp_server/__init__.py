"""The StackCoder language server (pygls): completion, infill, explain, chat and provenance over LSP.

One module per feature: ``server`` (state and thin handlers), ``protocol`` (custom messages,
mirrored by vscode-extension/src/protocol.ts), ``settings``, ``completion``, ``infill``,
``explain``, ``chat``, ``provenance``, ``workspace_index`` (+ ``chunking``, ``embeddings``),
``documents`` (UTF-16 positions), ``model_host``, ``streaming``, ``status``, ``rpc`` (JSON-RPC
hardening), ``errors`` and ``cli`` (`stackcoder serve`). Run it with ``stackcoder serve`` or
``python -m lsp_server``.
"""
