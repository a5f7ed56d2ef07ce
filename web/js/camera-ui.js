// The camera on the call page: the preview and self view (mirrored only for a front camera),
// the camera bar (flip, torch, zoom) and tap-to-focus, the settings sheet with the device
// pickers (lobby and call), a camera lost mid-call, and the stylist's asks for light or a
// closer view. The customer always stays in control of their own camera.
import { setText, t } from "./i18n.js";
import { $ } from "./page.js";

export class CameraUi {
  // media: a LocalMedia; session(): the CallSession, once joined.
  constructor(media, session) {
    this.media = media;
    this.session = session;
    media.addEventListener("change", () => this.render());
    media.addEventListener("controls", () => this.renderControls());
    media.addEventListener("ended", (event) => {
      if (event.detail.kind === "video") $("camera-lost").hidden = false;
    });
    $("flip").addEventListener("click", () => this.run(() => media.flip()));
    $("torch").addEventListener("click", () => this.toggleTorch());
    $("zoom").addEventListener("input", (event) => media.setZoom(Number(event.target.value)));
    $("camera-select").addEventListener("change", (e) => this.run(() => media.switchVideo({ deviceId: e.target.value })));
    $("mic-select").addEventListener("change", (e) => this.run(() => media.switchAudio(e.target.value)));
    $("camera-restart").addEventListener("click", () => this.run(() => media.restartVideo()));
    $("settings-open").addEventListener("click", () => this.openSheet(true));
    $("settings-close").addEventListener("click", () => this.openSheet(false));
    $("local").addEventListener("click", (event) => this.focus(event));
    $("ask-dismiss").addEventListener("click", () => ($("ask-prompt").hidden = true));
  }

  // A failed switch (the camera is busy, or was refused) is said, and the call goes on.
  async run(action) {
    try {
      await action();
      $("camera-lost").hidden = true;
      this.say("");
    } catch (error) {
      this.say(error.key || "camera.failed");
    }
  }

  say(key) {
    setText($("lobby-message"), key);
    const status = $("call-status");
    if (key && !$("call").hidden) {
      setText(status, key);
      status.hidden = false;
    }
  }

  // In the call the camera bar (flip, light, zoom) sits on the stage under the thumb, and the
  // device pickers in a sheet; in the lobby both sit under the preview.
  placeForCall(inCall) {
    const settings = $("settings");
    const bar = $("camera-bar");
    settings.classList.toggle("sheet", inCall);
    bar.classList.toggle("on-stage", inCall);
    if (inCall) {
      const stage = $("call").querySelector(".stage");
      stage.append(bar, settings);
      settings.hidden = true;
      $("settings-close").hidden = false;
    } else {
      settings.prepend(bar);
      $("lobby-settings").append(settings);
      settings.hidden = false;
      $("settings-close").hidden = true;
    }
  }

  openSheet(open) {
    $("settings").hidden = !open;
    $("settings-open").setAttribute("aria-expanded", String(open));
  }

  async render() {
    const stream = this.media.stream;
    for (const video of [$("preview"), $("local")]) {
      if (video.srcObject !== stream) video.srcObject = stream;
      video.classList.toggle("mirrored", this.media.mirrored);
    }
    await this.session()?.replaceStream(stream);
    await this.fillPickers();
  }

  async fillPickers() {
    const { cameras, microphones } = await this.media.devices();
    const current = { video: this.media.video?.getSettings().deviceId, audio: this.media.audio?.getSettings().deviceId };
    for (const [select, devices, kind, name] of [
      [$("camera-select"), cameras, "video", "lobby.camera"],
      [$("mic-select"), microphones, "audio", "lobby.microphone"],
    ]) {
      select.replaceChildren(
        ...devices.map((d, i) => new Option(d.label || `${t(name)} ${i + 1}`, d.deviceId, false, d.deviceId === current[kind])),
      );
      select.parentElement.hidden = devices.length < 2;
    }
    // Phones: a front and a back camera.
    $("flip").hidden = cameras.length < 2 || !this.media.video;
  }

  renderControls() {
    const { torch, zoom } = this.media.controls;
    $("torch").hidden = !torch;
    $("torch").setAttribute("aria-pressed", String(this.media.torchOn));
    $("zoom-control").hidden = !zoom;
    if (zoom) {
      const input = $("zoom");
      input.min = zoom.min;
      input.max = zoom.max;
      input.step = zoom.step || 0.1;
      input.value = this.media.video?.getSettings().zoom ?? zoom.min;
    }
    document.body.dataset.focus = this.media.controls.focus || "none";
  }

  async toggleTorch() {
    await this.run(() => this.media.setTorch(!this.media.torchOn));
    $("torch").setAttribute("aria-pressed", String(this.media.torchOn));
  }

  // Tap the self view where the nails are: the camera focuses there. The picture may be
  // mirrored on screen; the camera's coordinates are not.
  async focus(event) {
    if (!this.media.controls.focus) return;
    const box = event.currentTarget.getBoundingClientRect();
    let x = (event.clientX - box.left) / box.width;
    const y = (event.clientY - box.top) / box.height;
    if (this.media.mirrored) x = 1 - x;
    await this.run(() => this.media.focusAt(Math.min(1, Math.max(0, x)), Math.min(1, Math.max(0, y))));
    const ring = $("focus-ring");
    if (ring) {
      ring.style.left = `${event.clientX - box.left}px`;
      ring.style.top = `${event.clientY - box.top}px`;
      ring.hidden = false;
      setTimeout(() => (ring.hidden = true), 800);
    }
  }

  // The stylist asks: a one-tap prompt that does it where the camera can (torch, zoom), and
  // says what to do where it cannot.
  ask(what) {
    const { torch, zoom } = this.media.controls;
    const act = $("ask-act");
    let can = false;
    if (what === "light") {
      can = torch && !this.media.torchOn;
      setText($("ask-text"), can ? "ask.light.torch" : "ask.light.move");
      setText(act, "ask.light.act");
      act.onclick = async () => {
        await this.toggleTorch();
        $("ask-prompt").hidden = true;
      };
    } else {
      can = Boolean(zoom);
      setText($("ask-text"), can ? "ask.closer.zoom" : "ask.closer.move");
      setText(act, "ask.closer.act");
      act.onclick = async () => {
        const now = this.media.video?.getSettings().zoom ?? zoom.min;
        await this.run(() => this.media.setZoom(Math.min(zoom.max, Math.max(now * 1.5, zoom.min + (zoom.max - zoom.min) / 3))));
        this.renderControls();
        $("ask-prompt").hidden = true;
      };
    }
    act.hidden = !can;
    $("ask-prompt").dataset.what = what;
    $("ask-prompt").hidden = false;
  }
}
