// Which screen to show for a station state, and what the app remembers in
// localStorage to open where the worker was after a restart. Pure module.

/** The work screens each role may use; the first is home. */
export const WORK_SCREENS = {
  dispatcher: ["scan"],
  biller: ["billing"],
  admin: ["scan", "billing"],
};

/** Screens that keep the always-focused scan input. */
export const SCAN_INPUT_SCREENS = ["scan", "billing", "attention"];

export function workScreens(role) {
  return WORK_SCREENS[role] || [];
}

export function homeScreen(role) {
  return workScreens(role)[0] || "login";
}

/**
 * The screen to show.
 * @param {object|null} state  station_state (null: not loaded yet)
 * @param {object} opts {requested, memory, settingsUnlocked, tauri}
 *   requested: the screen the worker asked for (a button), or null
 *   memory: parsed localStorage ({screen, user, bill})
 */
export function chooseScreen(state, opts = {}) {
  const { requested = null, memory = null, settingsUnlocked = false, tauri = true } = opts;
  if (!tauri) return "unavailable";
  if (!state) return "loading";
  if (!state.configured) return "setup";
  if (requested === "settings") return settingsUnlocked ? "settings" : "settings_unlock";
  if (requested === "settings_unlock") return "settings_unlock";
  if (requested === "setup_scanner") return "setup_scanner";
  const worker = state.worker;
  if (!worker) return "login";
  const work = workScreens(worker.role);
  if (requested && (work.includes(requested) || (requested === "attention" && work.length > 0))) return requested;
  if (memory && memory.user === worker.username && work.includes(memory.screen)) return memory.screen;
  return homeScreen(worker.role);
}

/**
 * What the core should do with a finished scanner burst on this screen
 * (sent with set_scan_mode): "scan" (link children), "billing" (add parents to
 * the bill open on screen) or "none" (forms, settings, billing with no bill
 * open: never link or bill anything; HID codes come back as scanner_test).
 * On "attention" scans still go to the work screen the worker came from.
 */
export function scanMode(screen, lastWork, { billOpen = false } = {}) {
  const work = screen === "attention" ? (lastWork === "billing" ? "billing" : "scan") : screen;
  if (work === "scan") return "scan";
  if (work === "billing") return billOpen ? "billing" : "none";
  return "none";
}

export function usesScanInput(screen) {
  return SCAN_INPUT_SCREENS.includes(screen);
}

export const MEMORY_KEY = "traitortrack.station.v1";

/** Reads what was remembered; anything damaged reads as nothing. */
export function parseMemory(text) {
  if (typeof text !== "string" || !text) return { screen: null, user: null, bill: null, recent: [] };
  try {
    const m = JSON.parse(text);
    return {
      screen: typeof m.screen === "string" ? m.screen : null,
      user: typeof m.user === "string" ? m.user : null,
      bill: typeof m.bill === "string" && m.bill ? m.bill : null,
      recent: Array.isArray(m.recent) ? m.recent.filter((u) => typeof u === "string" && u).slice(0, 6) : [],
    };
  } catch {
    return { screen: null, user: null, bill: null, recent: [] };
  }
}

/** The bill to reopen after a restart, only for the same worker. */
export function billToRestore(memory, worker) {
  if (!memory || !worker || memory.user !== worker.username) return null;
  return memory.bill || null;
}

/** Recent usernames for the quick worker switch, newest first, at most 6. */
export function addRecent(recent, username) {
  const name = String(username || "").trim().toLowerCase();
  if (!name) return recent || [];
  return [name, ...(recent || []).filter((u) => u !== name)].slice(0, 6);
}
