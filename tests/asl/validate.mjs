// Validate Amazon States Language definitions with two independent validators:
// asl-validator (JSON Schema + graph checks) and AWS's amazon-states-language-service
// (the validator behind the AWS Toolkit's editor). Each catches errors the other misses.
//
// usage: node validate.mjs FILE.asl.json...
// Prints one line per problem ("FILE: [validator] message") and exits 1 when any file
// has a problem (2 on bad usage or unreadable files), 0 when every file passes both.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const aslValidator = require("asl-validator");
const asl = require("amazon-states-language-service");

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: node validate.mjs FILE.asl.json...");
  process.exit(2);
}

const service = asl.getLanguageService({});
const severityName = { 1: "error", 2: "warning", 3: "info", 4: "hint" };
let problems = 0;

for (const file of files) {
  let text;
  let definition;
  try {
    text = readFileSync(file, "utf8");
    definition = JSON.parse(text);
  } catch (err) {
    console.error(`${file}: cannot read: ${err.message}`);
    process.exit(2);
  }

  const result = aslValidator(structuredClone(definition), { checkPaths: true, checkArn: true });
  if (!result.isValid) {
    for (const err of result.errors) {
      console.log(`${file}: [asl-validator] ${err["Error code"] ?? ""} ${err.Message ?? JSON.stringify(err)}`);
      problems += 1;
    }
  }

  const document = asl.TextDocument.create(`file://${file}`, "json", 0, text);
  const jsonDocument = service.parseJSONDocument(document);
  const diagnostics = await service.doValidation(document, jsonDocument);
  for (const d of diagnostics) {
    // Warnings and hints count too: the generated definitions should be spotless.
    const where = `${d.range.start.line + 1}:${d.range.start.character + 1}`;
    console.log(`${file}:${where}: [amazon-states-language-service] ${severityName[d.severity] ?? "?"}: ${d.message}`);
    problems += 1;
  }
}

if (problems === 0) {
  console.log(`ok: ${files.length} definition(s) pass asl-validator and amazon-states-language-service`);
}
process.exit(problems === 0 ? 0 : 1);
