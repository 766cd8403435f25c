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

// ---- imports. The upload form (#import-form) sends the file itself to
// POST /api/v1/imports, with the page's CSRF token in a header: the one
// way imports run. The run panel (#import-run) follows an import through
// GET /api/v1/imports/{id}. What the panel says in each state is in the
// page (data-when: states, data-mode: preview or apply, data-refused: only
// when rows were refused); the script only switches it and writes numbers.
const runPercent = (s) => {
  if (s.total_rows > 0) return Math.min(100, Math.floor((s.rows_done * 100) / s.total_rows));
  return s.state === 'running' ? 0 : 100;
};

// An import as GET /api/v1/imports/{id} answers it, as the panel shows it.
const runOf = (s) => ({
  id: s.id,
  state: s.state,
  mode: s.dry_run ? 'preview' : 'apply',
  percent: runPercent(s),
  rows_done: s.rows_done,
  total_rows: Math.max(s.total_rows, s.rows_done),
  rows_per_sec: Math.max(0, Math.round(s.rows_per_sec)),
  created: s.counts.created,
  linked: s.counts.linked,
  already_there: s.counts.already_there,
  refused: s.counts.refused,
  rows: s.counts.created + s.counts.linked + s.counts.already_there + s.counts.refused,
  problems: s.problems || [],
  error: s.error || '',
});

function showRun(panel, run) {
  panel.hidden = false;
  panel.dataset.state = run.state;
  panel.dataset.runMode = run.mode;
  // Stopped before any row: no numbers and no result file to show.
  panel.dataset.empty = run.state === 'failed' && !run.rows ? 'yes' : 'no';
  panel.querySelectorAll('[data-when]').forEach((el) => {
    const states = el.dataset.when ? el.dataset.when.split(' ') : null;
    el.hidden = !(
      (!states || states.includes(run.state))
      && (!el.dataset.mode || el.dataset.mode === run.mode)
      && (el.dataset.refused !== 'yes' || run.refused > 0)
    );
  });
  panel.querySelectorAll('[data-run]').forEach((el) => {
    const value = run[el.dataset.run === 'bar' ? 'percent' : el.dataset.run];
    if (value === undefined) return;
    if (el.dataset.run === 'bar') {
      el.value = value;
      return;
    }
    const text = typeof value === 'number' ? grouped(value) : String(value);
    if (el.textContent !== text) el.textContent = text;
  });
  const body = panel.querySelector('[data-run-problems]');
  if (body && run.problems) {
    body.replaceChildren(...run.problems.map((p) => {
      const tr = document.createElement('tr');
      [p.sheet, grouped(p.row), p.code || '—', p.message].forEach((text, i) => {
        const td = document.createElement('td');
        td.textContent = text;
        if (i === 1) td.className = 'num';
        if (i === 2) td.className = 'code';
        tr.appendChild(td);
      });
      return tr;
    }));
  }
  if (run.id) {
    panel.dataset.import = run.id;
    panel.querySelectorAll('[data-result]').forEach((a) => {
      a.href = `${panel.dataset.api}/${run.id}/result.${a.dataset.result}`;
    });
  }
}

// Asks for the import's state every second until it ends; then `ended`.
function followRun(panel, id, ended) {
  const note = panel.querySelector('[data-run-note]');
  const say = (text) => {
    note.textContent = text;
    note.hidden = !text;
  };
  const ask = async () => {
    try {
      const response = await fetch(`${panel.dataset.api}/${id}`, {
        credentials: 'same-origin',
        cache: 'no-store',
        headers: { Accept: 'application/json' },
      });
      if (response.status === 401 || response.status === 403) {
        say('Your login has ended. Reload the page to log in again. The import goes on.');
        return;
      }
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const run = runOf(await response.json());
      say('');
      showRun(panel, run);
      if (run.state === 'running') setTimeout(ask, 1000);
      else if (ended) ended(run);
    } catch (e) {
      say('Cannot reach the server. Trying again…');
      setTimeout(ask, 3000);
    }
  };
  setTimeout(ask, 500);
}

