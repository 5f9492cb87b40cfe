// The review desk's page: keyboard-driven labelling over the desk's JSON API.
// Dataset text is hostile: it is only ever written with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const state = {item: null, picked: null, nodes: new Map(), results: [], busy: false};

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function say(text, bad) {
  $("message").textContent = text || "";
  $("message").className = bad ? "bad" : "";
}

async function api(path, body) {
  const options = body === undefined ? {} : {
    method: "POST", body: JSON.stringify(body),
    headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
  };
  const response = await fetch(path, {credentials: "same-origin", ...options});
  const doc = await response.json();
  if (!response.ok) throw Object.assign(new Error(doc.error || response.statusText), {status: response.status});
  return doc;
}

function filters() {
  const params = new URLSearchParams();
  for (const input of document.querySelectorAll("[data-filter]")) {
    params.set(input.dataset.filter, input.value);
  }
  return params.toString();
}

function editor() { return $("editor").value.trim(); }

function describe(id) {
  const node = state.nodes.get(id);
  return node ? node.path.join(" › ") : id;
}

function candidateEntry(number, id, confidence) {
  const node = state.nodes.get(id) || {examples: [], description: ""};
  const li = el("li", null, "candidate");
  li.dataset.id = id;
  const head = el("div");
  head.append(el("kbd", number), " ", el("strong", describe(id)));
  if (confidence !== null && confidence !== undefined) head.append(el("span", " " + confidence.toFixed(3), "muted"));
  li.append(head, el("div", id, "muted"));
  if (node.description) li.append(el("div", node.description, "description"));
  if (node.examples && node.examples.length) li.append(el("div", "e.g. " + node.examples.slice(0, 2).join(" · "), "examples"));
  return li;
}

function render(item) {
  state.item = item;
  state.picked = null;
  $("chosen").textContent = "";
  for (const id of ["facts", "images", "conversation", "text", "candidates"]) $(id).replaceChildren();
  $("empty").hidden = item !== null;
  document.body.dataset.key = item ? item.key : "";
  if (!item) return;
  const facts = [item.key, item.source, item.category, item.language || "?", item.status];
  if (item.confidence !== null) facts.push("confidence " + item.confidence.toFixed(3));
  if (item.decided) facts.push("decided: " + item.decided.label + " by " + item.decided.editor);
  $("facts").textContent = facts.join(" · ");
  for (let i = 0; i < item.images; i++) {
    const image = el("img", null, "thumb");
    image.src = "/image/" + encodeURIComponent(item.key) + "/" + i;
    image.alt = "image " + i;
    image.addEventListener("click", () => image.classList.toggle("full"));
    $("images").append(image);
  }
  for (const turn of item.conversation) {
    const div = el("div", null, "turn " + (turn.role === "User" ? "user" : "assistant"));
    div.append(el("strong", turn.role), el("pre", turn.content));
    $("conversation").append(div);
  }
  $("text").textContent = item.text;
  item.candidates.slice(0, 9).forEach((candidate, i) => {
    $("candidates").append(candidateEntry(i + 1, candidate.id, candidate.confidence));
  });
}

function pick(id) {
  state.picked = id;
  $("chosen").replaceChildren(el("span", "picked: "), el("strong", describe(id)), el("span", "  Enter accepts", "muted"));
  for (const li of document.querySelectorAll(".candidate")) li.classList.toggle("picked", li.dataset.id === id);
}

let sideTicket = 0;  // the latest refresh of the side panel: an older one's answer is dropped

async function refreshSide() {
  const ticket = ++sideTicket;
  document.body.dataset.side = "";
  const [counts, mix] = await Promise.all([api("/api/counts?" + filters()), api("/api/mix")]);
  // Answers can arrive out of order; the counts of filters since changed must not overwrite the
  // counts of the filters shown.
  if (ticket !== sideTicket) return;
  for (const name of ["status", "source", "category", "language", "node"]) {
    const select = $("f-" + name);
    const value = select.value;  // the page starts with status "review" chosen (desk.html)
    select.replaceChildren(el("option", "any", null));
    select.firstChild.value = "";
    for (const [option, count] of Object.entries(counts[name])) {
      const entry = el("option", option + " (" + count + ")");
      entry.value = option;
      select.append(entry);
    }
    if (value && !counts[name][value]) {
      const entry = el("option", value + " (0)");
      entry.value = value;
      select.append(entry);
    }
    select.value = value;
  }
  $("total").textContent = counts.total + " undecided with these filters";
  const body = $("mix").querySelector("tbody");
  body.replaceChildren();
  for (const main of mix.mains) {
    const row = el("tr");
    row.append(el("td", main.name), el("td", main.count), el("td", (100 * main.share).toFixed(1) + "%"),
               el("td", main.target === null || main.target === undefined ? "" : (100 * main.target).toFixed(1) + "%"));
    body.append(row);
  }
  $("mix-review").textContent = mix.labelled + " labelled, " + mix.review + " awaiting review";
  document.body.dataset.side = "1";
}

