// The console: runs with filters, a run's timeline and steps, the approvals inbox, starting a playbook with a dry-run
// preview, and rollback. Plain ES modules, no build step; every call goes through api.js.
import { functionKey, get, post, setFunctionKey, waitForRun } from "./api.js";
import { completeSignIn, me, signIn, signOut, token } from "./auth.js";
import { confirmDialog, fail, h, json, say, status, when } from "./dom.js";
import { timeline } from "./timeline.js";

const STATUSES = ["queued", "running", "waiting", "succeeded", "failed", "rolling_back", "rolled_back"];
const ACTIVE = ["queued", "running", "waiting", "rolling_back"];
let config = { signIn: {} };
let refresh = null;

const main = () => document.getElementById("main");

function show(...nodes) {
  main().replaceChildren(...nodes.flat(Infinity).filter((n) => n !== null && n !== undefined && n !== false));
}

function has(role) {
  const who = me();
  return !config.signIn.clientId || Boolean(who && who.roles.includes(role));
}

async function start() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (fragment.has("key")) {  // make run prints the console's address with the local key after '#': never sent to a server
    setFunctionKey(fragment.get("key"));
    history.replaceState(null, "", location.pathname + "#/runs");
  }
  config = (await (await fetch("/api/console/config.json")).json());
  try {
    await completeSignIn(config.signIn);
  } catch (error) {
    fail(error.message);
  }
  window.addEventListener("hashchange", route);
  route();
}

function gate() {
  const needsToken = Boolean(config.signIn.clientId) && !token();
  const needsKey = !functionKey();
  const who = me();
  const corner = document.getElementById("who");
  corner.replaceChildren();
  if (who) {
    corner.append(`Signed in as ${who.name} (${who.roles.join(", ") || "no Riposte role"}) `,
      h("button", { class: "secondary", type: "button", onclick: () => { signOut(); route(); } }, "Sign out"));
  }
  document.getElementById("nav").hidden = needsToken || needsKey;
  if (!needsToken && !needsKey) return true;
  const parts = [h("h2", {}, "Sign in")];
  if (needsKey) {
    const input = h("input", { id: "key", type: "password", autocomplete: "off", required: true });
    parts.push(h("form", { onsubmit: (e) => { e.preventDefault(); setFunctionKey(input.value.trim()); route(); } },
      h("p", {}, "The API needs the Function App's key as well as your identity."),
      h("label", { for: "key" }, "Function key"), input, " ", h("button", { type: "submit" }, "Use this key")));
  }
  if (needsToken) {
    parts.push(h("p", {}, "Sign in with your Entra ID account. Your app roles decide what you may do."),
      h("button", { id: "sign-in", type: "button", onclick: () => signIn(config.signIn) }, "Sign in with Entra ID"));
  }
  show(...parts);
  return false;
}

