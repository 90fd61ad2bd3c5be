// Helpers the browser-driving scripts share: bounded waits, a headless
// Chromium launched the same way everywhere, and the JSON summary.
'use strict';

const { chromium } = require('playwright-core');

// withTimeout settles as promise does, or rejects after ms naming what was
// awaited.
function withTimeout(promise, what, ms) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// launchChromium starts Debian's Chromium headless, giving up after ms.
function launchChromium(ms) {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    timeout: ms,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking'],
  });
}

// report prints summary as one JSON line, ok when it lists no failure, and
// sets the exit status to match.
function report(summary) {
  summary.ok = summary.failures.length === 0;
  process.stdout.write(JSON.stringify(summary) + '\n');
  process.exitCode = summary.ok ? 0 : 1;
}

// run runs main, exiting with status 2 if it throws past its own checks.
function run(main) {
  main().catch((err) => {
    console.error(err);
    process.exit(2);
  });
}

module.exports = { withTimeout, launchChromium, report, run };
