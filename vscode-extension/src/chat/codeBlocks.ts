/**
 * The fenced code blocks of a chat answer, in the order the webview numbers them (its renderer
 * also uses markdown-it), and which of them are worth a provenance check. Pure.
 */
import MarkdownIt from "markdown-it";
import { closeOpenFence } from "../webview/render";

const md = new MarkdownIt({ html: false });

/** The contents of every fenced code block of `markdown`, by index. */
export function fencedBlocks(markdown: string): string[] {
  return md
    .parse(closeOpenFence(markdown), {})
    .filter((token) => token.type === "fence")
    .map((token) => token.content);
}

/** A block is checked from this many non-blank characters on (an exact match needs 50). */
export const MIN_CHECKED_CHARS = 50;

export function worthChecking(code: string): boolean {
  return code.replace(/\s+/g, "").length >= MIN_CHECKED_CHARS;
}
