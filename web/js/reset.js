// Resetting a forgotten password: ask for the email (POST /api/password-resets), or, opened
// from that email's link (the token after #, so it is never sent in a request line or a
// Referer), choose the new password (POST /api/password-resets/use).
import { setText, startI18n } from "./i18n.js";
import { $, api } from "./page.js";

async function main() {
  await startI18n();
  const token = location.hash.slice(1);
  const form = $(token ? "reset-use" : "reset-request");
  form.hidden = false;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      if (token) {
        await api("/api/password-resets/use", { method: "POST", json: { token, password: form.password.value } });
        history.replaceState(null, "", location.pathname);
        form.hidden = true;
        setText($("reset-message"), "reset.done");
      } else {
        await api("/api/password-resets", { method: "POST", json: { email: form.email.value } });
        setText($("reset-message"), "reset.sent");
      }
    } catch (error) {
      setText($("reset-message"), error.key, { message: error.message });
    }
  });
}

main();
