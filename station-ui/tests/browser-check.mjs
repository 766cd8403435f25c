// TEST ONLY, needs chromium: drives tests/preview.html (the real page with the
// fake station) with real key and mouse events through the DevTools protocol,
// to check the keyboard-wedge rules in a browser:
//   node --experimental-websocket station-ui/tests/browser-check.mjs
// (not a *.test.mjs file: `node --test station-ui/tests/` needs no browser).
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { readFile, mkdtemp, rm } from "node:fs/promises";
import { join, dirname, extname, normalize } from "node:path";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css" };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

if (typeof WebSocket === "undefined") {
  console.error("Run with: node --experimental-websocket station-ui/tests/browser-check.mjs");
  process.exit(2);
}

const server = createServer(async (req, res) => {
  const path = normalize(decodeURIComponent(new URL(req.url, "http://x").pathname)).replace(/^(\.\.[/\\])+/, "");
  try {
    const body = await readFile(join(root, path));
    res.writeHead(200, { "content-type": TYPES[extname(path)] || "application/octet-stream" });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const port = server.address().port;
const profile = await mkdtemp(join(tmpdir(), "tt-chrome-"));
const chrome = spawn(
  process.env.CHROMIUM || "chromium",
  ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", `--user-data-dir=${profile}`, "--window-size=1366,768", "--remote-debugging-port=0", "about:blank"],
  { stdio: ["ignore", "ignore", "pipe"] },
);
const wsUrl = await new Promise((resolve, reject) => {
  let err = "";
  chrome.stderr.on("data", (d) => {
    err += d;
    const m = err.match(/DevTools listening on (ws:\/\/\S+)/);
    if (m) resolve(m[1]);
  });
  chrome.on("exit", () => reject(new Error(`chromium exited: ${err.slice(-500)}`)));
});

const browser = new WebSocket(wsUrl);
await new Promise((r) => (browser.onopen = r));
let nextId = 1;
const pending = new Map();
browser.onmessage = (m) => {
  const msg = JSON.parse(m.data);
  if (msg.id && pending.has(msg.id)) {
    const { resolve, reject } = pending.get(msg.id);
    pending.delete(msg.id);
    msg.error ? reject(new Error(JSON.stringify(msg.error))) : resolve(msg.result);
  }
};
function send(method, params = {}, sessionId) {
  const id = nextId++;
  browser.send(JSON.stringify({ id, method, params, sessionId }));
  return new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
}

let session;
async function open(scene) {
  if (session) {
    check(`no CSP violations (${session.scene})`, await js("window.__fakeStation.csp"), []);
    await send("Target.closeTarget", { targetId: session.targetId });
  }
  const { targetId } = await send("Target.createTarget", { url: `http://127.0.0.1:${port}/tests/preview.html?scene=${scene}` });
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true });
  session = { targetId, sessionId, scene };
  await sleep(600);
}
const page = (method, params) => send(method, params, session.sessionId);
async function js(expression) {
  const r = await page("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true });
  if (r.exceptionDetails) throw new Error(r.exceptionDetails.text + " " + expression);
  return r.result.value;
}
async function key(k) {
  const enter = k === "Enter";
  const base = enter
    ? { key: "Enter", code: "Enter", windowsVirtualKeyCode: 13, text: "\r" }
    : { key: k, code: /[0-9]/.test(k) ? `Digit${k}` : `Key${k.toUpperCase()}`, windowsVirtualKeyCode: k.toUpperCase().charCodeAt(0), text: k };
  await page("Input.dispatchKeyEvent", { type: "keyDown", ...base });
  await page("Input.dispatchKeyEvent", { type: "keyUp", ...base, text: undefined });
}
async function typeKeys(text) {
  for (const ch of text) await key(ch);
  await key("Enter");
  await sleep(150);
}
async function click(selector) {
  const box = await js(`(() => { const r = document.querySelector(${JSON.stringify(selector)}).getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()`);
  for (const type of ["mousePressed", "mouseReleased"]) {
    await page("Input.dispatchMouseEvent", { type, x: box[0], y: box[1], button: "left", clickCount: 1 });
  }
  await sleep(150);
}
const text = (sel) => js(`document.querySelector(${JSON.stringify(sel)})?.textContent ?? null`);
const active = () => js("document.activeElement?.id || document.activeElement?.tagName");

let failed = 0;
function check(name, got, want) {
  const ok = JSON.stringify(got) === JSON.stringify(want);
  if (!ok) failed++;
  console.log(`${ok ? "ok  " : "FAIL"} ${name}${ok ? "" : `: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`}`);
}

try {
  await open("scan-empty");
  check("scan screen: the scan input has focus", await active(), "scan-input");
  await typeKeys("SB00077");
  check("a scanner burst opens the parent", await text("#parent-code"), "SB00077");
  check("prompt moves on", await text("#prompt-text"), "Scan child bags");
  check("every key went to wedge_key", await js("window.__fakeStation.wedgeKeys.join('')"), "SB00077Enter");

  check("a button can be given focus", await js("document.getElementById('btn-leave').focus(), document.activeElement.id"), "btn-leave");
  check(
    "Enter aimed at that button is prevented (sent to the scanner path)",
    await js("document.getElementById('btn-leave').dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }))"),
    false,
  );
  await sleep(50);
  check("and the focus is taken back at once", await active(), "scan-input");
  await js("window.__fakeStation.wedgeKeys.push('|')"); // the synthetic Enter above ended an empty burst
  await typeKeys("C0001");
  check("keys on a focused button still reach the scanner path", await text("#counter"), "1 / 30");
  check("the scanner's Enter did not press the focused button (parent still open)", await text("#parent-code"), "SB00077");
  check("focus is back on the scan input", await active(), "scan-input");

  await js("document.getElementById('scan-input').blur()");
  await sleep(700);
  check("blur: focus comes back", await active(), "scan-input");

  await click("#btn-undo");
  check("'Remove last scan' by mouse works", await text("#counter"), "0 / 30");
  check("pressing a button does not take the focus away", await active(), "scan-input");

  const before = await js("window.__fakeStation.wedgeKeys.length");
  await click("#btn-type-code");
  check("'Type a code' opens a form field", await active(), "type-code");
  await typeKeys("c0002");
  check("a person typing is not sent to wedge_key", await js("window.__fakeStation.wedgeKeys.length"), before);
  check("the typed code goes through scan()", await js("window.__fakeStation.scans"), ["c0002"]);
  check("and counts", await text("#counter"), "1 / 30");
  check("focus returns to the scan input after the form", await active(), "scan-input");

  await open("login");
  await click("#btn-settings");
  check("settings button by mouse opens the admin unlock", await js("document.body.dataset.screen"), "settings_unlock");
  await js("document.getElementById('btn-unlock-back').focus()");
  await key("Enter");
  await sleep(150);
  check("Enter on a focused button does nothing off the scan screens", await js("document.body.dataset.screen"), "settings_unlock");
  await click("#btn-unlock-back");
  check("the same button works by mouse", await js("document.body.dataset.screen"), "login");
  await click("#login-username");
  await typeKeys("sita");
  check("typing in the login form is not a scan", await js("window.__fakeStation.wedgeKeys.length"), 0);
  await click("#login-password");
  await typeKeys("pw");
  await sleep(300);
  check("Enter in the password field logs in (a biller gets billing)", await js("document.body.dataset.screen"), "billing");
  check("billing with no bill: the bill number field has focus", await active(), "bill-code");
  check("scan modes sent: none on login, none on billing with no bill", await js("window.__fakeStation.modes"), ["none"]);
  await js("window.__fakeStation.emit('scanner_test', { code: 'B-404' })");
  await sleep(150);
  check("a HID scan with no bill open is taken as the bill number", await text("#bill-error"), "There is no bill B-404");
  await click("#btn-bill-new");
  for (const [sel, value] of [["#new-code", "B-1"], ["#new-capacity", "2"]]) {
    await click(sel);
    for (const ch of value) await key(ch);
  }
  await key("Enter");
  await sleep(300);
  check("creating a bill opens it", await text("#bill-code-shown"), "B-1");
  check("scan mode is billing once a bill is open", await js("window.__fakeStation.modes.at(-1)"), "billing");
  check("the scan input takes over", await active(), "scan-input");
  await typeKeys("SB00001");
  check("a scanner burst adds a parent to the bill", await text("#bill-counter"), "1 / 2");
  check("green, with the parent's code", [await js("document.getElementById('bill-feedback').dataset.colour"), await text("#bill-feedback-code")], ["green", "SB00001"]);
  await click("#btn-bill-close");
  check("closing early asks for a reason", await active(), "close-reason");
  await click("#btn-close-confirm");
  check("no reason: stays, says so", await text("#close-error"), "Write a reason");
  for (const ch of "truck") await key(ch);
  await click("#btn-close-confirm");
  await sleep(200);
  check("closed", await text("#bill-note"), "Bill B-1 closed");
  check("scan mode back to none", await js("window.__fakeStation.modes.at(-1)"), "none");
  for (const scene of ["setup-scanner", "scan-complete", "attention", "billing-close", "settings"]) await open(scene);
  await sleep(800);
  check(`no CSP violations (${session.scene})`, await js("window.__fakeStation.csp"), []);
} finally {
  browser.close();
  chrome.kill();
  server.close();
  await sleep(200);
  await rm(profile, { recursive: true, force: true });
}
console.log(failed ? `${failed} failed` : "all passed");
process.exit(failed ? 1 : 0);
