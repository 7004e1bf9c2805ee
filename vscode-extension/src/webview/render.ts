/**
 * Markdown rendering of chat messages (markdown-it + highlight.js). Code fences become a block
 * with "Insert" and "Copy" buttons that refer to the block's index in `codeBlocks`. Raw HTML in
 * messages is escaped (`html: false`). Runs in the webview and in unit tests.
 */
import hljs from "highlight.js/lib/common";
import MarkdownIt from "markdown-it";

export interface Rendered {
  html: string;
  codeBlocks: string[];
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

function highlight(code: string, lang: string): string {
  if (lang && hljs.getLanguage(lang)) return hljs.highlight(code, { language: lang, ignoreIllegals: true }).value;
  return escapeHtml(code);
}

export function createRenderer(): (markdown: string) => Rendered {
  const md = new MarkdownIt({ html: false, linkify: true, breaks: false });
  let blocks: string[] = [];
  md.renderer.rules.fence = (tokens, idx) => {
    const token = tokens[idx];
    const lang = token.info.trim().split(/\s+/)[0] ?? "";
    const index = blocks.length;
    blocks.push(token.content);
    const label = lang ? `<span class="lang">${escapeHtml(lang)}</span>` : "";
    return (
      `<div class="code-block" data-index="${index}"><div class="code-actions">${label}` +
      `<button class="insert" data-index="${index}" title="Insert at cursor">Insert</button>` +
      `<button class="copy" data-index="${index}" title="Copy">Copy</button></div>` +
      `<pre><code class="hljs${lang ? ` language-${escapeHtml(lang)}` : ""}">${highlight(token.content, lang)}</code></pre></div>`
    );
  };
  return (markdown: string) => {
    blocks = [];
    const html = md.render(closeOpenFence(markdown));
    if (markdown.trim() && !hasVisibleText(html)) {
      // Markdown that renders to nothing readable (a lone "---", "#" or "* * *"): show it as written.
      return { html: `<pre class="raw">${escapeHtml(markdown)}</pre>`, codeBlocks: [] };
    }
    return { html, codeBlocks: blocks };
  };
}

/** Whether rendered HTML shows any text (tags such as <hr> or empty headings show none). */
export function hasVisibleText(html: string): boolean {
  return /\S/.test(html.replace(/<[^>]*>/g, ""));
}

/** While an answer streams, an unterminated ``` fence is closed so the partial code renders as code. */
export function closeOpenFence(markdown: string): string {
  const fences = markdown.match(/^ {0,3}(```|~~~)/gm) ?? [];
  return fences.length % 2 === 1 ? `${markdown}\n\`\`\`` : markdown;
}
