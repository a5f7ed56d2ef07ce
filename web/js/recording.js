// Recording the call, with both participants' consent (docs/protocol.md, Recording): the
// Record button asks, each side agrees or refuses on its own screen, both see the indicator
// while it runs, and either can stop it.
import { setText } from "./i18n.js";
import { $ } from "./page.js";

export class RecordingUi {
  constructor(role, session) {
    this.role = role;
    this.session = session;
    this.state = "off";
    $("record-ask").onclick = () => this.session()?.record("ask");
    $("record-stop").onclick = () => this.session()?.record("stop");
    $("record-agree").onclick = () => this.session()?.record("agree");
    $("record-refuse").onclick = () => this.session()?.record("refuse");
  }

  // A `recording` message from the server.
  update(message) {
    this.state = message.state;
    const asked = message.state === "asked";
    const on = message.state === "on";
    const agreed = asked && message.agreed.includes(this.role);
    $("record-consent").hidden = !asked;
    if (asked) {
      const key = agreed ? "recording.waiting" : message.by === this.role ? "recording.confirm" : `recording.asked.${message.by}`;
      setText($("record-consent-text"), key);
      $("record-agree").hidden = agreed;
      $("record-refuse").hidden = false;
    }
    $("recording").hidden = !on;
    $("record-ask").hidden = on || asked;
    $("record-stop").hidden = !on;
    const notice = $("record-notice");
    if (message.state !== "off") notice.hidden = true;
    else if (message.reason) {
      notice.hidden = false;
      setText(notice, `recording.off.${message.reason}`);
    }
  }

  // The partner left, or this page is reconnecting: nothing is recorded any more (the last
  // notice stays).
  reset() {
    this.update({ state: "off", agreed: [] });
  }
}
