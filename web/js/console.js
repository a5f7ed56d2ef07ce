// The stylist's console around the call: the customer's upload and the stylist's own link in
// the quality panel, asks for light or a closer view, retakes, and the tabs that keep the
// palette, stills, chat and notes one tap away on a small screen.
import { setText } from "./i18n.js";
import { $ } from "./page.js";
import { uploadGrade } from "./quality.js";

export class Console {
  // session(): the CallSession.
  constructor(session) {
    this.session = session;
    this.lastStill = null;
    this.upload = null;
    $("ask-light").addEventListener("click", () => this.session()?.ask("light"));
    $("ask-closer").addEventListener("click", () => this.session()?.ask("closer"));
    // A retake repeats the cue of the last still, so the customer knows what to change.
    $("retake").addEventListener("click", () => this.capture(this.lastStill?.hints || []));
    for (const tab of document.querySelectorAll("[data-tab-target]")) {
      tab.addEventListener("click", () => this.showTab(tab.dataset.tabTarget));
    }
    this.showTab("stills");
  }

  capture(cue = []) {
    const session = this.session();
    if (!session || !["live", "waiting"].includes(session.state)) return;
    $("capture").disabled = true;
    $("retake").disabled = true;
    session.capture({ cue });
    setTimeout(() => {
      $("capture").disabled = false;
      $("retake").disabled = false;
    }, 1000);
  }

  showTab(name) {
    for (const tab of document.querySelectorAll("[data-tab-target]")) {
      const selected = tab.dataset.tabTarget === name;
      tab.setAttribute("aria-selected", String(selected));
    }
    for (const panel of document.querySelectorAll("#console [data-tab]")) {
      panel.classList.toggle("tab-active", panel.dataset.tab === name);
    }
  }

  still(still) {
    if (!["camera", "native", "video"].includes(still.source)) return;
    this.lastStill = still;
    $("retake").hidden = false;
  }

  // What the customer's page measures of its own upload (docs/protocol.md, upload-stats).
  uploadStats({ video, rtt_ms: rtt }) {
    this.upload = { video, rtt, at: Date.now() };
    const cell = $("quality-upload");
    if (!video || !video.width) {
      setText(cell, "console.quality.none");
    } else {
      cell.removeAttribute("data-i18n");
      cell.textContent = `${video.width}×${video.height} · ${Math.round(video.fps)} fps · ${(video.kbps / 1000).toFixed(1)} Mbps · ${(video.loss * 100).toFixed(1)} %`;
    }
    this.renderGrade();
  }

  // The stylist's own link: round trip, loss, and what arrives of the customer's video.
  ownLink(sample) {
    if (!sample) {
      setText($("quality-video"), "console.quality.none");
      this.renderGrade();
      return;
    }
    $("quality-rtt").textContent = sample.rtt == null ? "–" : `${Math.round(sample.rtt)} ms`;
    $("quality-loss").textContent = `${(sample.loss * 100).toFixed(1)} %`;
    if (sample.width) {
      $("quality-video").removeAttribute("data-i18n");
      $("quality-video").textContent = `${sample.width}×${sample.height} · ${Math.round(sample.fps)} fps`;
    } else {
      setText($("quality-video"), "console.quality.none");
    }
    this.own = sample;
    this.renderGrade();
  }

  // The grade is the worse of the two legs: the hand travels both. No word from the customer's
  // page (an old page, or none in the call) leaves the stylist's own link to speak.
  renderGrade() {
    const order = ["good", "fair", "poor"];
    const grades = [];
    if (this.own) grades.push(this.own.grade);
    const fresh = this.upload && Date.now() - this.upload.at < 30000;
    if (fresh) grades.push(uploadGrade(this.upload.video, this.upload.rtt));
    // No media from the customer at all: whatever the stylist's own link says, it is poor.
    if (this.unreachable) grades.push("poor");
    const grade = grades.sort((a, b) => order.indexOf(b) - order.indexOf(a))[0];
    if (!grade) {
      $("quality-grade").textContent = "";
      return;
    }
    setText($("quality-grade"), `console.quality.${grade}`);
    $("quality-grade").dataset.grade = grade;
  }

  // The customer's media could not connect (their network blocks it) or connects again.
  customerMedia(state) {
    const box = $("customer-media");
    this.unreachable = state === "unreachable";
    this.renderGrade();
    box.hidden = state !== "unreachable";
    if (state === "unreachable") setText(box, "console.customer_unreachable");
  }
}
