import { test } from "node:test";
import assert from "node:assert/strict";
import {
  initialScan,
  reduceOutcome,
  reduceUndo,
  endCelebration,
  closeParent,
  markAllSent,
  scanView,
  counterText,
  progressPercent,
  CELEBRATE_MS,
} from "../js/flow-view.js";
import { makeT } from "../js/i18n.js";

const t = makeT("en");
const hiT = makeT("hi");
const P = (code, children, capacity = 30) => ({ code, children, capacity, complete: children >= capacity });
const opened = (p) => ({ kind: "parent_opened", parent: p });
const applied = (code, p) => ({ kind: "child", code, verdict: { kind: "applied", parent: p, bill: null } });

test("nothing open: prompt is 'Scan a parent bag', no counter, no undo", () => {
  const v = scanView(initialScan(null), t);
  assert.equal(v.step, "parent");
  assert.equal(v.prompt, "Scan a parent bag");
  assert.equal(v.parent, null);
  assert.equal(v.feedback, null);
  assert.equal(v.canUndo, false);
  assert.equal(v.celebrate, null);
});

test("parent_opened: parent card, 'Scan child bags', green 'Parent bag opened'", () => {
  const s = reduceOutcome(initialScan(null), opened(P("SB12345", 0)));
  const v = scanView(s, t);
  assert.equal(v.step, "children");
  assert.equal(v.prompt, "Scan child bags");
  assert.deepEqual(v.parent, { code: "SB12345", counter: "0 / 30", progress: 0, complete: false });
  assert.deepEqual(v.feedback, { colour: "green", icon: "ok", title: "Parent bag opened", detail: null, code: "SB12345" });
  assert.equal(v.canUndo, false);
});

test("child applied: counter '7 / 30', progress 23%, green 'Added', code in big letters, session list", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB12345", 6)));
  s = reduceOutcome(s, applied("C0007", P("SB12345", 7)));
  const v = scanView(s, t);
  assert.equal(v.parent.counter, "7 / 30");
  assert.equal(v.parent.progress, 23);
  assert.deepEqual(v.feedback, { colour: "green", icon: "ok", title: "Added", detail: null, code: "C0007" });
  assert.deepEqual(v.session, [{ code: "C0007", colour: "green" }]);
  assert.equal(v.canUndo, true);
  assert.equal(v.prompt, "Scan child bags");
});

test("session list shows the newest first", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB12345", 0)));
  s = reduceOutcome(s, applied("C0001", P("SB12345", 1)));
  s = reduceOutcome(s, applied("C0002", P("SB12345", 2)));
  assert.deepEqual(scanView(s, t).session.map((x) => x.code), ["C0002", "C0001"]);
});

test("the child that fills the parent celebrates, then the prompt goes back to 'Scan a parent bag'", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB12345", 29)));
  s = reduceOutcome(s, applied("C0030", P("SB12345", 30)));
  let v = scanView(s, t);
  assert.deepEqual(v.celebrate, { title: "Bag full!", code: "SB12345", counter: "30 / 30", next: "Now scan the next parent bag" });
  assert.equal(v.parent.counter, "30 / 30");
  assert.equal(v.parent.progress, 100);
  assert.equal(v.parent.complete, true);
  assert.equal(v.step, "parent");
  assert.equal(v.prompt, "Scan a parent bag");
  assert.equal(v.canUndo, false);
  assert.equal(v.feedback.colour, "green");

  s = endCelebration(s);
  v = scanView(s, t);
  assert.equal(v.celebrate, null);
  assert.equal(v.parent, null);
  assert.deepEqual(v.session, []);
  assert.equal(v.prompt, "Scan a parent bag");
  assert.equal(v.step, "parent");
  assert.deepEqual(v.feedback, { colour: "green", icon: "ok", title: "Parent bag full: 30 / 30", detail: null, code: "SB12345" });
  assert.equal(endCelebration(s), s, "nothing to end twice");
  assert.equal(CELEBRATE_MS, 2500);
});

test("a new parent scanned during the celebration ends it and starts fresh", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB12345", 29)));
  s = reduceOutcome(s, applied("C0030", P("SB12345", 30)));
  s = reduceOutcome(s, opened(P("SB22222", 0)));
  const v = scanView(s, t);
  assert.equal(v.celebrate, null);
  assert.equal(v.parent.code, "SB22222");
  assert.deepEqual(v.session, []);
  assert.equal(v.feedback.title, "Parent bag opened");
});

test("a parent scanned mid-way switches to it and says so", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB11111", 3)));
  s = reduceOutcome(s, applied("C0004", P("SB11111", 4)));
  s = reduceOutcome(s, opened(P("SB22222", 12)));
  const v = scanView(s, t);
  assert.equal(v.parent.code, "SB22222");
  assert.equal(v.parent.counter, "12 / 30");
  assert.equal(v.parent.progress, 40);
  assert.deepEqual(v.session, []);
  assert.deepEqual(v.feedback, { colour: "green", icon: "ok", title: "Now parent bag SB22222", detail: null, code: "SB22222" });
  assert.equal(v.prompt, "Scan child bags");
});