async function route() {
  clearTimeout(refresh);
  fail("");
  if (!gate()) return;
  const path = location.hash.replace(/^#/, "") || "/runs";
  for (const link of document.querySelectorAll("nav a")) {
    if (link.getAttribute("href") === `#${path.split("/").slice(0, 2).join("/")}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    const match = path.match(/^\/runs\/([\w.-]+)$/);
    if (match) await runView(match[1]);
    else if (path === "/approvals") await approvalsView();
    else if (path === "/start") await startView();
    else await runsView();
  } catch (error) {
    fail(error.message);
  }
}

// --- runs ------------------------------------------------------------------------------------------------------------

async function runsView() {
  const filters = { status: h("select", { id: "f-status" }, h("option", { value: "" }, "any"), STATUSES.map((s) => h("option", { value: s }, s.replace(/_/g, " ")))),
    playbook: h("select", { id: "f-playbook" }, h("option", { value: "" }, "any")),
    text: h("input", { id: "f-text", type: "search", placeholder: "title or run id" }),
    dry: h("select", { id: "f-dry" }, h("option", { value: "" }, "both"), h("option", { value: "real" }, "real runs"), h("option", { value: "dry" }, "dry runs")) };
  const body = h("tbody", {});
  const table = h("table", {}, h("caption", { class: "note" }, "Newest first"),
    h("thead", {}, h("tr", {}, ["Created", "Playbook", "Incident", "Status", "Kind"].map((t) => h("th", { scope: "col" }, t)))), body);
  const load = async () => {
    const query = new URLSearchParams({ limit: "200" });
    if (filters.status.value) query.set("status", filters.status.value);
    const runs = (await get(`/runs?${query}`)).body.value;
    const seen = new Set(runs.map((r) => r.playbook));
    for (const name of seen) if (![...filters.playbook.options].some((o) => o.value === name)) filters.playbook.append(h("option", { value: name }, name));
    const text = filters.text.value.trim().toLowerCase();
    const shown = runs.filter((r) => (!filters.playbook.value || r.playbook === filters.playbook.value)
      && (!filters.dry.value || (filters.dry.value === "dry") === Boolean(r.dryRun))
      && (!text || `${r.title || ""} ${r.id}`.toLowerCase().includes(text)));
    body.replaceChildren(...shown.map((r) => h("tr", {},
      h("td", {}, when(r.createdAt)), h("td", {}, r.playbook),
      h("td", {}, h("a", { href: `#/runs/${r.id}` }, r.title || r.id)), h("td", {}, status(r.status)),
      h("td", {}, r.dryRun ? "dry run" : "real"))));
    say(`${shown.length} of ${runs.length} runs shown`);
  };
  const controls = Object.entries({ "f-status": ["Status", filters.status], "f-playbook": ["Playbook", filters.playbook],
    "f-text": ["Search", filters.text], "f-dry": ["Kind", filters.dry] }).map(([id, [text, input]]) => {
    input.addEventListener("change", load);
    return h("div", {}, h("label", { for: id }, text), input);
  });
  filters.text.addEventListener("input", load);
  show(h("h2", {}, "Runs"), h("div", { class: "filters" }, controls, h("button", { type: "button", class: "secondary", onclick: load }, "Refresh")), table);
  await load();
}

// --- one run ---------------------------------------------------------------------------------------------------------

