'use strict';
// What the scripts the Go tests drive share: JSON events out on stdout, one
// per line; JSON commands in on stdin, one per line; --name value flags; and
// headless Chromium as the tests launch it.

const readline = require('readline');

// out prints one event.
function out(ev) {
  process.stdout.write(JSON.stringify(ev) + '\n');
}

// die reports a misuse on stderr and exits 2.
function die(script, msg) {
  process.stderr.write(`${script}: ${msg}\n`);
  process.exit(2);
}

// parseFlags reads --name value pairs into a copy of defaults, whose keys
// are the only flags allowed.
function parseFlags(script, argv, defaults) {
  const opts = { ...defaults };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--?/, '');
    if (!(name in opts) || argv[i + 1] === undefined) die(script, `bad argument ${argv[i]}`);
    opts[name] = argv[i + 1];
  }
  return opts;
}

// onCommands runs handler with each command read from stdin, one after the
// other (a handler may return a promise), then onEnd once stdin closes.
function onCommands(script, handler, onEnd) {
  const rl = readline.createInterface({ input: process.stdin });
  let chain = Promise.resolve();
  rl.on('line', (line) => {
    if (!line.trim()) return;
    let cmd;
    try {
      cmd = JSON.parse(line);
    } catch (err) {
      die(script, `bad command ${line}`);
    }
    chain = chain.then(() => handler(cmd));
  });
  rl.on('close', () => {
    chain = chain.then(onEnd);
  });
}

// launchChromium starts Debian's Chromium headless, with the flags every
// browser test uses.
function launchChromium(timeout) {
  const { chromium } = require('playwright-core');
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

module.exports = { out, die, parseFlags, onCommands, launchChromium };
