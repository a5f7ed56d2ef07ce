// What tells staff that a customer wrote while a dashboard tab is open: a browser notification
// (permission asked on a click, as browsers require), a short sound made with WebAudio (no
// sound file), and the unread count in the tab's title.
import { t } from "./i18n.js";

const TITLE = document.title;

export class StaffAlerts {
  constructor(button) {
    this.button = button;
    this.audio = null;
    const supported = "Notification" in window;
    button.hidden = !supported || Notification.permission !== "default";
    button.addEventListener("click", async () => {
      this.unlockSound();
      await Notification.requestPermission();
      button.hidden = Notification.permission !== "default";
    });
    // Browsers start sound only after the page was used: any click on the page counts.
    document.addEventListener("pointerdown", () => this.unlockSound(), { once: true });
  }

  unlockSound() {
    this.audio ||= new AudioContext();
    if (this.audio.state === "suspended") this.audio.resume().catch(() => {});
  }

  unread(count) {
    document.title = count > 0 ? `(${count}) ${TITLE}` : TITLE;
  }

  // A customer's message: the sound and a notification, unless staff are reading that very
  // conversation on screen (`watching`).
  customerWrote(name, text, onOpen, watching = false) {
    if (watching && document.visibilityState === "visible") return;
    this.chime();
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    const notification = new Notification(t("inbox.notify_title", { name }), { body: text, tag: `consult-${name}` });
    notification.onclick = () => {
      window.focus();
      onOpen();
      notification.close();
    };
  }

  // Two short soft tones.
  chime() {
    try {
      this.audio ||= new AudioContext();
      const now = this.audio.currentTime;
      for (const [offset, frequency] of [[0, 880], [0.14, 1320]]) {
        const tone = this.audio.createOscillator();
        const gain = this.audio.createGain();
        tone.frequency.value = frequency;
        gain.gain.setValueAtTime(0.0001, now + offset);
        gain.gain.exponentialRampToValueAtTime(0.2, now + offset + 0.02);
        gain.gain.exponentialRampToValueAtTime(0.0001, now + offset + 0.18);
        tone.connect(gain).connect(this.audio.destination);
        tone.start(now + offset);
        tone.stop(now + offset + 0.2);
      }
    } catch {
      // No audio here: the title and the notification still say it.
    }
  }
}
