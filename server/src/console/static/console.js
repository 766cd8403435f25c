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
