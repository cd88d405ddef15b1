/*
 * agent0 web UI.
 *
 * Plain ES2020, no framework, no build step. Served under a strict CSP
 * (script-src 'self', style-src 'self'), so: no inline scripts or handlers,
 * no style attributes, no eval.
 *
 * Security rule for this file: nothing that comes from the model, a tool or
 * the server is ever parsed as HTML. Every node is built with createElement
 * and filled with textContent; links are only made for http(s) URLs.
 */
(function () {
  'use strict';

  const MAX_MESSAGE_CHARS = 8000;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const TIME_CLAIMS = new Set(['iat', 'exp', 'auth_time', 'nbf', 'updated_at']);

  // ---------------------------------------------------------------------------
  // Pure helpers (also exported for node-based tests)
  // ---------------------------------------------------------------------------

  /** Returns the normalised href when `raw` is an http(s) URL, else null. */
  function safeHttpUrl(raw, base) {
    if (typeof raw !== 'string') return null;
    const trimmed = raw.trim();
    // Control characters and whitespace have no place in a link we render.
    if (!trimmed || /[\u0000-\u0020\u007f]/.test(trimmed)) return null;
    let url;
    try {
      url = base ? new URL(trimmed, base) : new URL(trimmed);
    } catch (_) {
      return null;
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') return null;
    return url.href;
  }

  /** Pretty JSON for display; strings that hold JSON are unpacked. */
  function prettyJson(value) {
    if (value === undefined) return 'null';
    if (typeof value === 'string') {
      const t = value.trim();
      if ((t.startsWith('{') && t.endsWith('}')) || (t.startsWith('[') && t.endsWith(']'))) {
        try {
          return JSON.stringify(JSON.parse(t), null, 2);
        } catch (_) {
          /* not JSON: show as is */
        }
      }
      return value;
    }
    try {
      const s = JSON.stringify(value, null, 2);
      return s === undefined ? String(value) : s;
    } catch (_) {
      return String(value);
    }
  }

  /**
   * Incremental Server-Sent Events parser (the subset of the WHATWG
   * EventSource algorithm we need: `event:` and `data:` fields, comments,
   * CR / LF / CRLF line ends, blank line dispatches).
   */
  function createSseParser(onEvent) {
    let buffer = '';
    let eventName = '';
    let data = [];

    function dispatch() {
      if (data.length) onEvent(eventName || 'message', data.join('\n'));
      eventName = '';
      data = [];
    }

    function processLine(line) {
      if (line === '') {
        dispatch();
        return;
      }
      if (line[0] === ':') return; // comment / keep-alive
      const idx = line.indexOf(':');
      const field = idx === -1 ? line : line.slice(0, idx);
      let value = idx === -1 ? '' : line.slice(idx + 1);
      if (value[0] === ' ') value = value.slice(1);
      if (field === 'event') eventName = value;
      else if (field === 'data') data.push(value);
      // `id` and `retry` are irrelevant for a one-shot fetch stream.
    }

    return {
      push(chunk) {
        buffer += chunk;
        let start = 0;
        for (let k = 0; k < buffer.length; k++) {
          const ch = buffer[k];
          if (ch !== '\n' && ch !== '\r') continue;
          if (ch === '\r' && k + 1 === buffer.length) break; // maybe half a CRLF
          processLine(buffer.slice(start, k));
          if (ch === '\r' && buffer[k + 1] === '\n') k++;
          start = k + 1;
        }
        buffer = buffer.slice(start);
      },
      end() {
        if (buffer) processLine(buffer.replace(/\r$/, ''));
        buffer = '';
        dispatch();
      },
    };
  }

  /**
   * A small, safe Markdown renderer producing DOM nodes.
   * Supports paragraphs, line breaks, headings, bold, italic, strike,
   * inline code, fenced code, bullet / numbered (nested) lists, block quotes,
   * horizontal rules, simple tables and http(s) links. Everything else is text.
   */
  function createMarkdownRenderer(doc) {
    const MAX_DEPTH = 8;
    const ESCAPABLE = '\\`*_{}[]()#+-.!~|<>"\'';

    const RE_FENCE = /^ {0,3}(`{3,}|~{3,})[ \t]*([^`\s]*)[^`]*$/;
    const RE_HEADING = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
    const RE_HR = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
    const RE_UL = /^([ \t]*)([-*+])[ \t]+(.*)$/;
    const RE_OL = /^([ \t]*)(\d{1,9})([.)])[ \t]+(.*)$/;
    const RE_QUOTE = /^ {0,3}> ?(.*)$/;
    const RE_AUTOLINK = /<(https?:\/\/[^\s<>]{1,2048})>/iy;
    const RE_BARE_URL = /https?:\/\/[^\s<>"`]{1,2048}/iy;
    const RE_TABLE_SEP = /^[ \t]*\|?[ \t]*:?-+:?[ \t]*(\|[ \t]*:?-+:?[ \t]*)*\|?[ \t]*$/;

    function el(tag, cls) {
      const n = doc.createElement(tag);
      if (cls) n.className = cls;
      return n;
    }

    function isWordChar(c) {
      return c !== undefined && /[\p{L}\p{N}]/u.test(c);
    }

    function isSpace(c) {
      return c === undefined || /\s/.test(c);
    }

    function indentOf(line) {
      const m = /^[ \t]*/.exec(line);
      return m ? m[0].replace(/\t/g, '    ').length : 0;
    }

    function stripIndent(line, n) {
      let i = 0;
      let width = 0;
      while (i < line.length && width < n && (line[i] === ' ' || line[i] === '\t')) {
        width += line[i] === '\t' ? 4 : 1;
        i++;
      }
      return line.slice(i);
    }

    // ---- inline -------------------------------------------------------------

    /** Text with '\n' becomes text nodes separated by <br>. */
    function appendText(parent, s) {
      const parts = s.split('\n');
      parts.forEach((part, idx) => {
        if (idx > 0) parent.appendChild(el('br'));
        if (part) parent.appendChild(doc.createTextNode(part));
      });
    }

    function appendLink(parent, href, label, depth) {
      const a = el('a');
      a.href = href;
      a.target = '_blank';
      a.rel = 'noopener noreferrer';
      if (typeof label === 'string') a.textContent = label;
      else renderInline(label.text, a, depth + 1);
      parent.appendChild(a);
    }

    /** Index of a closing backtick run of exactly `run` ticks, or -1. */
    function findCodeEnd(s, from, run) {
      let j = from;
      while ((j = s.indexOf('`', j)) !== -1) {
        let k = j;
        while (s[k] === '`') k++;
        if (k - j === run) return j;
        j = k;
      }
      return -1;
    }

    /** Skips a code span starting at j (a backtick); returns the next index. */
    function skipCode(s, j) {
      let run = 0;
      while (s[j + run] === '`') run++;
      const end = findCodeEnd(s, j + run, run);
      return end === -1 ? j + run : end + run;
    }

    /**
     * Finds the closer for an emphasis delimiter (`*`, `**`, `_`, `__`, `~~`)
     * whose content starts at `from`. Returns the closer's index or -1.
     */
    function findCloser(s, from, ch, width, misses) {
      // A search that failed from `from` fails from any later start too, so
      // remember it: keeps runs of unmatched delimiters linear, not quadratic.
      const key = ch + width;
      if (misses && misses.has(key) && from >= misses.get(key)) return -1;
      const found = scanCloser(s, from, ch, width);
      if (found === -1 && misses) misses.set(key, Math.min(from, misses.has(key) ? misses.get(key) : from));
      return found;
    }

    function scanCloser(s, from, ch, width) {
      let j = from;
      while (j < s.length) {
        const c = s[j];
        if (c === '\\') {
          j += 2;
          continue;
        }
        if (c === '`') {
          j = skipCode(s, j);
          continue;
        }
        if (c === '[') {
          // Do not let a delimiter inside a link destination close emphasis.
          const link = parseLink(s, j);
          if (link) {
            j = link.end;
            continue;
          }
        }
        if (c !== ch) {
          j++;
          continue;
        }
        let run = 0;
        while (s[j + run] === ch) run++;
        let candidate = -1;
        if (width === 2 && run >= 2) candidate = j + run - 2;
        else if (width === 1 && (run === 1 || run >= 3)) candidate = j + run - 1;
        if (candidate > from && !isSpace(s[candidate - 1])) {
          const after = s[candidate + width];
          if (ch !== '_' || !isWordChar(after)) return candidate;
        }
        j += run;
      }
      return -1;
    }

    function parseLink(s, i) {
      if (s[i] !== '[') return null;
      let depth = 0;
      let j = i;
      for (; j < s.length; j++) {
        const c = s[j];
        if (c === '\\') {
          j++;
          continue;
        }
        if (c === '`') {
          j = skipCode(s, j) - 1;
          continue;
        }
        if (c === '[') depth++;
        else if (c === ']') {
          depth--;
          if (depth === 0) break;
        }
      }
      if (j >= s.length || s[j + 1] !== '(') return null;
      const label = s.slice(i + 1, j);
      let k = j + 2;
      while (s[k] === ' ') k++;
      let url;
      if (s[k] === '<') {
        const e = s.indexOf('>', k);
        if (e === -1) return null;
        url = s.slice(k + 1, e);
        k = e + 1;
      } else {
        const start = k;
        let parens = 0;
        for (; k < s.length; k++) {
          const c = s[k];
          if (c === '\\') {
            k++;
            continue;
          }
          if (/\s/.test(c)) break;
          if (c === '(') parens++;
          else if (c === ')') {
            if (parens === 0) break;
            parens--;
          }
        }
        url = s.slice(start, k);
      }
      while (s[k] === ' ') k++;
      let title = '';
      if (s[k] === '"' || s[k] === "'") {
        const q = s[k];
        const e = s.indexOf(q, k + 1);
        if (e === -1) return null;
        title = s.slice(k + 1, e);
        k = e + 1;
        while (s[k] === ' ') k++;
      }
      if (s[k] !== ')') return null;
      return { label, url, title, end: k + 1 };
    }

    /** Strips trailing punctuation that is almost never part of a bare URL. */
    function trimBareUrl(url) {
      let u = url;
      for (;;) {
        const last = u[u.length - 1];
        if ('.,;:!?*_~\'"'.includes(last)) {
          u = u.slice(0, -1);
        } else if (last === ')' && (u.match(/\(/g) || []).length < (u.match(/\)/g) || []).length) {
          u = u.slice(0, -1);
        } else if (last === ']' && !u.includes('[')) {
          u = u.slice(0, -1);
        } else {
          return u;
        }
      }
    }

    function renderInline(s, parent, depth) {
      const misses = new Map();
      let buf = '';
      const flush = () => {
        if (buf) appendText(parent, buf);
        buf = '';
      };
      const n = s.length;
      let i = 0;
      while (i < n) {
        const c = s[i];

        if (c === '\\' && i + 1 < n && ESCAPABLE.includes(s[i + 1])) {
          buf += s[i + 1];
          i += 2;
          continue;
        }

        if (c === '`') {
          let run = 0;
          while (s[i + run] === '`') run++;
          const end = findCodeEnd(s, i + run, run);
          if (end !== -1) {
            flush();
            let content = s.slice(i + run, end).replace(/\n/g, ' ');
            if (content.length > 2 && content[0] === ' ' && content[content.length - 1] === ' ' && content.trim()) {
              content = content.slice(1, -1);
            }
            const code = el('code');
            code.textContent = content;
            parent.appendChild(code);
            i = end + run;
            continue;
          }
          buf += s.slice(i, i + run);
          i += run;
          continue;
        }

        if (c === '[' && depth < MAX_DEPTH) {
          const link = parseLink(s, i);
          if (link) {
            const href = safeHttpUrl(link.url);
            if (href) {
              flush();
              appendLink(parent, href, link.label.trim() ? { text: link.label } : link.url, depth);
              const a = parent.lastChild;
              if (link.title) a.title = link.title;
            } else {
              // Not a web link: show the source, so nothing is hidden.
              buf += s.slice(i, link.end);
            }
            i = link.end;
            continue;
          }
        }

        if (c === '<') {
          RE_AUTOLINK.lastIndex = i;
          const m = RE_AUTOLINK.exec(s);
          const href = m && safeHttpUrl(m[1]);
          if (href) {
            flush();
            appendLink(parent, href, m[1], depth);
            i += m[0].length;
            continue;
          }
        }

        if ((c === 'h' || c === 'H') && (i === 0 || !/[\p{L}\p{N}_/=&?.-]/u.test(s[i - 1]))) {
          RE_BARE_URL.lastIndex = i;
          const m = RE_BARE_URL.exec(s);
          if (m) {
            const url = trimBareUrl(m[0]);
            const href = /^https?:\/\/[^/?#]/i.test(url) ? safeHttpUrl(url) : null;
            if (href) {
              flush();
              appendLink(parent, href, url, depth);
              i += url.length;
              continue;
            }
          }
        }

        if ((c === '*' || c === '_' || c === '~') && depth < MAX_DEPTH) {
          let run = 0;
          while (s[i + run] === c) run++;
          const opensOk =
            !isSpace(s[i + run]) && !(c === '_' && i > 0 && isWordChar(s[i - 1]));
          if (opensOk) {
            const widths = c === '~' ? (run >= 2 ? [2] : []) : run >= 2 ? [2, 1] : [1];
            let matched = false;
            for (const w of widths) {
              const close = findCloser(s, i + w, c, w, misses);
              if (close !== -1) {
                flush();
                const tag = c === '~' ? 'del' : w === 2 ? 'strong' : 'em';
                const node = el(tag);
                renderInline(s.slice(i + w, close), node, depth + 1);
                parent.appendChild(node);
                i = close + w;
                matched = true;
                break;
              }
            }
            if (matched) continue;
          }
          buf += s.slice(i, i + run);
          i += run;
          continue;
        }

        buf += c;
        i++;
      }
      flush();
    }

    // ---- blocks -------------------------------------------------------------

    function isTableStart(lines, i) {
      return (
        i + 1 < lines.length &&
        lines[i].includes('|') &&
        lines[i + 1].includes('|') &&
        RE_TABLE_SEP.test(lines[i + 1]) &&
        lines[i + 1].includes('-')
      );
    }

    function startsBlock(lines, i) {
      const line = lines[i];
      return (
        RE_FENCE.test(line) ||
        RE_HEADING.test(line) ||
        RE_HR.test(line) ||
        RE_QUOTE.test(line) ||
        RE_UL.test(line) ||
        RE_OL.test(line) ||
        isTableStart(lines, i)
      );
    }

    function splitRow(line) {
      let t = line.trim();
      if (t.startsWith('|')) t = t.slice(1);
      if (t.endsWith('|') && !t.endsWith('\\|')) t = t.slice(0, -1);
      const cells = [];
      let cur = '';
      for (let k = 0; k < t.length; k++) {
        const c = t[k];
        if (c === '\\' && t[k + 1] === '|') {
          cur += '|';
          k++;
        } else if (c === '`') {
          const end = skipCode(t, k);
          cur += t.slice(k, end);
          k = end - 1;
        } else if (c === '|') {
          cells.push(cur.trim());
          cur = '';
        } else {
          cur += c;
        }
      }
      cells.push(cur.trim());
      return cells;
    }

    function renderTable(lines, i, parent, depth) {
      const header = splitRow(lines[i]);
      const aligns = splitRow(lines[i + 1]).map((c) => {
        const left = c.startsWith(':');
        const right = c.endsWith(':');
        if (left && right) return 'align-center';
        if (right) return 'align-right';
        return '';
      });
      const wrap = el('div', 'table-wrap');
      const table = el('table');
      const thead = el('thead');
      const hr = el('tr');
      header.forEach((cell, idx) => {
        const th = el('th', aligns[idx] || '');
        th.scope = 'col';
        renderInline(cell, th, depth + 1);
        hr.appendChild(th);
      });
      thead.appendChild(hr);
      table.appendChild(thead);
      const tbody = el('tbody');
      let k = i + 2;
      while (k < lines.length && lines[k].trim() && lines[k].includes('|')) {
        const cells = splitRow(lines[k]);
        const tr = el('tr');
        for (let c = 0; c < header.length; c++) {
          const td = el('td', aligns[c] || '');
          renderInline(cells[c] || '', td, depth + 1);
          tr.appendChild(td);
        }
        tbody.appendChild(tr);
        k++;
      }
      table.appendChild(tbody);
      wrap.appendChild(table);
      parent.appendChild(wrap);
      return k;
    }

    function codeBlock(code, lang) {
      const wrap = el('div', 'code-block');
      const bar = el('div', 'code-bar');
      const label = el('span', 'code-lang');
      label.textContent = lang || 'text';
      const copy = el('button', 'code-copy');
      copy.type = 'button';
      copy.textContent = 'Copy';
      copy.setAttribute('aria-label', 'Copy code');
      bar.append(label, copy);
      const pre = el('pre');
      const codeEl = el('code');
      if (lang && /^[\w+#.-]{1,30}$/.test(lang)) codeEl.className = 'language-' + lang;
      codeEl.textContent = code;
      pre.appendChild(codeEl);
      wrap.append(bar, pre);
      return wrap;
    }

    function renderList(lines, i, parent, depth) {
      const first = RE_UL.exec(lines[i]);
      const ordered = !first;
      const m0 = first || RE_OL.exec(lines[i]);
      const re = ordered ? RE_OL : RE_UL;
      const baseIndent = indentOf(lines[i]);
      const list = el(ordered ? 'ol' : 'ul');
      if (ordered) {
        const start = parseInt(m0[2], 10);
        if (start !== 1 && Number.isFinite(start)) list.start = start;
      }

      let itemLines = null;
      let contentIndent = 0;
      let loose = false;
      const items = [];
      const finishItem = () => {
        if (itemLines) items.push(itemLines);
        itemLines = null;
      };

      while (i < lines.length) {
        const line = lines[i];
        const m = re.exec(line);
        const indent = indentOf(line);

        if (m && indent >= baseIndent - 1 && indent < baseIndent + 2) {
          // A sibling item of this list.
          finishItem();
          const markerLen = ordered ? m[2].length + m[3].length : 1;
          contentIndent = indent + markerLen + 1;
          itemLines = [m[ordered ? 4 : 3]];
          i++;
          continue;
        }

        if (!line.trim()) {
          // Blank line: the list goes on only if more of it follows.
          let k = i + 1;
          while (k < lines.length && !lines[k].trim()) k++;
          if (k >= lines.length) break;
          const next = lines[k];
          const nextIndent = indentOf(next);
          const sibling = re.test(next) && nextIndent >= baseIndent - 1 && nextIndent < baseIndent + 2;
          if (!sibling && nextIndent < baseIndent + 2) break;
          loose = true;
          for (; i < k; i++) itemLines.push('');
          continue;
        }

        if (indent >= baseIndent + 2) {
          itemLines.push(stripIndent(line, contentIndent));
          i++;
          continue;
        }

        // A non-indented line right after item text continues it (lazily),
        // unless it starts another block.
        const prev = lines[i - 1];
        if (prev !== undefined && prev.trim() && !startsBlock(lines, i)) {
          itemLines.push(line.trim());
          i++;
          continue;
        }
        break;
      }
      finishItem();

      for (const content of items) {
        const li = el('li');
        renderBlocks(content, li, depth + 1);
        // Tight lists: unwrap the single leading paragraph.
        const paragraphs = Array.from(li.childNodes).filter((c) => c.nodeName === 'P');
        if (!loose && paragraphs.length === 1 && li.firstChild === paragraphs[0]) {
          const p = paragraphs[0];
          while (p.firstChild) li.insertBefore(p.firstChild, p);
          li.removeChild(p);
        }
        list.appendChild(li);
      }
      parent.appendChild(list);
      return i;
    }

    function renderBlocks(lines, parent, depth) {
      if (depth > MAX_DEPTH) {
        const p = el('p');
        appendText(p, lines.join('\n'));
        parent.appendChild(p);
        return;
      }
      let i = 0;
      while (i < lines.length) {
        const line = lines[i];
        if (!line.trim()) {
          i++;
          continue;
        }
        let m;

        if ((m = RE_FENCE.exec(line))) {
          const fence = m[1];
          const closer = new RegExp('^ {0,3}' + (fence[0] === '`' ? '`' : '~') + '{' + fence.length + ',}[ \\t]*$');
          const body = [];
          i++;
          while (i < lines.length && !closer.test(lines[i])) {
            body.push(lines[i]);
            i++;
          }
          i++; // closing fence (or end of an unfinished, still streaming block)
          parent.appendChild(codeBlock(body.join('\n'), m[2]));
          continue;
        }

        if ((m = RE_HEADING.exec(line))) {
          const h = el('h' + m[1].length);
          renderInline((m[2] || '').trim(), h, depth + 1);
          parent.appendChild(h);
          i++;
          continue;
        }

        if (RE_HR.test(line)) {
          parent.appendChild(el('hr'));
          i++;
          continue;
        }

        if (RE_QUOTE.test(line)) {
          const inner = [];
          while (i < lines.length && lines[i].trim()) {
            const q = RE_QUOTE.exec(lines[i]);
            if (q) inner.push(q[1]);
            else if (inner.length && !startsBlock(lines, i)) inner.push(lines[i]);
            else break;
            i++;
          }
          const bq = el('blockquote');
          renderBlocks(inner, bq, depth + 1);
          parent.appendChild(bq);
          continue;
        }

        if (RE_UL.test(line) || RE_OL.test(line)) {
          i = renderList(lines, i, parent, depth);
          continue;
        }

        if (isTableStart(lines, i)) {
          i = renderTable(lines, i, parent, depth);
          continue;
        }

        const para = [line.trim()];
        i++;
        while (i < lines.length && lines[i].trim() && !startsBlock(lines, i)) {
          para.push(lines[i].trim());
          i++;
        }
        const p = el('p');
        renderInline(para.join('\n'), p, depth + 1);
        parent.appendChild(p);
      }
    }

    function renderMarkdown(src) {
      const frag = doc.createDocumentFragment();
      const text = src === undefined || src === null ? '' : String(src);
      renderBlocks(text.replace(/\r\n?/g, '\n').split('\n'), frag, 0);
      return frag;
    }

    return { renderMarkdown, renderInline: (s, parent) => renderInline(String(s), parent, 0) };
  }

  const exported = { createMarkdownRenderer, createSseParser, safeHttpUrl, prettyJson };
  if (typeof module !== 'undefined' && module.exports) module.exports = exported;

  if (typeof window === 'undefined' || typeof document === 'undefined') return;

  // ---------------------------------------------------------------------------
  // Browser app
  // ---------------------------------------------------------------------------

  const md = createMarkdownRenderer(document);
  const $ = (id) => document.getElementById(id);

  const ui = {};
  const state = {
    authenticated: false,
    csrf: null,
    user: null,
    model: null,
    streaming: false,
    stickToBottom: true,
    connectionsSeq: 0,
    connectionLabels: new Map(),
    pendingConsent: null,
    conversationId: null,
    statusPolling: false,
  };
  const dialogOpeners = new WeakMap();

  class ApiError extends Error {
    constructor(status, code, message, beforeResponse) {
      super(message);
      this.status = status;
      this.code = code || '';
      this.beforeResponse = Boolean(beforeResponse);
    }
  }

  function el(tag, cls, text) {
    const n = document.createElement(tag);
    if (cls) n.className = cls;
    if (text !== undefined && text !== null) n.textContent = String(text);
    return n;
  }

  /** Builds an inline SVG icon from constant path data (never from input). */
  function icon(paths, cls) {
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    svg.setAttribute('class', 'icon' + (cls ? ' ' + cls : ''));
    for (const d of paths) {
      const p = document.createElementNS(SVG_NS, 'path');
      p.setAttribute('d', d);
      svg.appendChild(p);
    }
    return svg;
  }

  const ICONS = {
    check: ['M5 12.5l4.5 4.5L19 7.5'],
    cross: ['M7 7l10 10M17 7 7 17'],
    alert: ['M12 8v5', 'M12 16.5v.5', 'M10.3 3.9 2.4 17.5A2 2 0 0 0 4.1 20.5h15.8a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0Z'],
    lock: ['M6 11h12a1 1 0 0 1 1 1v8a1 1 0 0 1-1 1H6a1 1 0 0 1-1-1v-8a1 1 0 0 1 1-1Z', 'M8 11V7.5a4 4 0 0 1 8 0V11'],
    logo: ['M12 2.5 4.5 5.5v5.8c0 4.6 3.1 8.7 7.5 10.2 4.4-1.5 7.5-5.6 7.5-10.2V5.5Z', 'M9 12.2l2.1 2.1L15.2 10'],
    external: ['M14 4h6v6', 'M20 4l-9 9', 'M18 14v5a1 1 0 0 1-1 1H5a1 1 0 0 1-1-1V7a1 1 0 0 1 1-1h5'],
  };

  // ---- HTTP -----------------------------------------------------------------

  async function errorFromResponse(res) {
    let body = null;
    try {
      body = await res.json();
    } catch (_) {
      /* not JSON */
    }
    const code = body && typeof body.error === 'string' ? body.error : '';
    let message = body && typeof body.message === 'string' && body.message ? body.message : '';
    if (!message) {
      if (res.status === 401) message = 'Your session has ended. Log in again to continue.';
      else if (res.status === 403) message = 'That request was refused.';
      else if (res.status === 429) message = 'Too many requests right now. Wait a moment and try again.';
      else if (res.status >= 500) message = `agent0 ran into a problem (HTTP ${res.status}). Try again in a moment.`;
      else message = `The request failed (HTTP ${res.status}).`;
    }
    return new ApiError(res.status, code, message, false);
  }

  /** fetch with JSON + CSRF headers; retries once with a fresh CSRF token. */
  async function request(path, opts) {
    const method = (opts && opts.method) || 'GET';
    const accept = (opts && opts.accept) || 'application/json';
    const send = async () => {
      const headers = { Accept: accept };
      const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
      if (method !== 'GET') {
        headers['Content-Type'] = 'application/json';
        headers['X-CSRF-Token'] = state.csrf || '';
        init.body = JSON.stringify(opts && opts.body !== undefined ? opts.body : {});
      }
      try {
        return await fetch(path, init);
      } catch (_) {
        throw new ApiError(0, 'network', 'Could not reach agent0. Check that it is running and try again.', true);
      }
    };
    let res = await send();
    if (res.status === 403 && method !== 'GET' && !(opts && opts.noRetry)) {
      // The CSRF token may be stale (e.g. the server restarted): refresh once.
      const before = state.csrf;
      try {
        const s = await (await fetch('/auth/status', { credentials: 'same-origin', cache: 'no-store' })).json();
        if (s && s.csrf && s.csrf !== before) {
          state.csrf = s.csrf;
          res = await send();
        }
      } catch (_) {
        /* keep the original 403 */
      }
    }
    return res;
  }

  async function api(path, opts) {
    const res = await request(path, opts);
    if (!res.ok) throw await errorFromResponse(res);
    if (res.status === 204) return {};
    try {
      return await res.json();
    } catch (_) {
      throw new ApiError(res.status, 'bad_response', 'agent0 sent a response this page could not read.', false);
    }
  }

  // ---- views ----------------------------------------------------------------

  function setView(name) {
    ui.loadingView.hidden = name !== 'loading';
    ui.statusView.hidden = name !== 'status';
    ui.loginView.hidden = name !== 'login';
    ui.chatView.hidden = name !== 'chat';
    document.body.dataset.view = name;
    const authed = name === 'chat';
    ui.userChip.hidden = !authed;
    ui.claimsButton.hidden = !authed;
    ui.newConversation.hidden = !authed;
    ui.historyButton.hidden = !authed;
    ui.logoutButton.hidden = !authed;
  }

  function initials(name) {
    const words = String(name || '').trim().split(/\s+/).filter(Boolean);
    if (!words.length) return '?';
    const letters = words.length === 1 ? [words[0][0]] : [words[0][0], words[words.length - 1][0]];
    return letters.join('').toUpperCase();
  }

  function renderModel() {
    const m = state.model;
    const parts = m && typeof m === 'object' ? [m.provider, m.model].filter((x) => typeof x === 'string' && x) : [];
    ui.modelName.textContent = parts.join(' · ');
    ui.modelName.hidden = parts.length === 0;
  }

  function renderUser() {
    const u = state.user || {};
    const name = u.name || u.email || u.sub || 'Signed in';
    ui.userName.textContent = name;
    ui.userAvatar.textContent = initials(name);
    ui.userChip.title = u.email ? `Signed in as ${name} (${u.email})` : `Signed in as ${name}`;
    const first = u.name ? String(u.name).trim().split(/\s+/)[0] : '';
    ui.emptyTitle.textContent = first ? `Hi ${first}, what can I do for you?` : 'What can I do for you?';
  }

  function showLogin(message) {
    state.authenticated = false;
    state.user = null;
    for (const d of [ui.claimsPanel, ui.connectionsPanel, ui.historyPanel]) if (d.open) d.close();
    ui.loginMessage.textContent =
      message || 'Log in to chat with agent0. It acts on your behalf, with your permissions, and never sees your password.';
    setView('login');
  }

  function handleUnauthenticated(message) {
    state.csrf = null;
    showLogin(message || 'Your session has ended. Log in again to continue — your conversation is kept.');
  }

  async function loadStatus() {
    setView('loading');
    let s;
    try {
      s = await api('/auth/status');
    } catch (e) {
      ui.statusMessage.textContent = e.message;
      setView('status');
      return;
    }
    state.csrf = typeof s.csrf === 'string' ? s.csrf : null;
    state.model = s.model || null;
    renderModel();
    if (s.authenticated && s.user) {
      state.authenticated = true;
      state.user = s.user;
      renderUser();
      setView('chat');
      await loadConversation();
      if (isDockedWide()) showDockedConnections();
      refreshConnections({ quiet: true });
      pollStatus();
      await resendUnsent();
    } else {
      showLogin();
    }
  }

  // ---- messages -------------------------------------------------------------

  function isNearBottom() {
    const s = ui.chatScroll;
    return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
  }

  function scrollToBottom(force) {
    if (force) state.stickToBottom = true;
    if (!state.stickToBottom) return;
    ui.chatScroll.scrollTop = ui.chatScroll.scrollHeight;
  }

  function updateEmptyState() {
    ui.emptyState.hidden = ui.messages.childElementCount > 0;
  }

  function clearMessages() {
    ui.messages.replaceChildren();
    updateEmptyState();
  }

  function appendUserMessage(text) {
    const root = el('div', 'message user');
    const body = el('div', 'message-body');
    body.appendChild(el('div', 'message-text', text));
    root.appendChild(body);
    ui.messages.appendChild(root);
    updateEmptyState();
    scrollToBottom();
    return root;
  }

  function appendErrorMessage(text) {
    const root = el('div', 'message error');
    const badge = icon(ICONS.alert, 'message-error-icon');
    badge.setAttribute('role', 'img');
    badge.setAttribute('aria-label', 'Error');
    badge.removeAttribute('aria-hidden');
    const body = el('div', 'message-body');
    const shown = String(text || 'Something went wrong.');
    body.appendChild(el('div', 'message-text', shown.charAt(0).toUpperCase() + shown.slice(1)));
    root.append(badge, body);
    ui.messages.appendChild(root);
    updateEmptyState();
    scrollToBottom();
    return root;
  }

  function typingIndicator() {
    const t = el('div', 'typing-indicator');
    t.setAttribute('role', 'status');
    for (let k = 0; k < 3; k++) t.appendChild(el('span', 'typing-dot'));
    t.appendChild(el('span', 'visually-hidden', 'agent0 is working…'));
    return t;
  }

  function connectionLabel(name) {
    return state.connectionLabels.get(name) || name || 'a connected app';
  }

  function scopeList(s) {
    return String(s || '').split(/\s+/).filter(Boolean);
  }

  // ---- tool chips -----------------------------------------------------------

  function createToolChip(info) {
    const d = el('details', 'tool-chip');
    const tool = typeof info.tool === 'string' && info.tool ? info.tool : 'tool';
    d.dataset.tool = tool;
    d.dataset.state = 'pending';
    if (info.id !== undefined && info.id !== null) d.dataset.id = String(info.id);

    const summary = el('summary', 'tool-summary');
    const status = el('span', 'tool-status');
    status.setAttribute('aria-hidden', 'true');
    status.append(el('span', 'tool-spinner'), icon(ICONS.check, 'tool-icon-ok'), icon(ICONS.cross, 'tool-icon-error'));
    const name = el('span', 'tool-name', tool);
    const conn = el('span', 'tool-connection');
    // The step-up marker only exists once the scope was raised.
    let marker = null;
    const statusText = el('span', 'visually-hidden tool-status-text', '(running)');
    const outcome = el('span', 'tool-outcome');
    outcome.hidden = true;
    summary.append(status, name, conn, outcome, statusText);

    const body = el('div', 'tool-body');
    const stepUpBox = el('div', 'tool-step-up');
    stepUpBox.hidden = true;
    const argsPre = el('pre', 'tool-json tool-arguments', '{}');
    const resultPre = el('pre', 'tool-json tool-result muted', 'Waiting for the result…');
    body.append(
      stepUpBox,
      el('div', 'tool-section-title', 'Arguments'),
      argsPre,
      el('div', 'tool-section-title', 'Result'),
      resultPre
    );
    d.append(summary, body);

    const chip = {
      el: d,
      setInfo(x) {
        if (typeof x.connection === 'string' && x.connection) {
          conn.textContent = x.connection;
          conn.title = `Connection: ${connectionLabel(x.connection)}`;
          conn.hidden = false;
        } else if (!conn.textContent) {
          conn.hidden = true;
        }
        if (x.arguments !== undefined) argsPre.textContent = prettyJson(x.arguments);
      },
      setStepUp(from, to) {
        const fromList = scopeList(from);
        const toList = scopeList(to);
        const added = toList.filter((s) => !fromList.includes(s));
        d.dataset.stepUp = 'true';
        if (!marker) {
          marker = el('span', 'step-up-marker', '⬆ scope raised');
          summary.insertBefore(marker, statusText);
        }
        marker.title = `Scope raised from "${from || '(none)'}" to "${to || '(none)'}"`;
        const rows = [
          ['From', from || '(none)'],
          ['To', to || '(none)'],
        ];
        if (added.length) rows.push(['Added', added.join(' ')]);
        const title = el('div', 'tool-section-title', 'Scope raised (step-up, no prompt needed)');
        const dl = el('dl', 'step-up-scopes');
        for (const [k, v] of rows) {
          const dd = el('dd');
          dd.appendChild(el('code', '', v));
          dl.append(el('dt', '', k), dd);
        }
        stepUpBox.replaceChildren(title, dl);
        stepUpBox.hidden = false;
      },
      finish(result) {
        this.setInfo(result);
        const isError = result.isError === true;
        d.dataset.state = isError ? 'error' : 'ok';
        statusText.textContent = isError ? '(failed)' : '(done)';
        resultPre.classList.remove('muted');
        resultPre.textContent = prettyJson(result.result);
        showChipDetail(body, result.detail);
        outcome.textContent = toolSummary(tool, result.result, isError);
        outcome.hidden = !outcome.textContent;
        const su = result.stepUp;
        if (su && typeof su === 'object') this.setStepUp(su.from, su.to);
      },
      abandon() {
        if (d.dataset.state !== 'pending') return;
        d.dataset.state = 'error';
        statusText.textContent = '(no result)';
        resultPre.textContent = 'No result was received for this tool call.';
      },
    };
    chip.setInfo(info);
    return chip;
  }

  // ---- assistant message ----------------------------------------------------

  function createAssistantMessage(userText) {
    const root = el('div', 'message assistant');
    const avatar = el('div', 'avatar');
    avatar.appendChild(icon(ICONS.logo));
    const body = el('div', 'message-body');
    const content = el('div', 'markdown message-content');
    content.hidden = true;
    const tools = el('div', 'tool-chips');
    tools.hidden = true;
    const extras = el('div', 'message-extras');
    const typing = typingIndicator();
    body.append(content, tools, extras, typing);
    root.append(avatar, body);
    ui.messages.appendChild(root);
    updateEmptyState();

    let text = '';
    let frame = 0;
    const chips = new Map();
    const consentCards = new Map();
    let confirmCards = 0;
    let finished = false;

    const renderNow = () => {
      frame = 0;
      content.replaceChildren(md.renderMarkdown(text));
      content.hidden = !text.trim();
      scrollToBottom();
    };
    const scheduleRender = () => {
      if (!frame) frame = window.requestAnimationFrame(renderNow);
    };

    const chipFor = (info) => {
      const key = info && info.id !== undefined && info.id !== null ? String(info.id) : `anon-${chips.size}`;
      let chip = chips.get(key);
      if (!chip) {
        chip = createToolChip(info || {});
        chips.set(key, chip);
        tools.appendChild(chip.el);
        tools.hidden = false;
        scrollToBottom();
      }
      return chip;
    };

    return {
      root,
      appendDelta(delta) {
        text += delta;
        scheduleRender();
      },
      setText(full) {
        text = typeof full === 'string' ? full : '';
        if (frame) window.cancelAnimationFrame(frame);
        renderNow();
      },
      toolStart(ev) {
        chipFor(ev).setInfo(ev);
      },
      /** A tool call waits for the person: the card with Approve / Deny. */
      confirm(ev) {
        confirmCards += 1;
        extras.appendChild(createConfirmCard(ev || {}).el);
        scrollToBottom();
      },
      stepUp(ev) {
        chipFor(ev).setStepUp(ev.from, ev.to);
      },
      toolDone(result) {
        chipFor(result).finish(result);
      },
      applyToolResults(list) {
        if (!Array.isArray(list)) return;
        for (const r of list) if (r && typeof r === 'object') chipFor(r).finish(r);
      },
      consent(ev) {
        const connection = typeof ev.connection === 'string' ? ev.connection : '';
        let card = consentCards.get(connection);
        if (!card) {
          card = createConsentCard(connection, userText);
          consentCards.set(connection, card);
          extras.appendChild(card.el);
        }
        card.setUri(ev.interactionUri);
        if (typeof ev.resource === 'string') card.setResource(ev.resource);
        if (ev.waiting === true) card.waitHere();
        scrollToBottom();
      },
      finish(toolResults) {
        if (finished) return;
        finished = true;
        if (frame) {
          window.cancelAnimationFrame(frame);
          renderNow();
        }
        typing.remove();
        for (const chip of chips.values()) chip.abandon();
        const results = (Array.isArray(toolResults) ? toolResults : []).filter((r) => r && typeof r === 'object');
        // Re-running the request after consent is only automatic when nothing in this turn
        // succeeded, so a retry can never repeat a change that already happened.
        const nothingDone = !results.some((r) => r.isError !== true);
        for (const [connection, card] of consentCards) {
          const ok = results.some((r) => r.connection === connection && r.isError !== true);
          card.settle(ok, nothingDone);
        }
      },
      isEmpty() {
        return !text.trim() && chips.size === 0 && consentCards.size === 0 && confirmCards === 0;
      },
    };
  }

  /**
   * The card for a tool call that waits for the person's decision: the tool, its connection,
   * exactly the arguments it would run with, and Approve / Deny. The decision is posted once;
   * the rest of the turn streams into a new message below.
   */
  function createConfirmCard(ev) {
    const card = el('div', 'consent-card confirm-card');
    card.dataset.state = 'pending';
    card.dataset.tool = String(ev.tool || '');
    const head = el('div', 'consent-head');
    head.append(
      icon(ev.destructive ? ICONS.alert : ICONS.lock, 'consent-icon'),
      el('span', 'consent-title', ev.destructive ? 'Confirm a change that cannot be undone' : 'Confirm this action'),
    );
    const textP = el('p', 'consent-text');
    textP.append('agent0 wants to run ');
    textP.appendChild(el('strong', 'confirm-tool', String(ev.tool || '')));
    textP.append(' on ');
    textP.appendChild(el('strong', '', connectionLabel(String(ev.connection || ''))));
    textP.append(' with these arguments:');
    const args = el('pre', 'confirm-arguments', prettyJson(ev.arguments === undefined ? {} : ev.arguments));
    const actions = el('div', 'consent-actions');
    const approve = el('button', 'button primary confirm-approve', 'Approve');
    approve.type = 'button';
    const deny = el('button', 'button secondary confirm-deny', 'Deny');
    deny.type = 'button';
    actions.append(approve, deny);
    const note = el('p', 'consent-note muted', 'Nothing runs until you decide.');
    card.append(head, textP, args);
    if (typeof ev.scope === 'string' && ev.scope) {
      card.appendChild(el('p', 'consent-note muted confirm-scope', `It needs the permission: ${ev.scope}`));
    }
    card.append(actions, note);
    const decide = (decision) => {
      if (card.dataset.state !== 'pending' || state.streaming) return;
      card.dataset.state = decision === 'approve' ? 'approved' : 'denied';
      approve.disabled = true;
      deny.disabled = true;
      note.textContent = decision === 'approve' ? 'Approved.' : 'Denied — it did not run.';
      continueTurn({ id: String(ev.id || ''), conversationId: String(ev.conversationId || ''), decision }, note);
    };
    approve.addEventListener('click', () => decide('approve'));
    deny.addEventListener('click', () => decide('deny'));
    return { el: card };
  }

  function createConsentCard(connection, userText) {
    const card = el('div', 'consent-card');
    card.dataset.connection = connection;
    card.dataset.state = 'pending';
    const head = el('div', 'consent-head');
    head.append(icon(ICONS.lock, 'consent-icon'), el('span', 'consent-title', 'Authorization needed'));
    const textP = el('p', 'consent-text');
    textP.append('agent0 needs your permission to use ');
    textP.appendChild(el('strong', '', connectionLabel(connection)));
    textP.append(' on your behalf.');
    const actions = el('div', 'consent-actions');
    const note = el('p', 'consent-note muted', 'Opens the consent page in a new tab.');
    const retry = el('button', 'button secondary consent-retry', 'Continue the request');
    retry.type = 'button';
    retry.hidden = true;
    retry.disabled = state.streaming;
    card.append(head, textP, actions, note);
    let link = null;
    let settled = false;
    let autoContinue = false;
    let waiting = false;
    let resource = null;

    const self = {
      el: card,
      /**
       * Re-sends the request that needed consent (manually or on return to the tab). For a card
       * that names its connection's resource (a brokered MCP server agent0 could not list without
       * consent), the brokered exchange runs first, so agent0 learns that consent was given.
       */
      resume(auto) {
        if (state.streaming || !userText || card.dataset.state === 'done') return false;
        if (state.pendingConsent && state.pendingConsent.card === self) state.pendingConsent = null;
        card.dataset.state = 'resumed';
        retry.hidden = true;
        if (link) link.hidden = true;
        note.textContent = auto ? 'Welcome back — your request continues below.' : 'Your request continues below.';
        if (!waiting && resource) {
          // Whatever it answers, the request goes on (a card shows again if consent is missing).
          api('/api/oauth-sts/exchange', { method: 'POST', body: { resource } })
            .catch(() => {})
            .then(() => sendMessage(userText));
        } else {
          sendMessage(userText);
        }
        return true;
      },
      setResource(value) {
        resource = value || null;
      },
      isAutoReady() {
        return settled && autoContinue && card.dataset.state === 'opened';
      },
      setUri(uri) {
        const href = safeHttpUrl(uri);
        actions.replaceChildren();
        if (href) {
          link = el('a', 'button primary consent-authorize');
          link.href = href;
          link.target = '_blank';
          link.rel = 'noopener noreferrer';
          link.append('Authorize ', icon(ICONS.external, 'button-icon'));
          link.title = `Authorize ${connectionLabel(connection)} (opens in a new tab)`;
          link.addEventListener('click', () => {
            card.dataset.state = 'opened';
            state.pendingConsent = { card: self, at: Date.now() };
            note.textContent = waiting
              ? 'Approve access in the new tab; agent0 then continues your request by itself.'
              : autoContinue || !settled
              ? 'Approve access in the new tab. When you come back here, agent0 continues your request.'
              : 'Approve access in the new tab, then continue the request here.';
          });
          actions.append(link, retry);
        } else {
          note.textContent = 'The authorization link is not a valid web address, so it is not shown.';
          actions.append(retry);
        }
      },
      /** The turn waits for this consent and continues by itself: never re-send the message. */
      waitHere() {
        waiting = true;
        note.textContent = 'Approve access in the new tab; agent0 then continues your request by itself.';
      },
      settle(succeeded, canAutoContinue) {
        settled = true;
        if (waiting && !succeeded) {
          card.dataset.state = 'done';
          retry.hidden = true;
          if (link) link.hidden = true;
          note.textContent = 'Access was not given, so the request was not carried out.';
          return;
        }
        autoContinue = Boolean(canAutoContinue);
        if (succeeded) {
          card.dataset.state = 'done';
          note.textContent = 'Authorized — the request went through.';
          retry.hidden = true;
          if (link) link.hidden = true;
          return;
        }
        retry.hidden = !userText;
        if (card.dataset.state === 'opened') {
          note.textContent = autoContinue
            ? 'Approve access in the new tab. When you come back here, agent0 continues your request.'
            : 'Approve access in the new tab, then continue the request here.';
        } else {
          note.textContent = autoContinue
            ? 'Opens the consent page in a new tab; agent0 continues your request when you come back.'
            : 'Opens the consent page in a new tab. After approving, continue the request here.';
        }
      },
    };
    retry.addEventListener('click', () => self.resume(false));
    return self;
  }

  /** After the person went to consent in another tab and came back, resume once. */
  function maybeResumeAfterConsent() {
    const pending = state.pendingConsent;
    if (!pending || state.streaming || !state.authenticated) return;
    if (document.visibilityState === 'hidden') return;
    if (Date.now() - pending.at < 1500) return; // the click itself, not a return
    if (!pending.card.el.isConnected) {
      state.pendingConsent = null;
      return;
    }
    if (!pending.card.isAutoReady()) return;
    state.pendingConsent = null;
    pending.card.resume(true);
  }

  // ---- sending --------------------------------------------------------------

  function setStreaming(on) {
    state.streaming = on;
    ui.sendButton.disabled = on;
    ui.newConversation.disabled = on;
    ui.messages.setAttribute('aria-busy', on ? 'true' : 'false');
    ui.chatForm.classList.toggle('is-busy', on);
    for (const b of document.querySelectorAll('.suggestion, .consent-retry')) b.disabled = on;
  }

  function supportsStreaming() {
    return (
      typeof ReadableStream !== 'undefined' &&
      typeof TextDecoder !== 'undefined' &&
      typeof Response !== 'undefined' &&
      'body' in Response.prototype
    );
  }

  function parseEventData(data) {
    if (!data) return {};
    try {
      const v = JSON.parse(data);
      return v && typeof v === 'object' ? v : { value: v };
    } catch (_) {
      return { value: data };
    }
  }

  /** Handles one SSE event; returns true for the final `done` event. */
  function handleStreamEvent(name, data, view) {
    const p = parseEventData(data);
    switch (name) {
      case 'conversation':
        if (typeof p.conversationId === 'string') state.conversationId = p.conversationId;
        return false;
      case 'text':
        if (typeof p.delta === 'string') view.appendDelta(p.delta);
        return false;
      case 'tool_start':
        view.toolStart(p);
        return false;
      case 'step_up':
        view.stepUp(p);
        return false;
      case 'tool_done':
        view.toolDone(p);
        return false;
      case 'consent_required':
        view.consent(p);
        return false;
      case 'confirm_required':
        view.confirm(p);
        return false;
      case 'error':
        appendErrorMessage(typeof p.message === 'string' && p.message ? p.message : 'Something went wrong.');
        return false;
      case 'done':
        if (typeof p.message === 'string') view.setText(p.message);
        view.applyToolResults(p.toolResults);
        view.finish(p.toolResults);
        return true;
      default:
        return false; // unknown events are ignored
    }
  }

  /** One turn (or its continuation) as a single JSON answer. */
  async function turnOnce(path, body, view) {
    const data = await api(path, { method: 'POST', body });
    view.setText(typeof data.message === 'string' ? data.message : '');
    view.applyToolResults(data.toolResults);
    if (data.confirmation && typeof data.confirmation === 'object') {
      view.confirm(data.confirmation);
      return 'paused';
    }
    view.finish(data.toolResults);
    return 'done';
  }

  function streamChat(text, view) {
    const body = state.conversationId ? { message: text, conversationId: state.conversationId } : { message: text };
    return streamTurn('/api/chat/stream', '/api/chat', body, view);
  }

  /**
   * Streams a turn from `path` (falling back to the JSON `fallback`). Returns 'done', 'paused'
   * (a tool call waits for the person's decision) or 'failed'.
   */
  async function streamTurn(path, fallback, body, view) {
    if (!supportsStreaming()) return turnOnce(fallback, body, view);
    const res = await request(path, {
      method: 'POST',
      body,
      accept: 'text/event-stream',
    });
    if (res.status === 404 && path !== '/api/chat/stream') throw await errorFromResponse(res);
    if (res.status === 404 || res.status === 405 || res.status === 406) return turnOnce(fallback, body, view);
    if (!res.ok) throw await errorFromResponse(res);

    const type = (res.headers.get('content-type') || '').toLowerCase();
    if (type.includes('application/json')) {
      const data = await res.json();
      view.setText(typeof data.message === 'string' ? data.message : '');
      view.applyToolResults(data.toolResults);
      view.finish(data.toolResults);
      return 'done';
    }

    let gotDone = false;
    let gotError = false;
    let gotConfirm = false;
    const parser = createSseParser((name, data) => {
      if (gotDone) return;
      if (name === 'error') gotError = true;
      if (name === 'confirm_required') gotConfirm = true;
      if (handleStreamEvent(name, data, view)) gotDone = true;
    });

    if (!res.body || typeof res.body.getReader !== 'function') {
      parser.push(await res.text());
      parser.end();
    } else {
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      try {
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          parser.push(decoder.decode(value, { stream: true }));
          if (gotDone) {
            reader.cancel().catch(() => {});
            break;
          }
        }
        parser.push(decoder.decode());
        parser.end();
      } catch (_) {
        if (!gotDone && !gotError && !gotConfirm) {
          throw new ApiError(0, 'interrupted', 'The connection to agent0 was lost before the reply finished. Your conversation is kept; try again.', false);
        }
      }
    }
    if (!gotDone && !gotError && !gotConfirm) {
      throw new ApiError(0, 'interrupted', 'The reply ended before it finished. Your conversation is kept; try again.', false);
    }
    if (gotDone) return 'done';
    // A turn that failed outright (an `error` and no `done`) may have ended the login.
    return gotConfirm && !gotError ? 'paused' : 'failed';
  }

  /** Sends the person's decision on a paused tool call; the turn continues in a new message. */
  async function continueTurn(body, note) {
    if (state.streaming || !state.authenticated) return;
    setStreaming(true);
    const view = createAssistantMessage('');
    scrollToBottom(true);
    let outcome = 'done';
    try {
      outcome = await streamTurn('/api/chat/confirm/stream', '/api/chat/confirm', body, view);
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(0, 'client', 'Something went wrong in this page. Try again.', false);
      if (err.status === 401) {
        view.finish();
        view.root.remove();
        handleUnauthenticated();
      } else {
        note.textContent = err.message;
        appendErrorMessage(err.message);
      }
    } finally {
      view.finish();
      if (view.isEmpty()) view.root.remove();
      updateEmptyState();
      setStreaming(false);
      scrollToBottom();
      if (outcome === 'failed') await checkSession();
      if (state.authenticated) {
        refreshConnections({ quiet: true });
        const active = document.activeElement;
        if (!active || active === document.body) ui.input.focus();
      }
    }
  }

  async function sendMessage(raw) {
    const text = String(raw || '').trim();
    if (!text || state.streaming || !state.authenticated) return;
    if (text.length > MAX_MESSAGE_CHARS) {
      appendErrorMessage(`Messages can be at most ${MAX_MESSAGE_CHARS} characters.`);
      return;
    }
    setStreaming(true);
    state.stickToBottom = true;
    appendUserMessage(text);
    if (ui.input.value.trim() === text) {
      ui.input.value = '';
      onInputChanged();
    }
    const view = createAssistantMessage(text);
    scrollToBottom(true);

    let restoreInput = false;
    let outcome = 'done';
    try {
      outcome = await streamChat(text, view);
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(0, 'client', 'Something went wrong in this page. Try again.', false);
      if (err.status === 401) {
        view.finish();
        view.root.remove();
        restoreInput = true;
        // Sent again, once, after this person logs in again (this tab only).
        keepUnsent(text, state.conversationId);
        handleUnauthenticated();
      } else {
        appendErrorMessage(err.message);
        restoreInput = err.beforeResponse || err.status >= 400;
      }
    } finally {
      view.finish();
      if (view.isEmpty()) view.root.remove();
      updateEmptyState();
      setStreaming(false);
      if (restoreInput && !ui.input.value) {
        // Nothing is lost: give the unsent message back.
        ui.input.value = text;
        onInputChanged();
      }
      scrollToBottom();
      if (outcome === 'failed') await checkSession();
      if (state.authenticated) {
        refreshConnections({ quiet: true });
        const active = document.activeElement;
        if (!active || active === document.body || active === ui.sendButton) ui.input.focus();
      }
    }
  }

  /** Quietly re-reads /auth/status; shows the login prompt if the session is gone. */
  async function checkSession() {
    try {
      const s = await api('/auth/status');
      if (s && s.authenticated) {
        if (typeof s.csrf === 'string') state.csrf = s.csrf;
      } else if (state.authenticated) {
        handleUnauthenticated('Your login has expired. Log in again — your conversation is kept.');
      }
    } catch (_) {
      /* the error is already in the chat */
    }
  }

  async function loadConversation(id) {
    clearMessages();
    let convo;
    try {
      convo = await api(id ? `/api/conversations/${encodeURIComponent(id)}` : '/api/conversations/current');
    } catch (e) {
      if (e.status === 401) handleUnauthenticated();
      else if (e.status !== 404) appendErrorMessage(`Could not load your conversation: ${e.message}`);
      return;
    }
    state.conversationId = convo && typeof convo.conversationId === 'string' ? convo.conversationId : null;
    const messages = convo && Array.isArray(convo.messages) ? convo.messages : [];
    for (const m of messages) {
      if (!m || typeof m !== 'object') continue;
      const text = typeof m.text === 'string' ? m.text : '';
      if (m.role === 'user') {
        appendUserMessage(text);
      } else if (m.role === 'assistant') {
        const view = createAssistantMessage('');
        view.setText(text);
        view.applyToolResults(m.toolResults);
        view.finish(m.toolResults);
        if (view.isEmpty()) view.root.remove();
      } else if (m.role === 'error') {
        appendErrorMessage(text);
      }
    }
    updateEmptyState();
    scrollToBottom(true);
  }

  async function newConversation() {
    if (state.streaming) return;
    ui.newConversation.disabled = true;
    try {
      const created = await api('/api/conversations', { method: 'POST', body: {} });
      state.conversationId = created && typeof created.conversationId === 'string' ? created.conversationId : null;
      clearMessages();
      ui.input.focus();
    } catch (e) {
      if (e.status === 401) handleUnauthenticated();
      else appendErrorMessage(`Could not start a new conversation: ${e.message}`);
    } finally {
      ui.newConversation.disabled = state.streaming;
    }
  }

  // A real form post: the server ends the session and redirects (303) straight on to the
  // IdP's end-session endpoint, so the ID token never reaches this page.
  function logout() {
    ui.logoutButton.disabled = true;
    const form = document.createElement('form');
    form.method = 'post';
    form.action = '/auth/logout';
    form.hidden = true;
    const field = document.createElement('input');
    field.type = 'hidden';
    field.name = 'csrf';
    field.value = state.csrf || '';
    form.appendChild(field);
    document.body.appendChild(form);
    form.submit();
  }

  // ---- composer -------------------------------------------------------------

  const fieldSizing = typeof CSS !== 'undefined' && CSS.supports && CSS.supports('field-sizing', 'content');

  function onInputChanged() {
    const len = ui.input.value.length;
    ui.charCounter.textContent = `${len} / ${MAX_MESSAGE_CHARS}`;
    ui.charCounter.classList.toggle('near-limit', len >= MAX_MESSAGE_CHARS * 0.9);
    ui.charCounter.classList.toggle('at-limit', len >= MAX_MESSAGE_CHARS);
    if (!fieldSizing) {
      // CSSOM is allowed by the CSP (only style *attributes* in markup are not).
      ui.input.style.height = 'auto';
      ui.input.style.height = Math.min(ui.input.scrollHeight + 2, 240) + 'px';
    }
  }

  // ---- dialogs --------------------------------------------------------------

  function openDialog(dialog, opener) {
    dialogOpeners.set(dialog, opener || document.activeElement);
    if (dialog.open) return;
    if (typeof dialog.showModal === 'function') dialog.showModal();
    else dialog.setAttribute('open', '');
  }

  function wireDialog(dialog) {
    let downOnBackdrop = false;
    dialog.addEventListener('pointerdown', (e) => {
      downOnBackdrop = e.target === dialog;
    });
    dialog.addEventListener('click', (e) => {
      if (e.target === dialog && downOnBackdrop) dialog.close();
      downOnBackdrop = false;
    });
    for (const b of dialog.querySelectorAll('[data-close]')) b.addEventListener('click', () => dialog.close());
    dialog.addEventListener('close', () => {
      const opener = dialogOpeners.get(dialog);
      if (opener && opener.isConnected && typeof opener.focus === 'function' && !opener.hidden) opener.focus();
    });
  }

  function panelMessage(text, cls) {
    return el('p', 'panel-message ' + (cls || 'muted'), text);
  }

  // ---- claims ---------------------------------------------------------------

  function formatClaimTime(seconds) {
    const d = new Date(seconds * 1000);
    if (Number.isNaN(d.getTime())) return '';
    let when;
    try {
      when = d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'long' });
    } catch (_) {
      when = d.toLocaleString();
    }
    const diffSec = Math.round((d.getTime() - Date.now()) / 1000);
    let rel = '';
    if (typeof Intl !== 'undefined' && Intl.RelativeTimeFormat) {
      const rtf = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });
      const abs = Math.abs(diffSec);
      if (abs < 60) rel = rtf.format(diffSec, 'second');
      else if (abs < 3600) rel = rtf.format(Math.round(diffSec / 60), 'minute');
      else if (abs < 86400) rel = rtf.format(Math.round(diffSec / 3600), 'hour');
      else rel = rtf.format(Math.round(diffSec / 86400), 'day');
    }
    return rel ? `${when} (${rel})` : when;
  }

  function renderClaims(claims) {
    if (!claims || typeof claims !== 'object' || !Object.keys(claims).length) {
      ui.claimsContent.replaceChildren(panelMessage('No claims were received.'));
      return;
    }
    const table = el('table', 'claims-table');
    const caption = el('caption', 'visually-hidden', 'ID token claims');
    const thead = el('thead');
    const htr = el('tr');
    for (const h of ['Claim', 'Value']) {
      const th = el('th', '', h);
      th.scope = 'col';
      htr.appendChild(th);
    }
    thead.appendChild(htr);
    const tbody = el('tbody');
    for (const [key, value] of Object.entries(claims)) {
      const tr = el('tr');
      tr.dataset.claim = key;
      const th = el('th', 'claim-name');
      th.appendChild(breakable(key));
      th.scope = 'row';
      const td = el('td', 'claim-value');
      if (value !== null && typeof value === 'object') {
        td.appendChild(el('pre', 'claim-json', prettyJson(value)));
      } else {
        const raw = el('span', 'claim-raw');
        raw.appendChild(breakable(String(value)));
        td.appendChild(raw);
        if (TIME_CLAIMS.has(key) && typeof value === 'number') {
          const date = el('span', 'claim-date', formatClaimTime(value));
          if (key === 'exp' && value * 1000 < Date.now()) date.classList.add('expired');
          td.appendChild(date);
        }
      }
      tr.append(th, td);
      tbody.appendChild(tr);
    }
    table.append(caption, thead, tbody);
    const raw = el('details', 'claims-raw');
    raw.append(el('summary', '', 'Raw JSON'), el('pre', 'claims-json', prettyJson(claims)));
    ui.claimsContent.replaceChildren(table, raw);
  }

  async function openClaims() {
    openDialog(ui.claimsPanel, ui.claimsButton);
    ui.claimsContent.replaceChildren(panelMessage('Loading claims…'));
    try {
      const r = await api('/api/me/claims');
      renderClaims(r && r.claims);
      if (r && r.claims && typeof r.claims === 'object' && Object.keys(r.claims).length) addClaimCopyButtons(r.claims);
    } catch (e) {
      if (e.status === 401) {
        ui.claimsPanel.close();
        handleUnauthenticated();
        return;
      }
      ui.claimsContent.replaceChildren(panelMessage(e.message, 'error-text'));
    }
  }

  // ---- connections ----------------------------------------------------------

  const KIND_LABELS = {
    authorization_server: 'Authorization server',
    application: 'Application',
    mcp_server: 'MCP server',
  };
  const STATE_INFO = {
    live: ['LIVE', 'Connected and working for you'],
    unreachable: ['UNREACHABLE', 'Its last use failed; agent0 tries again on your next request'],
    idle: ['IDLE', 'Configured; not used yet'],
    disabled: ['DISABLED', 'Turned off by configuration'],
    off: ['OFF', 'Not configured or not reachable'],
  };

  function renderConnections(list) {
    if (!list.length) {
      ui.connectionsContent.replaceChildren(panelMessage('No connections are configured.'));
      return;
    }
    const wrap = el('div', 'connections-list');
    for (const c of list) {
      if (!c || typeof c !== 'object') continue;
      const stateName = typeof c.state === 'string' ? c.state.toLowerCase() : 'off';
      const info = STATE_INFO[stateName] || [stateName.toUpperCase() || 'UNKNOWN', ''];
      const card = el('article', 'connection-card');
      card.dataset.state = stateName;
      card.dataset.name = String(c.name || '');
      if (c.kind) card.dataset.kind = String(c.kind);

      const head = el('div', 'connection-head');
      const titles = el('div', 'connection-titles');
      const label = el('h3', 'connection-label', c.label || c.name || 'Connection');
      const kind = el('p', 'connection-kind', [KIND_LABELS[c.kind] || c.kind, c.name].filter(Boolean).join(' · '));
      titles.append(label, kind);
      const badge = el('span', 'status-badge', info[0]);
      badge.dataset.state = stateName;
      if (info[1]) badge.title = info[1];
      head.append(titles, badge);
      card.appendChild(head);
      if (info[1]) card.appendChild(el('p', 'connection-state-text', info[1]));
      const seen = connectionTimes(c);
      if (seen) card.appendChild(seen);

      const ids = c.identifiers && typeof c.identifiers === 'object' ? Object.entries(c.identifiers) : [];
      if (ids.length) {
        const dl = el('dl', 'connection-identifiers');
        for (const [k, v] of ids) {
          const row = el('div', 'identifier');
          const value = v !== null && typeof v === 'object' ? JSON.stringify(v) : String(v);
          const dd = el('dd', 'identifier-value');
          makeCopyable(dd, value, k);
          row.append(el('dt', '', k), dd);
          dl.appendChild(row);
        }
        card.appendChild(dl);
      }
      wrap.appendChild(card);
    }
    const live = list.filter((c) => c && c.state === 'live').length;
    const summary = el('p', 'connections-summary muted', `${live} of ${list.length} live`);
    ui.connectionsContent.replaceChildren(summary, wrap);
  }

  async function refreshConnections(opts) {
    const quiet = opts && opts.quiet;
    const seq = ++state.connectionsSeq;
    if (!quiet && !ui.connectionsContent.querySelector('.connection-card')) {
      ui.connectionsContent.replaceChildren(panelMessage('Loading connections…'));
    }
    ui.connectionsPanel.setAttribute('aria-busy', 'true');
    try {
      const r = await api('/api/connections/status');
      if (seq !== state.connectionsSeq) return;
      const list = r && Array.isArray(r.connections) ? r.connections : [];
      for (const c of list) if (c && c.name) state.connectionLabels.set(String(c.name), String(c.label || c.name));
      renderConnections(list);
    } catch (e) {
      if (seq !== state.connectionsSeq) return;
      if (e.status === 401) {
        ui.connectionsContent.replaceChildren(panelMessage('Log in to see your connections.'));
        if (state.authenticated) {
          if (ui.connectionsPanel.open) ui.connectionsPanel.close();
          handleUnauthenticated();
        }
      } else if (!quiet || !ui.connectionsContent.querySelector('.connection-card')) {
        ui.connectionsContent.replaceChildren(panelMessage(e.message, 'error-text'));
      }
    } finally {
      if (seq === state.connectionsSeq) ui.connectionsPanel.removeAttribute('aria-busy');
    }
  }

  function openConnections() {
    if (isDockedWide()) showDockedConnections();
    else openDialog(ui.connectionsPanel, ui.connectionsButton);
    refreshConnections({ quiet: false });
  }

  // ---- what a new user meets: readable text, copyable identifiers, a docked panel ----------

  /** `text` with break opportunities after `/ . _ - : ? & =`, so claim names and URLs wrap
   * at sensible points on a narrow screen instead of mid-word. */
  function breakable(text) {
    const frag = document.createDocumentFragment();
    const parts = String(text).split(/(?<=[/._:?&=-])/);
    parts.forEach((part, i) => {
      if (i > 0) frag.appendChild(document.createElement('wbr'));
      frag.appendChild(document.createTextNode(part));
    });
    return frag;
  }

  /** Fills `node` with `value`, copied to the clipboard on click with a visible confirmation. */
  function makeCopyable(node, value, name) {
    const button = el('button', 'copy-value');
    button.type = 'button';
    button.title = `Copy ${name || 'value'}`;
    button.setAttribute('aria-label', `Copy ${name || 'value'}: ${value}`);
    button.appendChild(breakable(value));
    const note = el('span', 'copy-note', 'copied');
    note.setAttribute('role', 'status');
    note.hidden = true;
    button.addEventListener('click', () => {
      const done = (text) => {
        note.textContent = text;
        note.hidden = false;
        node.dataset.copied = 'true';
        window.setTimeout(() => {
          note.hidden = true;
          delete node.dataset.copied;
        }, 1800);
      };
      if (!navigator.clipboard || typeof navigator.clipboard.writeText !== 'function') {
        done('select and copy');
        return;
      }
      navigator.clipboard.writeText(value).then(() => done('copied'), () => done('copy failed'));
    });
    node.replaceChildren(button, note);
  }

  function formatSeen(iso) {
    if (typeof iso !== 'string' || !iso) return '';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    try {
      return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
    } catch (_) {
      return d.toLocaleString();
    }
  }

  /** Last failure / last success of a connection, once it has been used. */
  function connectionTimes(c) {
    const rows = [
      ['Last failure', formatSeen(c.lastFailureAt), 'connection-last-failure'],
      ['Last success', formatSeen(c.lastSuccessAt), 'connection-last-success'],
    ].filter((r) => r[1]);
    if (c.state === 'unreachable' && !formatSeen(c.lastSuccessAt)) {
      rows.push(['Last success', 'never', 'connection-last-success']);
    }
    if (!rows.length) return null;
    const p = el('p', 'connection-times');
    for (const [label, when, cls] of rows) p.appendChild(el('span', cls, `${label}: ${when}`));
    return p;
  }

  /** A failed tool call's technical detail, folded away under the result. */
  function showChipDetail(body, detail) {
    const old = body.querySelector('.tool-detail');
    if (old) old.remove();
    if (typeof detail !== 'string' || !detail) return;
    const box = el('details', 'tool-detail');
    box.append(el('summary', 'tool-section-title', 'Technical detail'), el('pre', 'tool-json', detail));
    body.appendChild(box);
  }

  const DOCK_KEY = 'agent0.connectionsDocked';
  const wideQuery = window.matchMedia ? window.matchMedia('(min-width: 1100px)') : null;

  function isDocked() {
    try {
      return localStorage.getItem(DOCK_KEY) === 'true';
    } catch (_) {
      return false;
    }
  }

  function isDockedWide() {
    return isDocked() && Boolean(wideQuery && wideQuery.matches);
  }

  /** The panel beside the chat: open, but not modal. */
  function showDockedConnections() {
    const panel = ui.connectionsPanel;
    if (panel.open && panel.matches(':modal')) panel.close();
    if (!panel.open) panel.show();
  }

  function renderDock() {
    const docked = isDocked();
    document.body.dataset.connectionsDocked = docked ? 'true' : 'false';
    if (ui.connectionsDock) {
      ui.connectionsDock.setAttribute('aria-pressed', docked ? 'true' : 'false');
      ui.connectionsDock.title = docked ? 'Undock (show as a dialog)' : 'Keep docked beside the chat';
    }
  }

  function toggleDock() {
    const docked = !isDocked();
    try {
      localStorage.setItem(DOCK_KEY, docked ? 'true' : 'false');
    } catch (_) {
      /* not remembered, still applied */
    }
    renderDock();
    const panel = ui.connectionsPanel;
    if (docked && isDockedWide()) showDockedConnections();
    else if (!docked && panel.open && !panel.matches(':modal')) {
      panel.close();
      openDialog(panel, ui.connectionsButton);
    }
  }

  /** A docked panel follows the screen: beside the chat when wide, put away when narrow. */
  function onWideChange() {
    const panel = ui.connectionsPanel;
    if (isDockedWide()) {
      if (state.authenticated && !panel.open) showDockedConnections();
    } else if (panel.open && !panel.matches(':modal')) {
      panel.close();
    }
  }

  /** What the page shows of a person, gone (their name, their conversation, their draft). */
  function forgetPersonOnScreen() {
    clearMessages();
    state.user = null;
    state.authenticated = false;
    state.conversationId = null;
    ui.userName.textContent = '';
    ui.userAvatar.textContent = '';
    ui.userChip.title = '';
    ui.emptyTitle.textContent = 'What can I do for you?';
    ui.input.value = '';
    ui.connectionsContent.replaceChildren();
    ui.claimsContent.replaceChildren();
  }

  /**
   * A page shown again (Back, a restored tab, a tab brought forward) asks for its session
   * again; when the session is gone or is someone else's, nothing of it stays on screen.
   * `hideFirst` hides the chat while asking (a page restored from the browser's cache).
   */
  async function recheckSession(hideFirst) {
    if (!state.authenticated || state.streaming) return;
    const shownSub = state.user && state.user.sub;
    if (hideFirst) setView('loading');
    let s = null;
    try {
      s = await (await fetch('/auth/status', { credentials: 'same-origin', cache: 'no-store' })).json();
    } catch (_) {
      s = null;
    }
    const same = s && s.authenticated && s.user && s.user.sub === shownSub;
    if (same) {
      if (typeof s.csrf === 'string') state.csrf = s.csrf;
      if (hideFirst) setView('chat');
      return;
    }
    if (!s && !hideFirst) return; // not known (offline): the next request tells
    forgetPersonOnScreen();
    if (s && s.authenticated) {
      loadStatus();
    } else {
      state.csrf = s && typeof s.csrf === 'string' ? s.csrf : null;
      showLogin();
    }
  }

  // ---- past conversations, export ---------------------------------------------

  function formatWhen(seconds) {
    const d = new Date(seconds * 1000);
    if (Number.isNaN(d.getTime())) return '';
    try {
      return d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
    } catch (_) {
      return d.toLocaleString();
    }
  }

  function exportLink(id, format, label) {
    const a = el('a', 'button small history-export', label);
    a.href = `/api/conversations/${encodeURIComponent(id)}/export?format=${format}`;
    a.setAttribute('download', '');
    a.dataset.format = format;
    a.title = `Download this conversation as ${label}`;
    return a;
  }

  function renderHistory(list) {
    if (!list.length) {
      ui.historyContent.replaceChildren(panelMessage('No conversations yet.'));
      return;
    }
    const ul = el('ul', 'history-list');
    for (const c of list) {
      if (!c || typeof c.id !== 'string') continue;
      const li = el('li', 'history-item');
      li.dataset.id = c.id;
      const current = c.id === state.conversationId;
      if (current) li.dataset.current = 'true';
      const open = el('button', 'history-open');
      open.type = 'button';
      if (current) open.setAttribute('aria-current', 'true');
      const turns = Number(c.turns) || 0;
      open.append(
        el('span', 'history-title', c.title || 'New conversation'),
        el('span', 'history-meta muted', `${turns} ${turns === 1 ? 'turn' : 'turns'} · ${formatWhen(c.updatedAt)}${current ? ' · open now' : ''}`)
      );
      open.addEventListener('click', () => {
        ui.historyPanel.close();
        openConversation(c.id);
      });
      const actions = el('div', 'history-actions');
      if (turns > 0) actions.append(exportLink(c.id, 'md', 'Markdown'), exportLink(c.id, 'json', 'JSON'));
      li.append(open, actions);
      ul.appendChild(li);
    }
    ui.historyContent.replaceChildren(ul);
  }

  async function openHistory() {
    openDialog(ui.historyPanel, ui.historyButton);
    ui.historyContent.replaceChildren(panelMessage('Loading your conversations…'));
    try {
      const r = await api('/api/conversations');
      renderHistory(r && Array.isArray(r.conversations) ? r.conversations : []);
    } catch (e) {
      if (e.status === 401) {
        ui.historyPanel.close();
        handleUnauthenticated();
        return;
      }
      ui.historyContent.replaceChildren(panelMessage(e.message, 'error-text'));
    }
  }

  /** Shows past conversation `id`; the next message continues it. */
  async function openConversation(id) {
    if (state.streaming) return;
    await loadConversation(id);
    ui.input.focus();
  }

  // ---- copy -------------------------------------------------------------------

  /** Copies `text`; resolves to whether it worked (the async API, else a selected textarea). */
  async function copyText(text) {
    try {
      if (navigator.clipboard && navigator.clipboard.writeText) {
        await navigator.clipboard.writeText(text);
        return true;
      }
    } catch (_) {
      /* fall back below */
    }
    const area = el('textarea', 'visually-hidden');
    area.value = text;
    area.setAttribute('readonly', '');
    document.body.appendChild(area);
    area.select();
    let ok = false;
    try {
      ok = document.execCommand('copy');
    } catch (_) {
      ok = false;
    }
    area.remove();
    return ok;
  }

  /** A button that copies `value()` and says so ("Copied") for a moment. */
  function copyButton(label, value, cls) {
    const b = el('button', 'copy-button ' + (cls || ''), label);
    b.type = 'button';
    b.addEventListener('click', async () => {
      const ok = await copyText(value());
      b.textContent = ok ? 'Copied' : 'Copy failed';
      b.dataset.copied = ok ? 'true' : 'false';
      if (ui.copyStatus) ui.copyStatus.textContent = ok ? 'Copied to the clipboard.' : 'Could not copy.';
      window.setTimeout(() => {
        b.textContent = label;
        delete b.dataset.copied;
      }, 2000);
    });
    return b;
  }

  function addClaimCopyButtons(claims) {
    for (const tr of ui.claimsContent.querySelectorAll('tr[data-claim]')) {
      const key = tr.dataset.claim;
      const value = claims[key];
      const text = value !== null && typeof value === 'object' ? JSON.stringify(value) : String(value);
      const b = copyButton('Copy', () => text, 'claim-copy');
      b.setAttribute('aria-label', `Copy the value of ${key}`);
      const td = tr.querySelector('td');
      const raw = td && td.querySelector('.claim-raw');
      if (raw) raw.after(b);
      else if (td) td.appendChild(b);
    }
    const all = copyButton('Copy all as JSON', () => JSON.stringify(claims, null, 2), 'claims-copy-all');
    const bar = el('div', 'claims-toolbar');
    bar.appendChild(all);
    ui.claimsContent.prepend(bar);
  }

  // ---- tool chip summaries ------------------------------------------------------

  /** The first sentence of an error text, at most 120 characters. */
  function oneSentence(text) {
    const s = String(text || '').trim().split('\n')[0];
    const m = s.match(/^.*?[.!?](?=\s|$)/);
    const first = m ? m[0] : s;
    return first.length > 120 ? first.slice(0, 119) + '…' : first;
  }

  /** A one-line summary of a finished tool call ("3 todos", "#4 created", …). */
  function toolSummary(tool, result, isError) {
    if (isError) {
      const text = typeof result === 'string' ? result : Array.isArray(result) ? result.filter((x) => typeof x === 'string').join(' ') : '';
      return oneSentence(text) || 'failed';
    }
    if (!result || typeof result !== 'object') return '';
    if (Array.isArray(result.todos)) {
      const n = typeof result.count === 'number' ? result.count : result.todos.length;
      return n === 0 ? 'no todos' : `${n} ${n === 1 ? 'todo' : 'todos'}`;
    }
    const todo = result.todo && typeof result.todo === 'object' ? result.todo : null;
    if (!todo || todo.id === undefined) return '';
    const ref = `#${todo.id}`;
    switch (tool) {
      case 'create-todo':
        return `${ref} created`;
      case 'delete-todo':
        return `${ref} deleted`;
      case 'toggle-todo':
        return todo.completed ? `${ref} marked done` : `${ref} marked not done`;
      case 'update-todo':
        return `${ref} updated`;
      default:
        return ref;
    }
  }

  // ---- status line ---------------------------------------------------------------

  const STATUS_POLL_MS = 30000;

  /** Polls /health and the connections (gently) so an outage shows before anything is sent. */
  async function pollStatus() {
    if (state.statusPolling) return;
    state.statusPolling = true;
    const problems = [];
    try {
      let up = false;
      try {
        const res = await fetch('/health', { credentials: 'same-origin', cache: 'no-store' });
        up = res.ok;
      } catch (_) {
        up = false;
      }
      if (!up) {
        problems.push('agent0 is not answering. Your messages will not go through until it is back.');
      } else if (state.authenticated) {
        try {
          const res = await fetch('/api/connections/status', { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'application/json' } });
          const r = res.ok ? await res.json() : null;
          const list = r && Array.isArray(r.connections) ? r.connections : [];
          for (const c of list) {
            if (c && c.state === 'unreachable') problems.push(`${c.label || c.name || 'A connection'} is unreachable.`);
          }
        } catch (_) {
          /* /health answered: a failed status read is not an outage */
        }
      }
    } finally {
      state.statusPolling = false;
    }
    const text = problems.join(' ');
    ui.statusLine.hidden = !text;
    ui.statusLineText.textContent = text;
    ui.statusLine.dataset.state = text ? (problems[0].startsWith('agent0') ? 'down' : 'degraded') : 'ok';
  }

  function startStatusPolling() {
    window.setInterval(() => {
      if (document.visibilityState !== 'hidden') pollStatus();
    }, STATUS_POLL_MS);
    window.addEventListener('focus', pollStatus);
    window.addEventListener('online', pollStatus);
    window.addEventListener('offline', pollStatus);
  }

  // ---- a message typed just before the session ended --------------------------------

  const DRAFT_KEY = 'agent0.unsent';
  const DRAFT_MAX_AGE_MS = 60 * 60 * 1000;

  /** Keeps `text` for this tab only, tied to the person who typed it. */
  function keepUnsent(text, conversationId) {
    const sub = state.user && state.user.sub;
    if (!sub) return;
    try {
      window.sessionStorage.setItem(DRAFT_KEY, JSON.stringify({ sub, text, conversationId: conversationId || null, at: Date.now() }));
    } catch (_) {
      /* storage unavailable: the text is still put back in the message box */
    }
  }

  /** The kept message, once, if the person now logged in is the one who typed it. */
  function takeUnsent() {
    let kept = null;
    try {
      kept = JSON.parse(window.sessionStorage.getItem(DRAFT_KEY) || 'null');
      window.sessionStorage.removeItem(DRAFT_KEY);
    } catch (_) {
      return null;
    }
    if (!kept || typeof kept.text !== 'string' || !kept.text) return null;
    if (!state.user || kept.sub !== state.user.sub) return null;
    if (!(Date.now() - Number(kept.at) < DRAFT_MAX_AGE_MS)) return null;
    return kept;
  }

  async function resendUnsent() {
    const kept = takeUnsent();
    if (!kept) return;
    if (kept.conversationId && kept.conversationId !== state.conversationId) {
      await loadConversation(kept.conversationId);
    }
    const note = el('p', 'resent-note muted', 'Your message from before you logged in again was sent now.');
    ui.messages.appendChild(note);
    await sendMessage(kept.text);
  }

  // ---- theme ----------------------------------------------------------------

  const THEME_KEY = 'agent0.theme';

  function storedTheme() {
    try {
      const t = window.localStorage.getItem(THEME_KEY);
      return t === 'dark' || t === 'light' ? t : null;
    } catch (_) {
      return null;
    }
  }

  function systemTheme() {
    return window.matchMedia && window.matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
  }

  function applyTheme(theme) {
    document.documentElement.dataset.theme = theme;
    const next = theme === 'dark' ? 'light' : 'dark';
    ui.themeToggle.setAttribute('aria-label', `Switch to ${next} theme`);
    ui.themeToggle.title = `Switch to ${next} theme`;
  }

  function toggleTheme() {
    const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    try {
      window.localStorage.setItem(THEME_KEY, next);
    } catch (_) {
      /* private mode: the choice lasts for this page only */
    }
    applyTheme(next);
  }

  // ---- wiring ---------------------------------------------------------------

  function init() {
    Object.assign(ui, {
      loadingView: $('loading-view'),
      statusView: $('status-view'),
      statusMessage: $('status-message'),
      retryButton: $('retry-button'),
      loginView: $('login-view'),
      loginMessage: $('login-message'),
      loginButton: $('login-button'),
      chatView: $('chat-view'),
      chatScroll: $('chat-scroll'),
      emptyState: $('empty-state'),
      emptyTitle: $('empty-title'),
      messages: $('messages'),
      chatForm: $('chat-form'),
      input: $('chat-input'),
      sendButton: $('send-button'),
      charCounter: $('char-counter'),
      modelName: $('model-name'),
      userChip: $('user-chip'),
      userName: $('user-name'),
      userAvatar: $('user-avatar'),
      claimsButton: $('claims-button'),
      claimsPanel: $('claims-panel'),
      claimsContent: $('claims-content'),
      connectionsButton: $('connections-button'),
      connectionsPanel: $('connections-panel'),
      connectionsContent: $('connections-content'),
      connectionsRefresh: $('connections-refresh'),
      connectionsDock: $('connections-dock'),
      newConversation: $('new-conversation'),
      themeToggle: $('theme-toggle'),
      logoutButton: $('logout-button'),
      historyButton: $('history-button'),
      historyPanel: $('history-panel'),
      historyContent: $('history-content'),
      statusLine: $('status-line'),
      statusLineText: $('status-line-text'),
      copyStatus: $('copy-status'),
    });

    applyTheme(storedTheme() || systemTheme());
    if (window.matchMedia) {
      const mq = window.matchMedia('(prefers-color-scheme: dark)');
      const onChange = () => {
        if (!storedTheme()) applyTheme(systemTheme());
      };
      if (mq.addEventListener) mq.addEventListener('change', onChange);
    }

    ui.themeToggle.addEventListener('click', toggleTheme);
    ui.loginButton.addEventListener('click', () => window.location.assign('/auth/login'));
    ui.retryButton.addEventListener('click', loadStatus);
    ui.logoutButton.addEventListener('click', logout);
    ui.newConversation.addEventListener('click', newConversation);
    ui.claimsButton.addEventListener('click', openClaims);
    ui.connectionsButton.addEventListener('click', openConnections);
    ui.connectionsRefresh.addEventListener('click', () => refreshConnections({ quiet: false }));
    if (ui.connectionsDock) ui.connectionsDock.addEventListener('click', toggleDock);
    renderDock();
    if (wideQuery && wideQuery.addEventListener) wideQuery.addEventListener('change', onWideChange);
    window.addEventListener('pageshow', (e) => {
      if (e.persisted) recheckSession(true);
    });
    document.addEventListener('visibilitychange', () => {
      if (document.visibilityState === 'visible') recheckSession(false);
    });
    wireDialog(ui.claimsPanel);
    wireDialog(ui.historyPanel);
    ui.historyButton.addEventListener('click', openHistory);
    startStatusPolling();
    wireDialog(ui.connectionsPanel);

    ui.chatForm.addEventListener('submit', (e) => {
      e.preventDefault();
      sendMessage(ui.input.value);
    });
    ui.input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey && !e.isComposing) {
        e.preventDefault();
        sendMessage(ui.input.value);
      }
    });
    ui.input.addEventListener('input', onInputChanged);
    ui.chatScroll.addEventListener('scroll', () => {
      state.stickToBottom = isNearBottom();
    }, { passive: true });

    for (const b of document.querySelectorAll('.suggestion')) {
      b.addEventListener('click', () => {
        ui.input.value = b.dataset.prompt || b.textContent || '';
        onInputChanged();
        sendMessage(ui.input.value);
      });
    }

    ui.messages.addEventListener('click', (e) => {
      const target = e.target instanceof Element ? e.target.closest('.code-copy') : null;
      if (!target) return;
      const block = target.closest('.code-block');
      const code = block && block.querySelector('pre code');
      if (!code || !navigator.clipboard) return;
      navigator.clipboard.writeText(code.textContent || '').then(
        () => {
          target.textContent = 'Copied';
          window.setTimeout(() => {
            target.textContent = 'Copy';
          }, 1500);
        },
        () => {
          target.textContent = 'Copy failed';
        }
      );
    });

    window.addEventListener('focus', maybeResumeAfterConsent);
    document.addEventListener('visibilitychange', maybeResumeAfterConsent);

    onInputChanged();
    loadStatus();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
