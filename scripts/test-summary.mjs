// Print one line, "N passed, N failed, N skipped", from vitest's JSON report and the
// count of failed lint/type-check steps that scripts/test-all.sh records.
import { readFileSync } from 'node:fs';

const read = (f) => {
  try {
    return readFileSync(f, 'utf8');
  } catch {
    return undefined;
  }
};
const extra = Number(read('.tmp/extra-failed') ?? 0) || 0;
const report = read('.tmp/vitest-results.json');
if (!report) {
  // The suite never ran (install failed, or vitest could not start): that is a failure.
  console.log(`0 passed, ${1 + extra} failed`);
} else {
  const r = JSON.parse(report);
  const skipped = (r.numPendingTests || 0) + (r.numTodoTests || 0);
  // A file that failed without a failed test (it did not load, or a beforeAll/afterAll hook
  // failed and its tests were skipped) counts as one failure.
  const broken = (r.testResults || []).filter(
    (f) => f.status === 'failed' && !(f.assertionResults || []).some((a) => a.status === 'failed'),
  ).length;
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests + broken + extra} failed, ${skipped} skipped`);
}
