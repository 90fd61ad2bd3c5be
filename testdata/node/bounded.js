// Helpers the browser-driving scripts share: bounded waits and a headless
// Chromium launched the same way everywhere.
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

module.exports = { withTimeout, launchChromium };
