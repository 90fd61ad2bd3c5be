// Launches Debian's headless Chromium the way the browser tests want it:
// no sandbox (the tests may run as root), nothing running in the background.
'use strict';

const { chromium } = require('playwright-core');

// launchChromium starts the browser, giving up after timeout milliseconds.
function launchChromium(timeout) {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    timeout,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

module.exports = { launchChromium };
