// `make lint`: validates an AsyncAPI document with the official parser (the schema of the
// spec and of the SNS/SQS bindings, references, and the parser's own rules). Errors fail;
// warnings and hints are printed.
import { readFileSync } from 'node:fs';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';

const path = process.argv[2];
if (!path) {
  console.error('usage: node infra/scripts/validate-asyncapi.mjs FILE');
  process.exit(2);
}
const { document, diagnostics } = await new Parser().parse(readFileSync(path, 'utf8'), { source: path });
const severity = (d) => Object.keys(DiagnosticSeverity).find((k) => DiagnosticSeverity[k] === d.severity);
for (const d of diagnostics) {
  console.log(`${path}: ${severity(d)} ${d.code} at ${d.path.join('.') || '(root)'}: ${d.message}`);
}
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
if (!document || errors.length > 0) {
  console.error(`${path}: ${errors.length} error(s)`);
  process.exit(1);
}
console.log(`${path}: valid AsyncAPI ${document.version()}`);