async function next() {
  const doc = await api("/api/next?" + filters());
  render(doc.item);
  $("progress").textContent = doc.decided + " decided";
  document.body.dataset.ready = "1";
}

async function act(work) {
  if (state.busy) return;
  state.busy = true;
  document.body.dataset.ready = "";
  try {
    await work();
    await next();
    refreshSide().catch((error) => say(error.message, true));
  } catch (error) {
    say(error.message, true);
    if (error.status === 409) await next().catch(() => {});  // another editor has it now: move on
    document.body.dataset.ready = "1";
  } finally {
    state.busy = false;
  }
}

function accept() {
  if (!state.item) return;
  if (!state.picked) { say("pick a label first: 1–9, or / to search", true); return; }
  if (!editor()) { say("type your name in the editor field first", true); $("editor").focus(); return; }
  const key = state.item.key, label = state.picked;
  act(async () => {
    await api("/api/decide", {key, label, editor: editor()});
    say(key + " → " + label);
  });
}

function skip() {
  if (!state.item) return;
  const key = state.item.key;
  act(async () => { await api("/api/skip", {key}); say("skipped " + key); });
}

function undo() {
  if (!editor()) { say("type your name in the editor field first", true); return; }
  act(async () => {
    const doc = await api("/api/undo", {editor: editor()});
    say(doc.undone ? "undid " + doc.undone.key : "nothing of yours to undo");
  });
}

function openSearch() {
  $("search-box").hidden = false;
  $("search").value = "";
  showResults();
  $("search").focus();
}

function closeSearch() {
  $("search-box").hidden = true;
  $("search").blur();
}

function showResults() {
  const words = $("search").value.toLowerCase().split(/\s+/).filter(Boolean);
  state.results = [...state.nodes.values()].filter((node) => node.leaf && words.every((word) =>
    (node.id + " " + node.path.join(" ") + " " + node.keywords.join(" ")).toLowerCase().includes(word))).slice(0, 9);
  $("results").replaceChildren(...state.results.map((node, i) => candidateEntry(i + 1, node.id, null)));
}

function onSearchKey(event) {
  if (event.key === "Escape") { closeSearch(); event.preventDefault(); }
  if (event.key === "Enter") {
    event.preventDefault();
    if (state.results.length) pick(state.results[0].id);
    closeSearch();
  }
}

function onKey(event) {
  if (event.target.tagName === "INPUT" || event.target.tagName === "SELECT") {
    if (event.key === "Enter" && event.target.id === "editor") event.target.blur();
    if (event.key === "Enter" && event.target.dataset.filter !== undefined) {  // Enter in a filter applies them
      event.target.blur();
      act(async () => {});
    }
    return;
  }
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const key = event.key;
  if (key === "?") { $("help").hidden = !$("help").hidden; return; }
  if (key === "/") { event.preventDefault(); openSearch(); return; }
  if (key === "Enter") { event.preventDefault(); accept(); return; }
  if (key === "s") { skip(); return; }
  if (key === "u") { undo(); return; }
  if (/^[1-9]$/.test(key) && state.item) {
    const candidate = state.item.candidates[Number(key) - 1];
    if (candidate) pick(candidate.id);
  }
}

async function start() {
  const taxonomy = await api("/api/taxonomy");
  for (const node of taxonomy.nodes) state.nodes.set(node.id, node);
  if (!$("editor").value) $("editor").value = localStorage.getItem("vlcurate-editor") || "";
  $("editor").addEventListener("change", () => localStorage.setItem("vlcurate-editor", editor()));
  document.addEventListener("keydown", onKey);
  $("search").addEventListener("input", showResults);
  $("search").addEventListener("keydown", onSearchKey);
  $("apply-filters").addEventListener("click", () => act(async () => {}));
  await refreshSide();
  await next();
}

start().catch((error) => say(error.message, true));
