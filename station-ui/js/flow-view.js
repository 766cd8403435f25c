// The scan screen as data: what each FlowOutcome / Verdict does to the screen
// state, and the view model (colour, big text, counter, progress, prompt,
// celebration) the DOM code draws. Pure module: no DOM, no Tauri.

import { reasonLine } from "./reasons.js";

/** How long the "bag full" celebration stays before "Scan a parent bag". */
export const CELEBRATE_MS = 2500;

/** Colours a feedback panel can have, each with its own icon. */
export const ICONS = { green: "ok", red: "bad", yellow: "wait", blue: "info" };

export function initialScan(openParent = null) {
  return {
    parent: openParent ? { ...openParent } : null,
    session: [], // children scanned into this parent since it was opened here: [{code, colour}]
    feedback: null, // {colour, title: {key, params} | {reason}, detail, code}
    celebrate: null, // {code, children, capacity} while the celebration shows
  };
}

function bump(parent, delta) {
  if (!parent) return null;
  const children = Math.max(0, parent.children + delta);
  return { ...parent, children, complete: parent.capacity > 0 && children >= parent.capacity };
}

function fb(colour, title, detail = null, code = null) {
  return { colour, title, detail, code };
}

function refusedTitle(verdict, code, parent) {
  return {
    reason: {
      code: verdict.code,
      message: verdict.message,
      ctx: { code, parent: parent?.code, capacity: parent?.capacity },
    },
  };
}

/** The screen state after one FlowOutcome (from a wedge burst, a HID scan or a typed code). */
export function reduceOutcome(state, outcome) {
  if (!outcome || typeof outcome !== "object") return state;
  switch (outcome.kind) {
    case "parent_opened": {
      const next = { ...outcome.parent };
      const prev = state.parent;
      const same = prev && prev.code === next.code;
      const switched = !!prev && !same && !prev.complete && !state.celebrate;
      let feedback;
      if (next.complete) feedback = fb("blue", { key: "fb_parent_full_already" }, null, next.code);
      else if (switched) feedback = fb("green", { key: "fb_parent_switched", params: { code: next.code } }, null, next.code);
      else feedback = fb("green", { key: "fb_parent_opened" }, null, next.code);
      return {
        parent: next,
        session: same && !state.celebrate ? state.session : [],
        feedback,
        celebrate: null,
      };
    }
    case "child":
      return reduceChildVerdict(state, outcome.code, outcome.verdict);
    case "need_parent":
      return { ...state, celebrate: null, feedback: fb("red", { key: "fb_need_parent" }, null, outcome.code) };
    case "repeat":
      // The same code twice in a moment is one scan: nothing changes.
      return state;
    case "not_a_code":
      return { ...state, celebrate: null, feedback: fb("red", { key: "fb_not_a_code" }, null, outcome.code || null) };
    default:
      return state;
  }
}

function reduceChildVerdict(state, code, verdict) {
  const base = { ...state, celebrate: null };
  // A celebration still showing means that parent is finished: no parent is open.
  const open = state.celebrate ? null : state.parent;
  if (!verdict) return base;
  switch (verdict.kind) {
    case "applied": {
      const parent = verdict.parent ? { ...verdict.parent } : bump(open, +1);
      const session = [...(state.celebrate ? [] : state.session), { code, colour: "green" }];
      const feedback = fb("green", { key: "fb_added" }, null, code);
      return finish({ ...base, parent, session, feedback });
    }
    case "saved_offline": {
      const parent = verdict.parent ? { ...verdict.parent } : bump(open, +1);
      const session = [...(state.celebrate ? [] : state.session), { code, colour: "yellow" }];
      const feedback = fb("yellow", { key: "fb_saved" }, { key: "fb_saved_detail", params: { n: verdict.unsent } }, code);
      return finish({ ...base, parent, session, feedback });
    }
    case "refused":
      return { ...base, parent: open, feedback: fb("red", refusedTitle(verdict, code, open), null, code) };
    case "not_saved":
      return {
        ...base,
        parent: open,
        feedback: fb("red", { key: "fb_not_saved" }, verdict.message ? { raw: verdict.message } : null, code),
      };
    default:
      return base;
  }
}

function finish(state) {
  if (state.parent && state.parent.complete) {
    const { code, children, capacity } = state.parent;
    return { ...state, celebrate: { code, children, capacity } };
  }
  return state;
}

