// A run as a picture: one row per step on a shared time axis. Bars are the time a step ran, a dashed frame the time it
// waited for an approval, diamonds the decisions, "retried N" the transient failures. The steps table beside it says
// the same in words, for screen readers and for anyone who cannot tell the colours apart.
import { svg } from "./dom.js";

const LABEL = 330;
const WIDTH = 960;
const ROW = 26;
const TOP = 34;

function spanOf(run, now) {
  const times = [run.createdAt];
  for (const step of run.steps) {
    for (const t of [step.startedAt, step.endedAt, ...(step.approval?.decisions || []).map((d) => d.at)]) if (t) times.push(t);
  }
  const active = !run.finishedAt && ["queued", "running", "waiting", "rolling_back"].includes(run.status);
  const end = Math.max(...times, run.finishedAt || 0, active ? now : 0);
  return [run.createdAt, Math.max(end, run.createdAt + 1)];
}

function niceStep(total) {
  for (const step of [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400]) {
    if (total / step <= 8) return step;
  }
  return 86400 * 7;
}

function label(seconds) {
  if (seconds < 60) return `+${Math.round(seconds * 10) / 10}s`;
  if (seconds < 3600) return `+${Math.round(seconds / 6) / 10}m`;
  return `+${Math.round(seconds / 360) / 10}h`;
}

export function timeline(run, now = Date.now() / 1000) {
  const [start, end] = spanOf(run, now);
  const x = (t) => LABEL + ((t - start) / (end - start)) * (WIDTH - LABEL - 20);
  const height = TOP + run.steps.length * ROW + 10;
  const counts = {};
  for (const step of run.steps) counts[step.status] = (counts[step.status] || 0) + 1;
  const summary = Object.entries(counts).map(([s, n]) => `${n} ${s.replace(/_/g, " ")}`).join(", ");
  const picture = svg("svg", {
    class: "timeline", viewBox: `0 0 ${WIDTH} ${height}`, role: "img", "aria-labelledby": "tl-title tl-desc",
  });
  picture.append(
    svg("title", { id: "tl-title" }, `Timeline of run ${run.id}`),
    svg("desc", { id: "tl-desc" }, `${run.steps.length} steps over ${label(end - start).slice(1)}: ${summary}.`),
  );
  const tick = niceStep(end - start);
  for (let t = 0; t <= end - start + 1e-9; t += tick) {
    picture.append(
      svg("line", { class: "axis", x1: x(start + t), x2: x(start + t), y1: TOP - 8, y2: height - 6, "stroke-opacity": 0.25 }),
      svg("text", { x: x(start + t), y: TOP - 14, "text-anchor": "middle" }, label(t)),
    );
  }
  run.steps.forEach((step, index) => picture.append(row(step, TOP + index * ROW, x, now, run)));
  return picture;
}

function row(step, y, x, now, run) {
  const group = svg("g", {});
  group.append(svg("text", { x: 6, y: y + 16 }, `${step.id} · ${step.uses}`.slice(0, 48)));
  const decisions = step.approval?.decisions || [];
  if (step.approval && step.startedAt) {
    const decided = decisions.length ? Math.max(...decisions.map((d) => d.at)) : now;
    const until = step.status === "awaiting_approval" ? (run.finishedAt || now) : decided;
    group.append(svg("rect", { class: "wait", x: x(step.startedAt), y: y + 4, width: Math.max(2, x(until) - x(step.startedAt)), height: 16 },
      svg("title", {}, `${step.id} waited for approval`)));
  }
  if (step.startedAt) {
    const finished = step.endedAt || (["done", "skipped", "failed"].includes(step.status) ? step.startedAt : now);
    const from = step.approval && decisions.length ? Math.max(...decisions.map((d) => d.at)) : step.startedAt;
    const begin = Math.min(from, finished);
    group.append(svg("rect", {
      class: `bar-${step.status}`, x: x(begin), y: y + 7, width: Math.max(3, x(finished) - x(begin)), height: 10, rx: 2,
    }, svg("title", {}, `${step.id}: ${step.status.replace(/_/g, " ")}${step.reason ? ` — ${step.reason}` : ""}`)));
  } else {
    group.append(svg("text", { x: LABEL, y: y + 16, fill: "#4a4a4a" }, step.status.replace(/_/g, " ")));
  }
  for (const decision of decisions) {
    const cx = x(decision.at);
    group.append(svg("path", { class: "decision", d: `M${cx} ${y + 3} l6 9 l-6 9 l-6 -9 z` },
      svg("title", {}, `${decision.decision} by ${decision.by}${decision.comment ? `: ${decision.comment}` : ""}`)));
  }
  if (step.retries) group.append(svg("text", { x: WIDTH - 90, y: y + 16 }, `retried ${step.retries}`));
  return group;
}
