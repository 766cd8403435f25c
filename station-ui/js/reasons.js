// Server and station codes -> one plain line in the worker's language.
// The server's own message is the fallback when a code is unknown or a line
// needs a detail this screen does not have. Pure module.

import { placeholders } from "./i18n.js";

/** Which table line explains a code. Several codes share one line. */
export const REASON_KEYS = {
  parent_full: "reason_parent_full",
  child_in_other_parent: "reason_child_in_other_parent",
  already_linked: "reason_already_linked",
  not_a_child: "reason_not_a_child",
  child_is_parent: "reason_child_is_parent",
  same_bag: "reason_same_bag",
  not_a_parent: "reason_not_a_parent",
  wrong_area: "reason_wrong_area",
  not_allowed: "reason_not_allowed",
  bag_not_found: "reason_bag_not_found",
  nothing_to_undo: "reason_nothing_to_undo",
  undo_too_late: "reason_undo_too_late",
  not_your_scan: "reason_not_your_scan",
  not_your_last_scan: "reason_not_your_last_scan",
  not_in_parent: "reason_not_in_parent",
  bill_full: "reason_bill_full",
  already_on_bill: "reason_already_on_bill",
  parent_on_other_bill: "reason_parent_on_other_bill",
  bill_closed: "reason_bill_closed",
  not_on_bill: "reason_not_on_bill",
  bill_not_found: "reason_bill_not_found",
  bill_exists: "reason_bill_exists",
  bad_capacity: "reason_bad_capacity",
  reason_required: "reason_reason_required",
  bill_changed: "reason_bill_changed",
  empty_code: "reason_bad_code",
  code_too_long: "reason_bad_code",
  bad_code: "reason_bad_code",
  bad_credentials: "reason_bad_credentials",
  login_failed: "reason_bad_credentials",
  never_here: "reason_never_here",
  worker_locked: "reason_worker_locked",
  worker_inactive: "reason_worker_inactive",
  bad_station_key: "reason_bad_station_key",
  unreachable: "reason_unreachable",
  offline: "reason_unreachable",
  retry_later: "reason_retry_later",
  internal_error: "reason_internal_error",
  no_station: "reason_no_station",
};

const CODE_RE = /\b[A-Z][A-Z0-9-]*[0-9][A-Z0-9-]*\b/g;

/** Bag-like codes in a server message: capitals and digits, with at least one digit. */
export function codesIn(message) {
  if (typeof message !== "string") return [];
  return [...message.matchAll(CODE_RE)].map((m) => m[0]);
}

/** Whole numbers in a server message that are not part of a code. */
export function numbersIn(message) {
  if (typeof message !== "string") return [];
  // No lookbehind: older WebKitGTK builds lack it.
  return [...message.replace(CODE_RE, " ").matchAll(/\b\d+\b/g)].map((m) => Number(m[0]));
}

/**
 * One plain line for a refusal or an error.
 * @param {string} code   the server's or station's code (e.g. "parent_full")
 * @param {string} message the server's message (fallback, and source of details)
 * @param {object} ctx    what the screen knows: {code: scanned code, parent: open parent code, capacity}
 * @param {Function} t    a translator from makeT
 */
export function reasonLine(code, message, ctx, t) {
  const c = ctx || {};
  const fallback = message && String(message).trim() ? String(message) : t("err_generic");
  let key = REASON_KEYS[code];
  if (!key) return fallback;

  const found = codesIn(message);
  const nums = numbersIn(message);
  const params = { code: c.code ?? found[0], parent: c.parent, cap: c.capacity };

  switch (code) {
    case "parent_full":
      params.parent = found[0] ?? c.parent;
      params.cap = nums.length ? nums[nums.length - 1] : c.capacity;
      break;
    case "child_in_other_parent": {
      params.other = found.find((x) => x !== params.code && x !== c.parent);
      if (!params.other) key = "reason_child_in_other_parent_any";
      break;
    }
    case "bad_capacity":
      params.low = nums[0];
      params.max = nums[1];
      break;
    default:
      break;
  }
  const template = t.template(key);
  const missing = placeholders(template).some((p) => params[p] === undefined || params[p] === null || params[p] === "");
  if (missing) return fallback;
  return t(key, params);
}

/** A plain line for a rejected command ({code, message}) from api.js. */
export function errorLine(err, ctx, t) {
  const e = err || {};
  return reasonLine(e.code, e.message, ctx, t);
}