/** The celebration is over: straight back to "Scan a parent bag". */
export function endCelebration(state) {
  if (!state.celebrate) return state;
  const { code, children, capacity } = state.celebrate;
  return {
    ...state,
    parent: null,
    session: [],
    celebrate: null,
    feedback: fb("green", { key: "fb_parent_done", params: { counter: counterText(children, capacity) } }, null, code),
  };
}

/** The worker left the parent (close_parent). */
export function closeParent(state) {
  return { ...state, parent: null, session: [], celebrate: null, feedback: null };
}

/** The screen state after "Remove last scan" (undo). */
export function reduceUndo(state, verdict) {
  if (!verdict) return state;
  const parent = state.parent;
  switch (verdict.kind) {
    case "applied": {
      const next = verdict.parent ? { ...verdict.parent } : bump(parent, -1);
      const removed = state.session[state.session.length - 1]?.code ?? null;
      return {
        ...state,
        parent: next,
        session: state.session.slice(0, -1),
        celebrate: null,
        feedback: fb("green", { key: "fb_removed" }, null, removed),
      };
    }
    case "saved_offline": {
      const next = verdict.parent ? { ...verdict.parent } : bump(parent, -1);
      const removed = state.session[state.session.length - 1]?.code ?? null;
      return {
        ...state,
        parent: next,
        session: state.session.slice(0, -1),
        celebrate: null,
        feedback: fb("yellow", { key: "fb_removed_saved" }, { key: "fb_saved_detail", params: { n: verdict.unsent } }, removed),
      };
    }
    case "refused":
      return { ...state, feedback: fb("red", refusedTitle(verdict, null, parent), null, null) };
    case "not_saved":
      return { ...state, feedback: fb("red", { key: "fb_not_saved" }, verdict.message ? { raw: verdict.message } : null, null) };
    default:
      return state;
  }
}

/**
 * The station said everything is sent (a `status` with unsent 0): scans saved
 * offline are now on the server. Their list items turn green ("sent") and a
 * yellow "Saved, will send" panel becomes a neutral blue "All sent".
 * Returns the same object when nothing changes.
 */
export function markAllSent(state, status) {
  if (!status || status.unsent !== 0) return state;
  const waiting = state.session.some((s) => s.colour === "yellow");
  const yellow = state.feedback?.colour === "yellow";
  if (!waiting && !yellow) return state;
  return {
    ...state,
    session: waiting ? state.session.map((s) => (s.colour === "yellow" ? { ...s, colour: "green" } : s)) : state.session,
    feedback: yellow ? fb("blue", { key: "fb_all_sent" }, null, state.feedback.code) : state.feedback,
  };
}

/** "7 / 30" */
export function counterText(children, capacity) {
  return `${children} / ${capacity}`;
}

/** Whole percent, 0..100. */
export function progressPercent(children, capacity) {
  if (!capacity || capacity <= 0) return 0;
  return Math.max(0, Math.min(100, Math.round((100 * children) / capacity)));
}

function text(part, t) {
  if (!part) return null;
  if (part.raw !== undefined) return part.raw;
  if (part.reason) return reasonLine(part.reason.code, part.reason.message, part.reason.ctx, t);
  return t(part.key, part.params);
}

/** Translates a feedback object for drawing: {colour, icon, title, detail, code}. */
export function feedbackView(feedback, t) {
  if (!feedback) return null;
  return {
    colour: feedback.colour,
    icon: ICONS[feedback.colour],
    title: text(feedback.title, t),
    detail: text(feedback.detail, t),
    code: feedback.code,
  };
}

/** What the scan screen shows, all words translated. */
export function scanView(state, t) {
  const parent = state.parent;
  const working = !!parent && !parent.complete && !state.celebrate;
  const feedback = feedbackView(state.feedback, t);
  return {
    step: working ? "children" : "parent",
    prompt: working ? t("scan_children") : t("scan_parent"),
    parent: parent
      ? {
          code: parent.code,
          counter: counterText(parent.children, parent.capacity),
          progress: progressPercent(parent.children, parent.capacity),
          complete: !!parent.complete,
        }
      : null,
    feedback,
    session: state.session.map((s) => ({ code: s.code, colour: s.colour })).reverse(),
    canUndo: !!parent && !state.celebrate && parent.children > 0,
    canLeave: working,
    celebrate: state.celebrate
      ? {
          title: t("celebrate_title"),
          code: state.celebrate.code,
          counter: counterText(state.celebrate.children, state.celebrate.capacity),
          next: t("celebrate_next"),
        }
      : null,
  };
}
