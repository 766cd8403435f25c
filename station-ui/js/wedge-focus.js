// Keyboard-wedge scanners type into whatever has focus and end with Enter.
// These pure decisions keep every scan: the scan input keeps focus, the
// scanner's Enter never presses a button, and a person typing in a form is
// never taken for a scanner. app.js feeds them plain element descriptions.

export const SCAN_INPUT_ID = "scan-input";

/** How often the focus is checked, besides blur/visibility/click handling. */
export const FOCUS_CHECK_MS = 500;

const TEXT_INPUT_TYPES = ["text", "password", "number", "url", "search", "tel", "email", ""];
const BUTTON_INPUT_TYPES = ["button", "submit", "reset", "image"];

/**
 * What kind of element this is for keyboard purposes:
 * "scan" (the scan input), "field" (a form field a person types in),
 * "button", or "other" (body, a card, nothing).
 * @param {{tagName?: string, id?: string, type?: string, isContentEditable?: boolean, disabled?: boolean}|null} el
 */
export function elementKind(el) {
  if (!el || typeof el !== "object") return "other";
  const tag = String(el.tagName || "").toUpperCase();
  if (el.id === SCAN_INPUT_ID) return "scan";
  if (tag === "TEXTAREA" || tag === "SELECT") return "field";
  if (tag === "INPUT") {
    const type = String(el.type ?? "text").toLowerCase();
    if (TEXT_INPUT_TYPES.includes(type)) return "field";
    if (BUTTON_INPUT_TYPES.includes(type)) return "button";
    return "other";
  }
  if (el.isContentEditable) return "field";
  if (tag === "BUTTON" || tag === "A" || tag === "SUMMARY") return "button";
  return "other";
}

export function isFormField(el) {
  return elementKind(el) === "field";
}

/** Whether the scan input should hold focus on this screen. */
export function scanInputWanted(screen, { billOpen = false } = {}) {
  if (screen === "scan" || screen === "attention") return true;
  if (screen === "billing") return billOpen;
  return false;
}

/**
 * What to do with one keydown.
 * @returns "forward" (preventDefault and send to wedge_key),
 *          "block" (preventDefault: a key must not press a button),
 *          "pass" (let the browser handle it: a person typing in a form)
 */
export function routeKey({ key, targetKind, scanActive }) {
  if (key === "Process" || key === "Unidentified" || key === "Dead") {
    return scanActive && targetKind !== "field" ? "block" : "pass";
  }
  if (scanActive) {
    // A person typing in an open form (type-a-code, close reason) is never a scan.
    if (targetKind === "field") return "pass";
    // The scan input, a button or the page itself: the scanner's keys, Enter included.
    return "forward";
  }
  // Buttons are pressed by touch or mouse only: a scanner's Enter or a stray
  // space never presses one.
  if (targetKind === "button" && (key === "Enter" || key === " " || key === "Spacebar")) return "block";
  return "pass";
}

/** Whether the page should move focus back to the scan input now. */
export function shouldRefocus({ scanActive, activeKind, hidden = false }) {
  if (hidden || !scanActive) return false;
  return activeKind !== "scan" && activeKind !== "field";
}

/** The wedge_key arguments for a keydown. */
export function wedgeArgs(event) {
  return { key: String(event.key), ctrl: !!event.ctrlKey, atMs: Number(event.timeStamp) || 0 };
}

/**
 * What a wedge_key (or scan) answer is:
 * "none" (keep going), "typed" ({typed}: a person typed), "flow" (a
 * FlowOutcome), "bill" ({verdict, bill}: a bill scan), "unknown".
 */
export function classifyWedgeResult(result) {
  if (result === null || result === undefined) return "none";
  if (typeof result !== "object") return "unknown";
  if (typeof result.typed === "string") return "typed";
  // A FlowOutcome is tagged by kind (a "child" outcome carries a verdict too);
  // a bill scan result is {verdict, bill} with no kind.
  if (typeof result.kind === "string") return "flow";
  if (result.verdict && typeof result.verdict === "object") return "bill";
  return "unknown";
}