test("the same parent scanned again keeps the session list", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB11111", 3)));
  s = reduceOutcome(s, applied("C0004", P("SB11111", 4)));
  s = reduceOutcome(s, opened(P("SB11111", 4)));
  assert.deepEqual(scanView(s, t).session, [{ code: "C0004", colour: "green" }]);
});

test("opening a parent that is already full: blue note, prompt stays 'Scan a parent bag', undo allowed", () => {
  const s = reduceOutcome(initialScan(null), opened(P("SB12345", 30)));
  const v = scanView(s, t);
  assert.equal(v.feedback.colour, "blue");
  assert.equal(v.feedback.icon, "info");
  assert.equal(v.feedback.title, "This parent bag is already full");
  assert.equal(v.prompt, "Scan a parent bag");
  assert.equal(v.celebrate, null);
  assert.equal(v.canUndo, true);
});

test("refused: red with the plain reason in big letters, counter unchanged", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB12345", 30)));
  s = reduceOutcome(s, { kind: "child", code: "C0031", verdict: { kind: "refused", code: "parent_full", message: "SB12345 is full: 30 of 30" } });
  const v = scanView(s, t);
  assert.deepEqual(v.feedback, { colour: "red", icon: "bad", title: "SB12345 is full: 30 of 30", detail: null, code: "C0031" });
  assert.equal(v.parent.counter, "30 / 30");
  assert.deepEqual(v.session, []);
});

test("refused in Hindi: the reason line comes from the Hindi table", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB12345", 5)));
  s = reduceOutcome(s, { kind: "child", code: "C0009", verdict: { kind: "refused", code: "child_in_other_parent", message: "C0009 is already in SB99999." } });
  assert.equal(scanView(s, hiT).feedback.title, "C0009 पहले से SB99999 में है");
  assert.equal(scanView(s, t).feedback.title, "C0009 is already in SB99999");
});

test("refused with an unknown code falls back to the server's message", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB12345", 5)));
  s = reduceOutcome(s, { kind: "child", code: "C0009", verdict: { kind: "refused", code: "something_new", message: "The moon is in the way." } });
  assert.equal(scanView(s, t).feedback.title, "The moon is in the way.");
});

test("saved_offline: yellow 'Saved, will send' with the unsent count, counter moves", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB12345", 7)));
  s = reduceOutcome(s, { kind: "child", code: "C0008", verdict: { kind: "saved_offline", unsent: 3, parent: P("SB12345", 8) } });
  const v = scanView(s, t);
  assert.deepEqual(v.feedback, { colour: "yellow", icon: "wait", title: "Saved, will send", detail: "3 waiting to send", code: "C0008" });
  assert.equal(v.parent.counter, "8 / 30");
  assert.equal(v.parent.progress, 27);
  assert.deepEqual(v.session, [{ code: "C0008", colour: "yellow" }]);
});

test("saved_offline without a parent state counts one more locally", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB12345", 7)));
  s = reduceOutcome(s, { kind: "child", code: "C0008", verdict: { kind: "saved_offline", unsent: 1, parent: null } });
  assert.equal(scanView(s, t).parent.counter, "8 / 30");
});

test("saved_offline that fills the parent celebrates too", () => {
  let s = reduceOutcome(initialScan(null), opened(P("M444-00001", 14, 15)));
  s = reduceOutcome(s, { kind: "child", code: "C0015", verdict: { kind: "saved_offline", unsent: 2, parent: P("M444-00001", 15, 15) } });
  const v = scanView(s, t);
  assert.equal(v.celebrate.counter, "15 / 15");
  assert.equal(v.feedback.colour, "yellow");
});

test("not_saved: red 'NOT saved! Scan again' with the station's message", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB12345", 7)));
  s = reduceOutcome(s, { kind: "child", code: "C0008", verdict: { kind: "not_saved", message: "disk full" } });
  const v = scanView(s, t);
  assert.deepEqual(v.feedback, { colour: "red", icon: "bad", title: "NOT saved! Scan again", detail: "disk full", code: "C0008" });
  assert.equal(v.parent.counter, "7 / 30");
});

test("need_parent: red 'First scan a parent bag'", () => {
  const s = reduceOutcome(initialScan(null), { kind: "need_parent", code: "C0001" });
  const v = scanView(s, t);
  assert.deepEqual(v.feedback, { colour: "red", icon: "bad", title: "First scan a parent bag", detail: null, code: "C0001" });
  assert.equal(v.prompt, "Scan a parent bag");
});

test("not_a_code: red 'This is not a bag code'", () => {
  const s = reduceOutcome(initialScan(null), { kind: "not_a_code", code: "HELLO", message: "HELLO is not a bag code." });
  assert.deepEqual(scanView(s, t).feedback, { colour: "red", icon: "bad", title: "This is not a bag code", detail: null, code: "HELLO" });
});

