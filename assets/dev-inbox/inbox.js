// The dev inbox: what verifyd's mock providers "sent", newest first, kept up to date over
// server-sent events. Plain browser JavaScript with no build step and no dependency; the page's
// Content-Security-Policy allows only this file and requests to this server.
(() => {
  // Every URL is relative to this script (…/dev/inbox.js), so the page works wherever the router
  // is mounted (/dev, or /verify/dev in an embedding app).
  const base = new URL('.', document.currentScript.src); // …/dev/
  const root = new URL('..', base); // where the verification routes are
  const outboxUrl = new URL('outbox', base);

  const list = document.getElementById('messages');
  const template = document.getElementById('message-template');
  const filter = document.getElementById('filter');
  const status = document.getElementById('status');
  const count = document.getElementById('count');
  const empty = document.getElementById('empty');

  document.getElementById('example').textContent =
    `curl -s ${root}verify-phone -H 'content-type: application/json' -d '{"phone":"+15551234567"}'`;

  // The filter lives in the address (?to=…), so a filtered view can be bookmarked or shared.
  filter.value = new URLSearchParams(location.search).get('to') ?? '';
  filter.addEventListener('input', () => {
    const url = new URL(location.href);
    if (filter.value) url.searchParams.set('to', filter.value);
    else url.searchParams.delete('to');
    history.replaceState(null, '', url);
    applyFilter();
  });

  document.getElementById('clear-all').addEventListener('click', () => {
    void fetch(outboxUrl, { method: 'DELETE' });
  });

  /** Substring match, ignoring case and the spaces people type into numbers. */
  function matches(item) {
    const wanted = filter.value.toLowerCase().replace(/\s+/g, '');
    return wanted === '' || item.dataset.to.toLowerCase().includes(wanted);
  }

  function applyFilter() {
    const items = [...list.children];
    let shown = 0;
    for (const item of items) {
      item.hidden = !matches(item);
      if (!item.hidden) shown++;
    }
    count.textContent =
      items.length === 0
        ? ''
        : shown === items.length
          ? `${items.length} message${items.length === 1 ? '' : 's'}`
          : `${shown} of ${items.length} messages`;
    empty.hidden = items.length > 0;
  }

  /** Copies `text`; the Clipboard API needs a secure context (localhost is one), else execCommand. */
  async function copy(text) {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return;
    }
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.className = 'offscreen';
    document.body.append(area);
    area.select();
    const ok = document.execCommand('copy');
    area.remove();
    if (!ok) throw new Error('copy refused');
  }

  /**
   * The email's HTML for the sandboxed frame, with links opening a new tab: inside the frame a
   * link would open the confirm page in the frame, which that page refuses (frame-ancestors).
   */
  function framed(html) {
    const baseTag = '<base target="_blank">';
    if (/<head[^>]*>/i.test(html)) return html.replace(/<head[^>]*>/i, (tag) => tag + baseTag);
    if (/<html[^>]*>/i.test(html))
      return html.replace(/<html[^>]*>/i, (tag) => `${tag}<head>${baseTag}</head>`);
    return baseTag + html;
  }

  function render(message) {
    const item = template.content.firstElementChild.cloneNode(true);
    item.dataset.id = message.id;
    item.dataset.to = message.to;
    item.dataset.channel = message.channel;
    item.querySelector('.channel').textContent = message.channel === 'sms' ? 'SMS' : 'Email';
    item.querySelector('.to').textContent = message.to;
    const sent = item.querySelector('.sent');
    sent.dateTime = message.sentAt;
    sent.textContent = new Date(message.sentAt).toLocaleString();
    const subject = item.querySelector('.subject');
    if (message.subject) subject.textContent = message.subject;
    else subject.remove();

    const codeField = item.querySelector('.code-field');
    if (message.code) item.querySelector('.code').textContent = message.code;
    else codeField.remove();
    const linkField = item.querySelector('.link-field');
    if (message.link) {
      const link = item.querySelector('.link');
      link.href = message.link;
      link.textContent = message.link;
    } else linkField.remove();

    item.querySelector('.body').textContent = message.body;
    const frame = item.querySelector('.html');
    // srcdoc in a sandbox without allow-scripts or allow-same-origin: the email's HTML shows as
    // a mail client would show it, and nothing in it runs or reaches this page.
    if (message.html) frame.srcdoc = framed(message.html);
    else frame.remove();

    for (const button of item.querySelectorAll('.copy')) {
      button.addEventListener('click', async () => {
        const label = button.textContent;
        try {
          await copy(message[button.dataset.copy]);
          button.textContent = 'Copied';
        } catch {
          button.textContent = 'Copy failed';
        }
        setTimeout(() => {
          button.textContent = label;
        }, 1500);
      });
    }
    item.querySelector('.clear-recipient').addEventListener('click', () => {
      const url = new URL(outboxUrl);
      url.searchParams.set('to', message.to);
      void fetch(url, { method: 'DELETE' });
    });
    item.hidden = !matches(item);
    return item;
  }

  /** Newest first: the outbox lists newest last. */
  function showAll(messages) {
    list.replaceChildren(...messages.map(render).reverse());
    applyFilter();
  }

  function connect() {
    const events = new EventSource(new URL('outbox/events', base));
    events.addEventListener('open', () => {
      status.textContent = 'Live: new messages appear here as they are sent.';
      status.className = 'status live';
    });
    events.addEventListener('error', () => {
      // EventSource reconnects by itself; the snapshot it gets then replaces the list.
      status.textContent = 'Disconnected from verifyd; reconnecting…';
      status.className = 'status down';
    });
    events.addEventListener('snapshot', (event) => {
      showAll(JSON.parse(event.data).messages);
    });
    events.addEventListener('added', (event) => {
      list.prepend(render(JSON.parse(event.data)));
      applyFilter();
    });
    events.addEventListener('cleared', (event) => {
      const { to } = JSON.parse(event.data);
      for (const item of [...list.children]) {
        if (to === null || item.dataset.to === to) item.remove();
      }
      applyFilter();
    });
  }

  applyFilter();
  connect();
})();
