// Prints vitest's totals as one plain line ("Tests: N passed, N failed, N skipped") for CI logs.
import { readFileSync } from 'node:fs';
const r = JSON.parse(readFileSync(process.argv[2] ?? '.vitest-results.json', 'utf8'));
console.log(`Tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
process.exit(r.success ? 0 : 1);
