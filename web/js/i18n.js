// Every text on the pages comes from one message catalogue per language (web/i18n/*.json).
// Elements name their text with data-i18n (textContent) or data-i18n-<attr> (an attribute);
// setText() keeps the key on the element so a language switch re-translates it.

export const LANGUAGES = { en: "English", "zh-CN": "简体中文" };
const STORAGE_KEY = "consult.lang";
let catalogue = {};
let current = "en";

export function preferredLanguage() {
  const stored = localStorage.getItem(STORAGE_KEY);
  if (stored && stored in LANGUAGES) return stored;
  for (const tag of navigator.languages || [navigator.language || "en"]) {
    const lower = tag.toLowerCase();
    if (lower.startsWith("zh")) return "zh-CN";
    if (lower.startsWith("en")) return "en";
  }
  return "en";
}

export async function useLanguage(lang) {
  const response = await fetch(`/static/i18n/${lang}.json`);
  catalogue = await response.json();
  current = lang;
  document.documentElement.lang = lang;
  translate(document);
}

export function language() {
  return current;
}

export function t(key, vars = {}) {
  const text = catalogue[key] ?? key;
  return text.replace(/\{(\w+)\}/g, (_, name) => String(vars[name] ?? ""));
}

export function setText(element, key, vars) {
  element.dataset.i18n = key;
  element.dataset.i18nVars = vars ? JSON.stringify(vars) : "";
  element.textContent = t(key, vars);
}

export function translate(root) {
  for (const element of root.querySelectorAll("[data-i18n]")) {
    const vars = element.dataset.i18nVars ? JSON.parse(element.dataset.i18nVars) : undefined;
    element.textContent = t(element.dataset.i18n, vars);
  }
  for (const attr of ["title", "placeholder", "aria-label"]) {
    for (const element of root.querySelectorAll(`[data-i18n-${attr}]`)) {
      element.setAttribute(attr, t(element.getAttribute(`data-i18n-${attr}`)));
    }
  }
}

// Fills a <select> with the languages and switches when it changes.
export function languageSwitch(select) {
  for (const [code, name] of Object.entries(LANGUAGES)) {
    select.append(new Option(name, code, false, code === current));
  }
  select.addEventListener("change", async () => {
    localStorage.setItem(STORAGE_KEY, select.value);
    await useLanguage(select.value);
    document.dispatchEvent(new CustomEvent("languagechange"));
  });
}

export async function startI18n() {
  await useLanguage(preferredLanguage());
  const select = document.querySelector("[data-language-switch]");
  if (select) languageSwitch(select);
}

// The locale to write dates and times in: the browser's own where it is of the page's language
// (en-GB writes 14:30, en-US 2:30 PM), else the page's language.
export function dateLocale() {
  const own = navigator.language || current;
  return own.toLowerCase().startsWith(current.slice(0, 2).toLowerCase()) ? own : current;
}
