// Bundles the extension (Node, CommonJS), the chat webview (browser, IIFE) and, with --tests,
// the unit tests (Node, one file per test).
import { readdirSync } from "node:fs";
import { build } from "esbuild";

const tests = process.argv.includes("--tests");
const common = { bundle: true, sourcemap: true, logLevel: "warning", target: "es2022" };

if (tests) {
  const entryPoints = readdirSync("test")
    .filter((f) => f.endsWith(".test.ts"))
    .map((f) => `test/${f}`);
  await build({ ...common, entryPoints, outdir: "out/test", platform: "node", format: "cjs", external: ["vscode"] });
} else {
  await Promise.all([
    build({
      ...common,
      entryPoints: ["src/main.ts"],
      outfile: "dist/main.js",
      platform: "node",
      format: "cjs",
      external: ["vscode"],
      minify: true,
    }),
    build({
      ...common,
      entryPoints: ["src/webview/chat.ts"],
      outfile: "dist/webview/chat.js",
      platform: "browser",
      format: "iife",
      minify: true,
    }),
  ]);
}
