// Every call carries the function key and the bearer token: a forged cross-site request carries neither.
import { token } from "./auth.js";

const KEY = "riposte.key";

export function functionKey() {
  return sessionStorage.getItem(KEY) || "";
}

export function setFunctionKey(value) {
  sessionStorage.setItem(KEY, value);
}

export class ApiError extends Error {
  constructor(status, error) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.code = error?.code || "";
    this.target = error?.target || "";
  }
}

export async function call(method, path, body) {
  const headers = { "x-functions-key": functionKey() };
  const bearer = token();
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(`/api${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : {};
  if (!response.ok) throw new ApiError(response.status, parsed.error);
  return { status: response.status, body: parsed, location: response.headers.get("location") };
}

export const get = (path) => call("GET", path);
export const post = (path, body) => call("POST", path, body);

export async function waitForRun(id, until, timeoutMs = 120_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { status, body } = await get(`/runs/${encodeURIComponent(id)}`);
    if (status === 200 || (until && until(body)) || Date.now() > deadline) return body;
    await new Promise((resolve) => setTimeout(resolve, 700));
  }
}
