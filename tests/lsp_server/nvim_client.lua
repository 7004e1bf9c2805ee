-- Drives the StackCoder server through Neovim's built-in LSP client (headless).
-- Environment: STACKCODER_NVIM_CMD (JSON list), STACKCODER_NVIM_FILE, STACKCODER_NVIM_MODEL, STACKCODER_NVIM_OUT.
local out_path = os.getenv("STACKCODER_NVIM_OUT")
local result = { steps = {} }

local function finish()
  local f = io.open(out_path, "w")
  f:write(vim.fn.json_encode(result))
  f:close()
  vim.cmd("qa!")
end

local ok, err = pcall(function()
  local file = os.getenv("STACKCODER_NVIM_FILE")
  vim.cmd("edit " .. vim.fn.fnameescape(file))
  local bufnr = vim.api.nvim_get_current_buf()
  local client_id = vim.lsp.start_client({
    name = "stackcoder",
    cmd = vim.fn.json_decode(os.getenv("STACKCODER_NVIM_CMD")),
    root_dir = vim.fn.fnamemodify(file, ":h"),
    init_options = { stackcoder = { model = { path = os.getenv("STACKCODER_NVIM_MODEL"), threads = 1 },
                                    completion = { maxNewTokens = 16 } } },
  })
  vim.lsp.buf_attach_client(bufnr, client_id)
  local ready = vim.wait(60000, function()
    local c = vim.lsp.get_client_by_id(client_id)
    return c ~= nil and c.initialized
  end, 100)
  table.insert(result.steps, "initialized=" .. tostring(ready))
  local client = vim.lsp.get_client_by_id(client_id)
  result.inline_completion_provider = client.server_capabilities.inlineCompletionProvider ~= nil
  -- wait for the model
  local loaded = vim.wait(240000, function()
    local r = client.request_sync("stackcoder/status", {}, 5000, bufnr)
    if not (r and r.result) then return false end
    local m = r.result.model
    return m.loaded == true or (m.error ~= nil and m.error ~= vim.NIL)
  end, 250)
  table.insert(result.steps, "model=" .. tostring(loaded))
  -- code actions on the selection of lines 1-3
  local params = {
    textDocument = { uri = vim.uri_from_bufnr(bufnr) },
    range = { start = { line = 0, character = 0 }, ["end"] = { line = 3, character = 0 } },
    context = { diagnostics = {} },
  }
  local actions = client.request_sync("textDocument/codeAction", params, 30000, bufnr)
  result.actions = {}
  for _, a in ipairs(actions.result or {}) do
    table.insert(result.actions, a.command.command)
  end
  -- run the infill action: the server answers with workspace/applyEdit, which Neovim applies
  for _, a in ipairs(actions.result or {}) do
    if a.command.command == "stackcoder.infill" then
      local r = client.request_sync("workspace/executeCommand", a.command, 120000, bufnr)
      result.infill = r and r.result
      result.infill_error = r and r.err
    end
  end
  vim.wait(2000, function() return false end, 100)
  result.buffer = table.concat(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false), "\n")
  client.stop()
end)
if not ok then result.error = tostring(err) end
finish()
