// One Firefox (a fresh profile in a temporary folder, removed on close), driven by
// puppeteer-core over WebDriver BiDi, for tests/firefox.py. Launch options come as the first
// argument (JSON); the first line out is {event: "ready", text: version} or {event: "failed",
// text}. Then requests come on stdin as JSON lines {id, method, params}; answers go to stdout
// as {id, result} or {id, error}, and page events as {event, page, text}. Anything on stderr
// is the browser's or node's own logging.
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import puppeteer from "puppeteer-core";

function send(message) {
  process.stdout.write(JSON.stringify(message) + "\n");
}

const options = JSON.parse(process.argv[2]);
let browser;
try {
  browser = await puppeteer.launch({
    browser: "firefox",
    executablePath: options.executablePath,
    headless: true,
    extraPrefsFirefox: options.prefs,
    protocolTimeout: 60_000,
  });
} catch (error) {
  send({ event: "failed", text: String(error?.stack ?? error) });
  process.exit(1);
}
const pages = new Map();
let nextPage = 1;

function page(params) {
  const found = pages.get(params.page);
  if (!found) throw new Error(`no page ${params.page}`);
  return found;
}

const call = ({ source, args }) => `(${source})(...${JSON.stringify(args ?? [])})`;
const byTestId = (testid) => `[data-testid="${testid}"]`;

const methods = {
  async newPage({ viewport }) {
    const created = await browser.newPage();
    const id = nextPage++;
    pages.set(id, created);
    created.on("pageerror", (e) => send({ event: "pageerror", page: id, text: String(e) }));
    created.on("console", (m) => {
      if (m.type() === "error") send({ event: "console", page: id, text: m.text() });
    });
    if (viewport) await created.setViewport(viewport);
    return id;
  },
  async setViewport(params) {
    await page(params).setViewport(params.viewport);
  },
  async goto(params) {
    await page(params).goto(params.url, { waitUntil: "load" });
  },
  // ``source`` is a function's source; its result must be JSON. It runs as a BiDi
  // script.evaluate, which the page's Content-Security-Policy (no eval) does not govern.
  async evaluate(params) {
    return await page(params).evaluate(call(params));
  },
  // Polled from here, not in the page: a poller inside the page would need eval.
  async waitForFunction(params) {
    const deadline = Date.now() + params.timeout;
    const expression = call(params);
    for (;;) {
      if (await page(params).evaluate(expression)) return;
      if (Date.now() > deadline) {
        throw new Error(`timed out after ${params.timeout} ms waiting for ${params.source}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  },
  // A real click (input.performActions) once the element is visible, enabled and stable.
  async click(params) {
    await page(params)
      .locator(byTestId(params.testid))
      .setTimeout(params.timeout)
      .click();
  },
  // BiDi input.setFiles: the element need not be visible (a file input often is not).
  async setFiles(params) {
    const element = await page(params).waitForSelector(byTestId(params.testid), {
      timeout: params.timeout,
    });
    await element.uploadFile(...params.paths.map((path) => resolve(path)));
    await element.dispose();
  },
  // PNG, base64; of one element when ``testid`` is given.
  async screenshot(params) {
    if (!params.testid) return await page(params).screenshot({ encoding: "base64" });
    const element = await page(params).waitForSelector(byTestId(params.testid), {
      visible: true,
      timeout: params.timeout,
    });
    const png = await element.screenshot({ encoding: "base64" });
    await element.dispose();
    return png;
  },
  async closePage(params) {
    await page(params).close();
    pages.delete(params.page);
  },
};

const lines = createInterface({ input: process.stdin });
send({ event: "ready", text: await browser.version() });
for await (const line of lines) {
  const { id, method, params } = JSON.parse(line);
  if (method === "close") break;
  Promise.resolve()
    .then(() => methods[method](params))
    .then(
      (result) => send({ id, result: result ?? null }),
      (error) => send({ id, error: String(error?.stack ?? error) }),
    );
}
// stdin closed or "close": the browser goes with us.
await browser.close();
process.exit(0);