test("repeat changes nothing (one scan)", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB12345", 0)));
  s = reduceOutcome(s, applied("C0001", P("SB12345", 1)));
  const again = reduceOutcome(s, { kind: "repeat", code: "C0001" });
  assert.equal(again, s);
});

test("undo applied: counter down, last session entry gone, 'Last scan removed'", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB12345", 0)));
  s = reduceOutcome(s, applied("C0001", P("SB12345", 1)));
  s = reduceOutcome(s, applied("C0002", P("SB12345", 2)));
  s = reduceUndo(s, { kind: "applied", parent: P("SB12345", 1), bill: null });
  const v = scanView(s, t);
  assert.equal(v.parent.counter, "1 / 30");
  assert.deepEqual(v.session, [{ code: "C0001", colour: "green" }]);
  assert.deepEqual(v.feedback, { colour: "green", icon: "ok", title: "Last scan removed", detail: null, code: "C0002" });
});

test("undo refused: red plain reason", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB12345", 4)));
  s = reduceUndo(s, { kind: "refused", code: "undo_too_late", message: "C0001 was scanned more than 60 minutes ago. Ask an admin to remove it." });
  const v = scanView(s, t);
  assert.equal(v.feedback.colour, "red");
  assert.equal(v.feedback.title, "Too late to remove. Ask an admin.");
  assert.equal(v.parent.counter, "4 / 30");
});

test("undo saved offline: yellow, counter down locally", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB12345", 4)));
  s = reduceUndo(s, { kind: "saved_offline", unsent: 5, parent: null });
  const v = scanView(s, t);
  assert.equal(v.parent.counter, "3 / 30");
  assert.equal(v.feedback.colour, "yellow");
  assert.equal(v.feedback.title, "Removed, will send");
  assert.equal(v.feedback.detail, "5 waiting to send");
});

test("closeParent goes back to 'Scan a parent bag'", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB12345", 4)));
  s = closeParent(s);
  assert.equal(scanView(s, t).prompt, "Scan a parent bag");
  assert.equal(scanView(s, t).parent, null);
});

test("restart: the open parent from station_state shows at once", () => {
  const v = scanView(initialScan(P("SB12345", 17)), t);
  assert.equal(v.prompt, "Scan child bags");
  assert.equal(v.parent.counter, "17 / 30");
  assert.equal(v.canUndo, true);
});

test("counter and progress helpers", () => {
  assert.equal(counterText(7, 30), "7 / 30");
  assert.equal(progressPercent(7, 30), 23);
  assert.equal(progressPercent(15, 15), 100);
  assert.equal(progressPercent(31, 30), 100);
  assert.equal(progressPercent(3, 0), 0);
});

test("Hindi prompts", () => {
  assert.equal(scanView(initialScan(null), hiT).prompt, "बड़ा बैग स्कैन करें");
  assert.equal(scanView(initialScan(P("SB1", 1)), hiT).prompt, "छोटे बैग स्कैन करें");
});

test("status unsent 0: offline scans show as sent and the yellow panel turns neutral 'All sent'", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB12345", 7)));
  s = reduceOutcome(s, applied("C0008", P("SB12345", 8)));
  s = reduceOutcome(s, { kind: "child", code: "C0009", verdict: { kind: "saved_offline", unsent: 1, parent: P("SB12345", 9) } });
  // Still waiting: nothing changes (same object).
  assert.equal(markAllSent(s, { online: true, unsent: 1, needs_attention: 0 }), s);
  assert.equal(markAllSent(s, null), s);
  const sent = markAllSent(s, { online: true, unsent: 0, needs_attention: 0 });
  const v = scanView(sent, t);
  assert.deepEqual(v.session, [{ code: "C0009", colour: "green" }, { code: "C0008", colour: "green" }]);
  assert.deepEqual(v.feedback, { colour: "blue", icon: "info", title: "All sent", detail: null, code: "C0009" });
  assert.equal(scanView(sent, hiT).feedback.title, "सब भेज दिया");
  assert.equal(v.parent.counter, "9 / 30");
  // Already sent: the same object back, so the panel does not flash again.
  assert.equal(markAllSent(sent, { online: true, unsent: 0 }), sent);
});

test("status unsent 0 leaves a green or red panel alone", () => {
  let s = reduceOutcome(initialScan(null), opened(P("SB12345", 7)));
  s = reduceOutcome(s, applied("C0008", P("SB12345", 8)));
  assert.equal(markAllSent(s, { online: true, unsent: 0 }), s);
  s = reduceOutcome(s, { kind: "child", code: "C0009", verdict: { kind: "saved_offline", unsent: 1, parent: P("SB12345", 9) } });
  s = reduceOutcome(s, { kind: "not_a_code", code: "??" });
  const sent = markAllSent(s, { online: true, unsent: 0 });
  assert.equal(sent.feedback, s.feedback);
  assert.deepEqual(sent.session.map((x) => x.colour), ["green", "green"]);
});
