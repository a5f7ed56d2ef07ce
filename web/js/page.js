// The pages' plumbing, one copy for every page: finding and building elements, calling the
// API with its JSON errors, and showing times in the reader's language.
import { language, setText, t } from "./i18n.js";

export const $ = (id) => document.getElementById(id);

// An element: props, a data-testid (testid) and a translated text (i18n).
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (key === "testid") node.dataset.testid = value;
    else if (key === "i18n") setText(node, value);
    else node[key] = value;
  }
  node.append(...children);
  return node;
}

// An error of the API (docs/protocol.md): its HTTP status and its code, the pages' message key;
// `details`, the error's other fields (a refused photo's hints).
export class ApiError extends Error {
  constructor(status, code, message, details = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }

  // The catalogue's text for this error, or the generic one with the server's words.
  get key() {
    return errorKey(this.code);
  }
}

export function errorKey(code) {
  return code && t(`error.${code}`) !== `error.${code}` ? `error.${code}` : "error.generic";
}

// Call the API: `json` is sent as JSON, `body` as it is (a file, a blob) with its type. Staff
// pages go by their session cookie, link pages by their token.
export async function api(path, { method = "GET", token = null, json, body, type } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(json);
  } else if (body !== undefined) {
    headers["Content-Type"] = type || body.type || "application/octet-stream";
  }
  let response;
  try {
    response = await fetch(path, { method, headers, body, credentials: "same-origin" });
  } catch (error) {
    throw new ApiError(0, "offline", error.message);
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiError(response.status, data.error?.code, data.error?.message || response.statusText, data.error || {});
  }
  return data;
}

// A time as the reader writes it; `empty` when there is none.
export function when(iso, empty = "–") {
  return iso ? new Date(iso).toLocaleString(language()) : empty;
}