async function runView(id) {
  let tick = null;
  const draw = async () => {
    const run = (await get(`/runs/${id}`)).body;
    const stepsTable = h("table", {}, h("caption", { class: "note" }, "Steps"),
      h("thead", {}, h("tr", {}, ["Step", "Action", "Target", "Status", "Reason", "Started", "Retries"].map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, run.steps.map((s) => h("tr", {}, h("td", {}, s.id), h("td", {}, s.uses), h("td", {}, s.entity?.friendlyName || s.entity?.name || s.entity?.id || ""),
        h("td", {}, status(s.status)), h("td", {}, s.reason), h("td", {}, when(s.startedAt)), h("td", {}, String(s.retries || 0))))));
    const waiting = run.steps.filter((s) => s.status === "awaiting_approval");
    const canRollback = !run.dryRun && run.status !== "rolled_back" && run.status !== "rolling_back";
    show(
      h("h2", {}, `${run.playbook}: ${run.incident?.title || run.id}`),
      h("p", {}, "Status ", status(run.status), run.dryRun ? " (dry run)" : "", ` · started ${when(run.createdAt)} by ${run.requestedBy || "a delivery"}`,
        run.reason ? ` · ${run.reason}` : ""),
      timeline(run),
      waiting.map((s) => approvalPanel(run, s, () => tick())),
      h("div", { class: "buttons" },
        h("button", { type: "button", class: "danger", id: "rollback", disabled: !canRollback || !has("Riposte.Run"),
          onclick: () => rollback(run, () => tick()) }, "Roll back this run"),
        !has("Riposte.Run") ? h("span", { class: "note" }, "Rolling back needs the Riposte.Run role.") : null),
      stepsTable,
      h("details", {}, h("summary", {}, "The run as JSON"), json(run)));
    return run;
  };
  const here = location.hash;
  // Redrawn every 2 s while the run is active, and after anything done to it here (a decision, a rollback).
  tick = async () => {
    clearTimeout(refresh);
    const run = await draw();
    if (ACTIVE.includes(run.status) && location.hash === here) refresh = setTimeout(() => tick().catch((e) => fail(e.message)), 2000);
  };
  await tick();
}

async function rollback(run, redraw) {
  const sure = await confirmDialog("Roll back this run?", `Every reversible action of run ${run.id} is undone, newest first: `
    + "accounts enabled again, isolation removed, blocks lifted. This cannot be cancelled once it starts.", "Roll back");
  if (!sure) return;
  try {
    await post(`/runs/${run.id}/rollback`);
    say("Rollback requested");
    await redraw();
  } catch (error) {
    fail(error.message);
  }
}

// --- approvals -------------------------------------------------------------------------------------------------------

function approvalPanel(run, step, after) {
  const who = me();
  const preview = step.preview || {};
  const approval = step.approval || {};
  const approvedBy = (approval.decisions || []).filter((d) => d.decision === "approve");
  const comment = h("textarea", { id: `comment-${step.id}`, rows: 2, class: "comment" });
  let blocked = "";
  if (!has("Riposte.Approve")) blocked = "Deciding needs the Riposte.Approve role.";
  else if (who && run.requestedById && who.oid === run.requestedById) blocked = "You started this run: someone else must decide (separation of duties).";
  else if (who && (approval.decisions || []).some((d) => d.objectId === who.oid)) blocked = "You have already decided on this step.";
  const decide = async (decision) => {
    try {
      await post(`/runs/${run.id}/${decision}`, { step: step.id, comment: comment.value });
      await after();
      say(`${decision === "approve" ? "Approved" : "Rejected"} ${step.id} of run ${run.id}`);
    } catch (error) {
      fail(`${error.message}${error.code ? ` (${error.code})` : ""}`);
    }
  };
  const changes = Object.keys({ ...(preview.prior || {}), ...(preview.intended || {}) }).map((k) => h("tr", {},
    h("th", { scope: "row" }, k), h("td", {}, value(preview.prior?.[k])), h("td", {}, value(preview.intended?.[k]))));
  return h("section", { class: "panel", "aria-labelledby": `ap-${step.id}` },
    h("h3", { id: `ap-${step.id}` }, `Approve ${step.uses} on ${step.entity?.friendlyName || step.entity?.name || step.entity?.id || "the incident"}?`),
    h("p", {}, `Run `, h("a", { href: `#/runs/${run.id}` }, run.id), ` · ${run.playbook} · step ${step.id} · ${step.reason}`),
    h("p", {}, `Approvals: ${approvedBy.length} of ${approval.quorum || 1} needed`, approvedBy.length ? ` (${approvedBy.map((d) => d.by).join(", ")})` : "",
      approval.deadline ? ` · decide before ${when(approval.deadline)}, then: ${approval.onTimeout || "reject"}` : "",
      approval.approverGroups?.length ? ` · approvers: members of ${approval.approverGroups.join(", ")}` : ""),
    h("h4", {}, "What it would change (dry run)"),
    changes.length ? h("table", {}, h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Property"), h("th", { scope: "col" }, "Now"), h("th", { scope: "col" }, "After"))), h("tbody", {}, changes))
      : h("p", { class: "note" }, preview.reason || "No preview recorded."),
    h("p", {}, "Guardrails: ", status(preview.status || "unknown"), preview.reason ? ` — ${preview.reason}` : ""),
    h("h4", {}, "Permissions of Riposte's identity"),
    permissionList(preview.permissions || []),
    h("label", { for: `comment-${step.id}` }, "Comment"), comment,
    h("div", { class: "buttons" },
      h("button", { type: "button", id: `approve-${step.id}`, disabled: Boolean(blocked), onclick: () => decide("approve") }, "Approve"),
      h("button", { type: "button", class: "danger", id: `reject-${step.id}`, disabled: Boolean(blocked), onclick: () => decide("reject") }, "Reject")),
    blocked ? h("p", { class: "note" }, blocked) : null);
}

// A long value (an NSG's rules) is folded: its start, and the rest on demand.
function value(v) {
  const text = JSON.stringify(v ?? null);
  if (text.length <= 160) return text;
  return h("details", {}, h("summary", {}, `${text.slice(0, 120)}…`), h("pre", {}, JSON.stringify(v, null, 2)));
}

// Riposte checks its own permissions in dry runs; a live preview records none, and then says where to look.
function permissionList(checks) {
  const known = checks.filter((c) => c.held !== null && c.held !== undefined);
  if (!known.length) return h("p", { class: "note" }, "Not checked for a live run: a dry run of the playbook checks them (Start a playbook).");
  const lines = new Map(known.map((c) => [`${c.permission?.name}: ${c.held ? "held" : "MISSING"}${c.detail ? ` (${c.detail})` : ""}`, c]));
  return h("ul", {}, [...lines.keys()].map((line) => h("li", {}, line)));
}

async function approvalsView() {
  const waiting = (await get("/runs?status=waiting&limit=100")).body.value;
  const runs = await Promise.all(waiting.map((r) => get(`/runs/${r.id}`).then((x) => x.body)));
  const panels = runs.flatMap((run) => run.steps.filter((s) => s.status === "awaiting_approval").map((s) => approvalPanel(run, s, approvalsView)));
  show(h("h2", {}, "Approvals"), panels.length ? panels : h("p", {}, "Nothing waits for approval."));
  say(`${panels.length} step(s) wait for approval`);
}

// --- start a playbook ------------------------------------------------------------------------------------------------

async function startView() {
  const playbooks = (await get("/playbooks")).body.value;
  const select = h("select", { id: "playbook" }, playbooks.map((p) => h("option", { value: p.name }, `${p.name} — ${p.description}`)));
  const incident = h("textarea", { id: "incident", spellcheck: "false" });
  const result = h("div", { "aria-live": "polite" });
  const go = h("button", { type: "button", id: "start-real", disabled: true }, "Start the run");
  const payload = () => {
    try {
      return JSON.parse(incident.value);
    } catch {
      throw new Error("The incident is not valid JSON.");
    }
  };
  const preview = async () => {
    try {
      fail("");
      result.replaceChildren(h("p", {}, "Running a dry run…"));
      const answer = await post(`/playbooks/${encodeURIComponent(select.value)}/runs`, { incident: payload(), dryRun: true });
      const run = await waitForRun(answer.body.runs[0].id);
      result.replaceChildren(h("h3", {}, "Dry run: what this playbook would do"), timeline(run), h("table", {},
        h("thead", {}, h("tr", {}, ["Step", "Action", "Outcome", "Would change", "Reason"].map((t) => h("th", { scope: "col" }, t)))),
        h("tbody", {}, run.steps.map((s) => h("tr", {}, h("td", {}, s.id), h("td", {}, s.uses), h("td", {}, status(s.outcome?.status || s.status)),
          h("td", {}, s.outcome?.intended ? JSON.stringify(s.outcome.intended) : ""), h("td", {}, s.reason))))));
      go.disabled = !has("Riposte.Run");
    } catch (error) {
      result.replaceChildren();
      fail(error.message);
    }
  };
  go.addEventListener("click", async () => {
    try {
      const answer = await post(`/playbooks/${encodeURIComponent(select.value)}/runs`, { incident: payload(), dryRun: false });
      location.hash = `#/runs/${answer.body.runs[0].id}`;
    } catch (error) {
      fail(error.message);
    }
  });
  select.addEventListener("change", () => { go.disabled = true; });
  incident.addEventListener("input", () => { go.disabled = true; });
  show(h("h2", {}, "Start a playbook"),
    h("p", {}, "Paste the incident (any payload POST /api/incidents accepts). Preview it as a dry run first: nothing changes until you start the run."),
    h("div", {}, h("label", { for: "playbook" }, "Playbook"), select),
    h("div", {}, h("label", { for: "incident" }, "Incident"), incident),
    h("div", { class: "buttons" }, h("button", { type: "button", id: "preview", class: "secondary", onclick: preview }, "Preview (dry run)"), go),
    result);
}

start().catch((error) => fail(error.message));