// The panel's heading in view: the outcome is seen without scrolling for it.
const inView = (panel) => {
  const heading = panel.querySelector('h2');
  if (heading) heading.scrollIntoView({ block: 'nearest' });
};

function startImports(form) {
  const panel = document.getElementById('import-run');
  const help = document.getElementById('import-help');
  const problem = document.getElementById('import-error');
  const buttons = form.querySelectorAll('button[type=submit]');
  const busy = (on) => {
    form.dataset.running = on ? 'yes' : '';
    buttons.forEach((b) => { b.disabled = on; });
  };
  const refuse = (text) => {
    problem.textContent = text;
    problem.hidden = false;
    panel.hidden = true;
    help.hidden = false;
    busy(false);
    problem.focus();
  };
  // Another file or layout: the last check says nothing about it.
  form.addEventListener('change', () => {
    if (form.dataset.running === 'yes') return;
    problem.hidden = true;
    panel.hidden = true;
    help.hidden = false;
  });
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    event.stopPropagation();
    if (form.dataset.running === 'yes') return;
    const mode = event.submitter && event.submitter.value === 'apply' ? 'apply' : 'preview';
    const kind = form.querySelector('input[name=kind]:checked');
    const file = form.elements.file.files[0];
    problem.hidden = true;
    if (!kind) {
      refuse('Say what is in the file first: choose one of the four kinds in step 1.');
      return;
    }
    if (!file) {
      refuse('Choose the file first (step 2).');
      return;
    }
    if (file.size === 0) {
      refuse('The file is empty: there is nothing to import.');
      return;
    }
    const max = Number(form.dataset.maxBytes) || 0;
    if (max > 0 && file.size > max) {
      const mb = (file.size / (1024 * 1024)).toFixed(1);
      refuse(`The file is too large (${mb} MB): an import takes at most ${form.dataset.maxMb} MB. Split it into smaller files.`);
      return;
    }
    busy(true);
    help.hidden = true;
    const sending = {
      state: 'sending', mode, percent: 0, rows_done: 0, total_rows: 0, rows_per_sec: 0,
      created: 0, linked: 0, already_there: 0, refused: 0, rows: 0, problems: [], error: '',
    };
    showRun(panel, sending);
    inView(panel);
    const query = new URLSearchParams({
      kind: kind.value,
      dry_run: mode === 'preview' ? 'true' : 'false',
      all_or_nothing: form.elements.all_or_nothing.checked ? 'true' : 'false',
      file_name: file.name,
      wait: 'false',
    });
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${panel.dataset.api}?${query}`);
    xhr.setRequestHeader('X-CSRF-Token', form.elements.csrf.value);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.upload.addEventListener('progress', (e) => {
      if (!e.lengthComputable || e.total === 0) return;
      showRun(panel, { ...sending, percent: Math.floor((e.loaded * 100) / e.total) });
    });
    xhr.addEventListener('load', () => {
      let answer = null;
      try {
        answer = JSON.parse(xhr.responseText);
      } catch (e) {
        answer = null;
      }
      if (xhr.status === 202 && answer && answer.id) {
        if (mode === 'apply') {
          window.location.assign(`/console/imports/${answer.id}`);
          return;
        }
        showRun(panel, runOf(answer));
        followRun(panel, answer.id, () => {
          busy(false);
          inView(panel);
        });
        return;
      }
      if (xhr.status === 401) {
        refuse('Your login has ended. Reload the page to log in again.');
      } else if (answer && answer.error && answer.error.message) {
        refuse(answer.error.message);
      } else if (xhr.status === 413) {
        refuse('The file is too large for the server. Split it into smaller files.');
      } else {
        refuse('The file could not be imported: the server did not take it. Try again.');
      }
    });
    xhr.addEventListener('error', () => {
      refuse('The file could not be sent: the server cannot be reached. Check the network and try again.');
    });
    xhr.send(file);
  });
}

const importForm = document.getElementById('import-form');
if (importForm) startImports(importForm);

// The page of one import that is still running follows it.
const runPanel = document.querySelector('#import-run[data-follow]');
if (runPanel) followRun(runPanel, runPanel.dataset.import, () => {});
