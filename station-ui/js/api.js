// The only place that touches window.__TAURI__. Every command returns a
// Promise; a failure always rejects with {code, message}. Opened outside the
// station program (no __TAURI__), every call rejects with code "no_station"
// and the app shows a plain "use the station program" screen.

export const NO_STATION = "no_station";

/** The Tauri global, or null (a plain browser). */
export function findTauri(scope = globalThis) {
  const t = scope?.__TAURI__ ?? scope?.window?.__TAURI__ ?? null;
  if (!t || typeof t.core?.invoke !== "function") return null;
  return t;
}

export function hasTauri(scope = globalThis) {
  return findTauri(scope) !== null;
}

/** Any rejection -> {code, message}. Tauri may reject with an object or a plain string. */
export function normalizeError(e) {
  if (e && typeof e === "object") {
    const code = typeof e.code === "string" && e.code ? e.code : "error";
    const message = typeof e.message === "string" ? e.message : String(e.message ?? "");
    return { code, message };
  }
  return { code: "error", message: e === undefined || e === null ? "" : String(e) };
}

/**
 * The station's commands.
 * @param {() => object|null} getTauri where to find the Tauri global (looked up at each call)
 */
export function createApi(getTauri = () => findTauri()) {
  async function invoke(cmd, args) {
    const tauri = getTauri();
    if (!tauri) {
      throw { code: NO_STATION, message: "The station program is not running." };
    }
    try {
      return await tauri.core.invoke(cmd, args ?? {});
    } catch (e) {
      throw normalizeError(e);
    }
  }

  return {
    available: () => getTauri() !== null,
    invoke,

    /** Subscribes to an event; resolves to an unlisten function. */
    async on(name, handler) {
      const tauri = getTauri();
      if (!tauri || typeof tauri.event?.listen !== "function") return () => {};
      return tauri.event.listen(name, (event) => handler(event?.payload));
    },

    stationState: () => invoke("station_state"),
    setup: (serverUrl, stationKey) => invoke("setup", { serverUrl, stationKey }),
    login: (username, password) => invoke("login", { username, password }),
    logout: () => invoke("logout"),
    wedgeKey: (key, ctrl, atMs) => invoke("wedge_key", { key, ctrl, atMs }),
    scan: (code) => invoke("scan", { code }),
    undo: () => invoke("undo"),
    closeParent: () => invoke("close_parent"),
    needsAttention: () => invoke("needs_attention"),
    acknowledge: (id) => invoke("acknowledge", { id }),
    billOpen: (code) => invoke("bill_open", { code }),
    billCreate: ({ code, capacity, destination, vehicleNumber }) =>
      invoke("bill_create", { code, capacity, destination, vehicleNumber }),
    billScan: (code) => invoke("bill_scan", { code }),
    billRemove: (parent) => invoke("bill_remove", { parent }),
    billClose: (reason) => invoke("bill_close", { reason }),
    devices: () => invoke("devices"),
    chooseScanner: (vendorId, productId) =>
      invoke("choose_scanner", vendorId === null || vendorId === undefined ? { vendorId: null } : { vendorId, productId }),
    setLanguage: (language) => invoke("set_language", { language }),
    settingsUnlock: (username, password) => invoke("settings_unlock", { username, password }),
    /** Addition to the contract: where finished scanner bursts go ("scan" | "billing" | "none"). */
    setScanMode: (mode) => invoke("set_scan_mode", { mode }),
  };
}

/** The app's api: finds __TAURI__ at each call (so a test stub may appear late). */
export const api = createApi();
