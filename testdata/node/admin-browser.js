'use strict';
// Drives the Socket.IO Admin UI dashboard in headless Chromium the way a
// person does: it opens the dashboard at --url + /admin/, logs in through
// the connection form, and reads and clicks what the pages show. The Go test
// drives it with JSON commands on stdin and asserts on the JSON events it
// prints on stdout, one per line; this script decides nothing. Every wait is
// bounded.
//
//   node testdata/node/admin-browser.js --url SERVER_URL [--user U --password P]
//
// Commands:
//   {"cmd":"login"}                     fill in the form (server URL, user,
//                                       password), connect, wait for the form
//                                       to close
//   {"cmd":"servers","count":N}         open Servers, wait for N healthy rows
//   {"cmd":"sockets","count":N}         open Sockets (namespace "/"), wait for N rows
//   {"cmd":"disconnect","id":ID}        click the disconnect button of socket ID
//                                       in the Sockets page
//   {"cmd":"join","id":ID,"room":R}     open socket ID's page, type R in "Join a
//                                       room" and click the join button; wait
//                                       until its rooms list shows R; report
//                                       the rooms and the socket's data shown
//   {"cmd":"screenshot","route":H,"path":P,"wait":T}
//                                       open #H, wait for text T, save a PNG at P
//   {"cmd":"exit"}
// Events:
//   {"ev":"ready"}
//   {"ev":"connected","sid":S}          S: the dashboard's Engine.IO session id
//   {"ev":"servers","rows":[[cell, ...], ...]}
//   {"ev":"sockets","rows":[[cell, ...], ...]}
//   {"ev":"clicked","id":ID}
//   {"ev":"joined","id":ID,"rooms":[...],"data":TEXT}
//   {"ev":"screenshot","path":P}
//   {"ev":"error","cmd":C,"message":M}  a command failed; the script goes on
// Diagnostics (page errors, console errors) go to stderr.

const fs = require('fs');
const path = require('path');
const { out, die, parseFlags, onCommands, launchChromium } = require('./harness');

const SCRIPT = 'admin-browser';
const WAIT_MS = 15000;

const opts = parseFlags(SCRIPT, process.argv.slice(2), { url: '', user: '', password: '' });
if (!opts.url) die(SCRIPT, '--url is required');

// waitRows waits until the page's data table has n rows and returns their
// cells' text. An empty table shows one "No data available" row.
async function waitRows(page, n, extra = () => true) {
  const deadline = Date.now() + WAIT_MS;
  let rows = [];
  while (Date.now() < deadline) {
    rows = await page.$$eval('.v-data-table tbody tr', (trs) =>
      trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => td.textContent.trim())).filter((cells) => cells.length > 1));
    if (rows.length === n && extra(rows)) return rows;
    await page.waitForTimeout(100);
  }
  throw new Error(`expected ${n} rows, the table shows ${rows.length}: ${JSON.stringify(rows)}`);
}

async function main() {
  const browser = await launchChromium(WAIT_MS);
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  page.on('pageerror', (err) => process.stderr.write(`page error: ${err.message}\n`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') process.stderr.write(`console: ${msg.text()}\n`);
  });
  // The dashboard's Engine.IO session: the first sid its requests carry.
  let sid = '';
  const noteSid = (u) => {
    const url = new URL(u);
    if (!sid && url.pathname.startsWith('/socket.io/') && url.searchParams.get('sid')) sid = url.searchParams.get('sid');
  };
  page.on('request', (req) => noteSid(req.url()));
  page.on('websocket', (ws) => noteSid(ws.url()));

  const base = opts.url.replace(/\/$/, '');
  await page.goto(base + '/admin/');
  const go = async (route) => {
    await page.evaluate((r) => {
      window.location.hash = r;
    }, route);
  };

  const commands = {
    async login() {
      await page.getByLabel('Server URL').fill(base);
      await page.getByLabel('Username').fill(opts.user);
      await page.getByLabel('Password').fill(opts.password);
      await page.getByRole('button', { name: 'Connect' }).click();
      await page.locator('.v-dialog--active').waitFor({ state: 'detached' });
      const deadline = Date.now() + WAIT_MS;
      while (!sid && Date.now() < deadline) await page.waitForTimeout(50);
      out({ ev: 'connected', sid });
    },
    async servers(cmd) {
      await go('/servers/');
      // Every row healthy: the status column reads "Healthy".
      const rows = await waitRows(page, cmd.count, (rs) => rs.every((r) => r.includes('Healthy')));
      out({ ev: 'servers', rows });
    },
    async sockets(cmd) {
      await go('/sockets/');
      const rows = await waitRows(page, cmd.count);
      out({ ev: 'sockets', rows });
    },
    async disconnect(cmd) {
      await go('/sockets/');
      const row = page.locator('.v-data-table tbody tr', { hasText: cmd.id });
      await row.locator('button').click();
      out({ ev: 'clicked', id: cmd.id });
    },
    async join(cmd) {
      await go(`/n/${encodeURIComponent('/')}/sockets/${cmd.id}`);
      const input = page.getByLabel('Join a room');
      await input.fill(cmd.room);
      await page.locator('form', { has: input }).locator('button[type=submit]').click();
      // The socket's rooms table, beside the form, lists the new room once
      // the server has reported the join.
      const card = page.locator('.v-card', { has: input });
      await card.locator('tbody tr', { hasText: cmd.room }).waitFor();
      const rooms = await card.locator('tbody tr td:first-child').allTextContents();
      // The socket's data, as the details card beside shows it.
      const data = await page.locator('pre code').first().textContent();
      out({ ev: 'joined', id: cmd.id, rooms: rooms.map((r) => r.trim()), data });
    },
    async screenshot(cmd) {
      await go(cmd.route);
      if (cmd.wait) await page.getByText(cmd.wait, { exact: true }).first().waitFor();
      // Let charts and transitions settle.
      await page.waitForTimeout(1000);
      fs.mkdirSync(path.dirname(cmd.path), { recursive: true });
      await page.screenshot({ path: cmd.path });
      out({ ev: 'screenshot', path: cmd.path });
    },
  };

  const exit = async () => {
    await browser.close();
    process.exit(0);
  };
  out({ ev: 'ready' });
  onCommands(SCRIPT, async (cmd) => {
    if (cmd.cmd === 'exit') return exit();
    const run = commands[cmd.cmd];
    if (!run) die(SCRIPT, `unknown command ${cmd.cmd}`);
    try {
      await run(cmd);
    } catch (err) {
      out({ ev: 'error', cmd: cmd.cmd, message: String(err && err.message ? err.message : err) });
    }
  }, exit);
}

main().catch((err) => {
  process.stderr.write(`admin-browser: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
