#!/usr/bin/env node
// Reference tokenization with @huggingface/tokenizers (pinned in package.json), for parity tests.
//
// usage: node tokenize.js TOKENIZER_JSON [STRINGS_JSON]
//   STRINGS_JSON is a file holding a JSON array of strings (stdin when omitted).
//   Prints one JSON array per input string, each the token ids, all wrapped in one JSON array.
// No special tokens are added (add_special_tokens: false); special tokens written in the text are matched.
"use strict";
const fs = require("fs");
const { Tokenizer } = require("@huggingface/tokenizers");

function main() {
  const [tokPath, stringsPath] = process.argv.slice(2);
  if (!tokPath) {
    process.stderr.write("usage: node tokenize.js TOKENIZER_JSON [STRINGS_JSON]\n");
    process.exit(2);
  }
  const tokenizerJson = JSON.parse(fs.readFileSync(tokPath, "utf8"));
  const strings = JSON.parse(fs.readFileSync(stringsPath || 0, "utf8"));
  if (!Array.isArray(strings)) throw new Error("expected a JSON array of strings");
  const tokenizer = new Tokenizer(tokenizerJson, {});
  const out = strings.map((s) => tokenizer.encode(s, { add_special_tokens: false }).ids);
  process.stdout.write(JSON.stringify(out) + "\n");
}

main();
