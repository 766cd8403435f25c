// TraitorTrack web console: the one small script of the server-made pages.
// No framework, no build step. It (1) shows that a form is being sent and
// keeps it from being sent twice, and (2) keeps the dashboard's totals
// fresh by asking the server every few seconds.
'use strict';

// ---- forms: the button says what is happening; a second click does nothing.
document.addEventListener('submit', (event) => {
  const form = event.target;
  if (form.dataset.sending === 'yes') {
    event.preventDefault();
    return;
  }
  form.dataset.sending = 'yes';
  const button = form.querySelector('button[type=submit]');
  if (button && form.dataset.busy) {
    button.dataset.label = button.textContent;
    button.textContent = form.dataset.busy;
    button.disabled = true;
  }
});

// Back to a page kept in the browser's memory: its forms work again.
window.addEventListener('pageshow', (event) => {
  if (!event.persisted) return;
  document.querySelectorAll('form[data-sending]').forEach((form) => {
    delete form.dataset.sending;
    const button = form.querySelector('button[type=submit]');
    if (button && button.dataset.label) {
      button.textContent = button.dataset.label;
      button.disabled = false;
    }
  });
});

// ---- live totals: an element with data-live names the address to ask.
// 1234567 -> "1,234,567", as the server writes it.
const grouped = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');

function startLive(status) {
  const url = status.dataset.live;
  const every = Number(status.dataset.every) || 5000;
  const words = document.getElementById('live-text');
  const time = document.getElementById('live-time');
  let timer = null;

  // 'on' with the server's time, or 'off' / 'ended' with what to say.
  const show = (state, text) => {
    status.classList.remove('on', 'off', 'ended');
    status.classList.add(state);
    words.textContent = state === 'on' ? 'Totals as of' : text;
    time.hidden = state !== 'on';
    if (state === 'on') time.textContent = text;
  };

  const update = (totals) => {
    Object.keys(totals).forEach((key) => {
      const text = grouped(totals[key]);
      document.querySelectorAll(`[data-total="${key}"]`).forEach((el) => {
        if (el.textContent === text) return;
        el.textContent = text;
        el.classList.add('changed');
        setTimeout(() => el.classList.remove('changed'), 2500);
      });
    });
  };

  const ask = async () => {
    try {
      const response = await fetch(url, {
        credentials: 'same-origin',
        cache: 'no-store',
        headers: { Accept: 'application/json' },
      });
      if (response.status === 401 || response.status === 403) {
        clearInterval(timer);
        show('ended', 'Your login has ended. Reload the page to log in again.');
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const live = await response.json();
      update(live.totals);
      show('on', live.updated);
    } catch (e) {
      show('off', 'Cannot reach the server. Trying again…');
    }
  };

  status.classList.add('on');
  timer = setInterval(ask, every);
}

const liveStatus = document.querySelector('[data-live]');
if (liveStatus) startLive(liveStatus);

// ---- print: a button with data-print prints the page (the dispatch sheet).
document.querySelectorAll('[data-print]').forEach((button) => {
  button.addEventListener('click', () => window.print());
});
// ---- system health: an element with data-health names the address of the
// figures (JSON). Elements with data-h="a.b.0.c" show one figure, formatted
// as data-f says; a tbody with data-h-rows is rebuilt from a list, one cell
// per name:format in data-h-cols. The formats match the server's.
const healthFormats = {
  text: (v) => (v === null || v === undefined ? '—' : String(v)),
  count: (v) => (v === null || v === undefined ? '—' : grouped(v)),
  rate: (v) => Number(v).toFixed(1),
  ms: (v) => {
    if (v === null || v === undefined) return '—';
    return v < 1 ? `${v.toFixed(2)} ms` : `${v.toFixed(1)} ms`;
  },
  bytes: (v) => {
    if (v === null || v === undefined) return '—';
    const k = 1024;
    if (Math.abs(v) < k) return `${v} bytes`;
    if (Math.abs(v) < k * k) return `${(v / k).toFixed(1)} KB`;
    if (Math.abs(v) < k * k * k) return `${(v / (k * k)).toFixed(1)} MB`;
    return `${(v / (k * k * k)).toFixed(2)} GB`;
  },
  uptime: (secs) => {
    const d = Math.floor(secs / 86400);
    const h = Math.floor(secs / 3600) % 24;
    const m = Math.floor(secs / 60) % 60;
    const s = secs % 60;
    if (d === 0 && h === 0 && m === 0) return `${s} s`;
    if (d === 0 && h === 0) return `${m} min ${s} s`;
    if (d === 0) return `${h} h ${m} min`;
    return d === 1 ? `1 day ${h} h` : `${d} days ${h} h`;
  },
};

const healthValue = (figures, path) =>
  path.split('.').reduce((v, key) => (v === null || v === undefined ? v : v[key]), figures);

function showHealth(figures) {
  document.querySelectorAll('[data-h]').forEach((el) => {
    const format = healthFormats[el.dataset.f] || healthFormats.text;
    const text = format(healthValue(figures, el.dataset.h));
    if (el.textContent !== text) el.textContent = text;
  });
  document.querySelectorAll('[data-h-rows]').forEach((body) => {
    const list = healthValue(figures, body.dataset.hRows) || [];
    const cols = body.dataset.hCols.split(',').map((c) => c.split(':'));
    const rows = list.map((item) => {
      const tr = document.createElement('tr');
      cols.forEach(([name, kind]) => {
        const td = document.createElement('td');
        const format = healthFormats[kind] || healthFormats.text;
        if (kind === 'code') {
          const code = document.createElement('code');
          code.textContent = healthFormats.text(item[name]);
          td.appendChild(code);
        } else {
          td.textContent = format(item[name]);
        }
        if (kind === 'count') td.className = 'num';
        tr.appendChild(td);
      });
      return tr;
    });
    if (rows.length === 0 && body.dataset.hEmpty) {
      const tr = document.createElement('tr');
      tr.className = 'none';
      const td = document.createElement('td');
      td.colSpan = cols.length;
      td.textContent = body.dataset.hEmpty;
      tr.appendChild(td);
      rows.push(tr);
    }
    body.replaceChildren(...rows);
  });
}

function startHealth(status) {
  const url = status.dataset.health;
  const every = Number(status.dataset.every) || 5000;
  const words = document.getElementById('health-live-text');
  const time = document.getElementById('health-live-time');
  let timer = null;

  const show = (state, text) => {
    status.classList.remove('on', 'off', 'ended');
    status.classList.add(state);
    words.textContent = state === 'on' ? 'Figures as of' : text;
    time.hidden = state !== 'on';
    if (state === 'on') time.textContent = text;
  };

  const ask = async () => {
    try {
      const response = await fetch(url, {
        credentials: 'same-origin',
        cache: 'no-store',
        headers: { Accept: 'application/json' },
      });
      if (response.status === 401 || response.status === 403) {
        clearInterval(timer);
        show('ended', 'Your login has ended. Reload the page to log in again.');
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      showHealth(await response.json());
      // The time of day in the warehouse's time zone, as the server writes it.
      const offset = Number(status.dataset.offsetMinutes) || 0;
      show('on', new Date(Date.now() + offset * 60000).toISOString().slice(11, 19));
    } catch (e) {
      show('off', 'Cannot reach the server. Trying again…');
    }
  };

  status.classList.add('on');
  timer = setInterval(ask, every);
}

const healthStatus = document.querySelector('[data-health]');
if (healthStatus) startHealth(healthStatus);
