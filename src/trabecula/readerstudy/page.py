"""The reader's page: one image at a time, the five questions with Table 1's wording, keyboard shortcuts,
progress; answers saved on each click. Static HTML/JS/CSS (no inline script or style: the CSP forbids them).
Nothing on the page depends on an image's method or source; the reader's name is HTML-escaped."""

from __future__ import annotations

import html

from trabecula.readerstudy.criteria import CRITERIA


def reader_page(reader_name: str, n_images: int, size: int) -> str:
    """The HTML of a reader's page (the image list and answers are fetched by ``app.js``)."""
    groups = []
    for i, c in enumerate(CRITERIA, 1):
        opts = "".join(
            f'<label><input type="radio" name="{c.key}" value="{k}"><kbd>{k}</kbd> {html.escape(text)}</label>'
            for k, text in enumerate(c.scores, 1))
        groups.append(f'<fieldset class="crit" data-crit="{c.key}" data-points="{c.points}">'
                      f"<legend>{i}. {html.escape(c.question)}</legend>{opts}</fieldset>")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="referrer" content="no-referrer">
<title>Reader study</title>
<link rel="stylesheet" href="/static/app.css">
</head><body>
<header><span>Reader: <b id="reader">{html.escape(reader_name)}</b></span>
<span id="progress">0 / {int(n_images)} scored</span><span id="status"></span></header>
<main>
<figure><img id="image" alt="image to score" width="{int(size)}" height="{int(size)}">
<figcaption id="position"></figcaption></figure>
<section id="questions">{''.join(groups)}
<label class="comment">Comment (optional)<textarea id="comment" maxlength="2000" rows="3"></textarea></label>
<nav><button id="prev" type="button">← previous</button><button id="next" type="button">next →</button></nav>
<p class="help">Keys: <kbd>1</kbd>–<kbd>5</kbd> score the highlighted question and move to the next;
<kbd>↑</kbd>/<kbd>↓</kbd> change question; <kbd>←</kbd>/<kbd>→</kbd> previous/next image.
Every click is saved at once; you can close the page and come back to your link.</p>
</section></main>
<script src="/static/app.js"></script>
</body></html>
"""


APP_CSS = """
body{font-family:system-ui,sans-serif;margin:0;background:#111;color:#ddd}
header{display:flex;gap:2em;padding:.5em 1em;background:#222}
main{display:flex;gap:1em;padding:1em;align-items:flex-start}
figure{margin:0}img{background:#000;image-rendering:auto;display:block}
fieldset{border:1px solid #444;margin:0 0 .5em 0}fieldset.active{border-color:#6af}
label{display:block;cursor:pointer}kbd{border:1px solid #666;border-radius:3px;padding:0 .3em}
textarea{width:100%}#status.error{color:#f66}
"""

APP_JS = r"""
"use strict";
(function () {
  const base = location.pathname.replace(/\/+$/, "");
  const crits = Array.from(document.querySelectorAll("fieldset.crit"));
  const keys = crits.map(f => f.dataset.crit);
  const S = window.readerStudy = {ready: false, pending: 0, saved: 0, errors: [], index: 0, order: [], answers: {}};
  let active = 0;
  const $ = id => document.getElementById(id);
  function complete(a) { return a && keys.every(k => a[k] != null); }
  function progress() {
    const n = S.order.filter(id => complete(S.answers[id])).length;
    $("progress").textContent = n + " / " + S.order.length + " scored";
    S.scored = n;
  }
  function setActive(i) {
    active = Math.max(0, Math.min(crits.length - 1, i));
    crits.forEach((f, j) => f.classList.toggle("active", j === active));
  }
  function show(i) {
    S.index = Math.max(0, Math.min(S.order.length - 1, i));
    const id = S.order[S.index];
    $("image").src = base + "/images/" + id;
    $("position").textContent = "Image " + (S.index + 1) + " of " + S.order.length;
    const a = S.answers[id] || {};
    crits.forEach(f => {
      f.querySelectorAll("input").forEach(inp => { inp.checked = (a[f.dataset.crit] == inp.value); });
    });
    $("comment").value = a.comment || "";
    setActive(0);
    progress();
  }
  async function save(body) {
    const id = S.order[S.index];
    S.pending += 1;
    $("status").textContent = "saving…"; $("status").className = "";
    for (let attempt = 0; ; attempt++) {
      try {
        const r = await fetch(base + "/answers/" + id, {method: "PUT", credentials: "same-origin",
          headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
        if (!r.ok) throw new Error("HTTP " + r.status);
        S.saved += 1; S.pending -= 1;
        $("status").textContent = S.pending ? "saving…" : "saved";
        return;
      } catch (e) {
        if (attempt >= 4) {
          S.pending -= 1; S.errors.push(String(e));
          $("status").textContent = "NOT saved (" + e + ") — check the connection"; $("status").className = "error";
          return;
        }
        await new Promise(res => setTimeout(res, 500 * (attempt + 1)));
      }
    }
  }
  function score(crit, value) {
    const id = S.order[S.index];
    const a = S.answers[id] = S.answers[id] || {};
    a[crit] = value;
    crits.forEach(f => { if (f.dataset.crit === crit) f.querySelectorAll("input").forEach(inp => { inp.checked = (inp.value == value); }); });
    progress();
    return save({criterion: crit, score: value});
  }
  crits.forEach((f, j) => f.addEventListener("change", ev => {
    setActive(j); score(f.dataset.crit, parseInt(ev.target.value, 10));
  }));
  $("comment").addEventListener("change", () => {
    const id = S.order[S.index];
    (S.answers[id] = S.answers[id] || {}).comment = $("comment").value;
    save({comment: $("comment").value});
  });
  $("prev").addEventListener("click", () => show(S.index - 1));
  $("next").addEventListener("click", () => show(S.index + 1));
  document.addEventListener("keydown", ev => {
    if (ev.target && ev.target.tagName === "TEXTAREA") return;
    const f = crits[active];
    if (/^[1-9]$/.test(ev.key) && parseInt(ev.key, 10) <= parseInt(f.dataset.points, 10)) {
      score(f.dataset.crit, parseInt(ev.key, 10));
      if (active < crits.length - 1) setActive(active + 1);
      ev.preventDefault();
    } else if (ev.key === "ArrowDown") { setActive(active + 1); ev.preventDefault(); }
    else if (ev.key === "ArrowUp") { setActive(active - 1); ev.preventDefault(); }
    else if (ev.key === "ArrowRight") { show(S.index + 1); ev.preventDefault(); }
    else if (ev.key === "ArrowLeft") { show(S.index - 1); ev.preventDefault(); }
  });
  fetch(base + "/state", {credentials: "same-origin"}).then(r => {
    if (!r.ok) throw new Error("HTTP " + r.status);
    return r.json();
  }).then(st => {
    S.order = st.order; S.answers = st.answers || {};
    const first = S.order.findIndex(id => !complete(S.answers[id]));
    show(first < 0 ? 0 : first);
    S.ready = true;
  }).catch(e => { S.errors.push(String(e)); $("status").textContent = String(e); $("status").className = "error"; });
})();
"""
