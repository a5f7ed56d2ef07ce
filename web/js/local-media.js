// This page's own camera and microphone through the whole visit: the first camera (the rear one
// for the customer), switching camera or microphone in the lobby and in the call, the camera's
// controls, and a camera that goes away (unplugged, taken by another app, permission revoked).
//
// Events: "change" {stream} when a track was replaced (the call swaps it without renegotiating),
// "ended" {kind} when a device stopped by itself, "controls" {controls} when the camera's
// controls are known.
import { cameraControls, facesUser, focusAt, NO_CONTROLS, listDevices, openAudio, openCamera, openVideo, setTorch, setZoom, stopStream } from "./camera.js";

export class LocalMedia extends EventTarget {
  constructor({ facingMode }) {
    super();
    this.stream = new MediaStream();
    this.facingMode = facingMode;
    this.controls = NO_CONTROLS;
    this.torchOn = false;
  }

  get video() {
    return this.stream.getVideoTracks()[0] || null;
  }

  get audio() {
    return this.stream.getAudioTracks()[0] || null;
  }

  get mirrored() {
    return Boolean(this.video) && facesUser(this.video);
  }

  // The lobby's first start: camera and microphone. `video: false`: the microphone alone.
  async start({ video = true, audio = true } = {}) {
    const stream = await openCamera({ facingMode: this.facingMode, video, audio });
    stopStream(this.stream);
    this.stream = new MediaStream(stream.getTracks());
    for (const track of this.stream.getTracks()) this.watch(track);
    this.learnControls();
    this.emit("change");
    return this.stream;
  }

  // No camera and no microphone: the customer still joins to see, hear and write.
  none() {
    stopStream(this.stream);
    this.stream = new MediaStream();
    this.learnControls();
    this.emit("change");
  }

  // Front to back and back again. The old camera is stopped first: phones open one at a time.
  async flip() {
    this.facingMode = this.facingMode === "user" ? "environment" : "user";
    return await this.switchVideo({ facingMode: this.facingMode });
  }

  async switchVideo(options) {
    const enabled = this.video ? this.video.enabled : true;
    if (this.video) {
      this.video.stop();
      this.stream.removeTrack(this.video);
    }
    const track = await openVideo(options);
    track.enabled = enabled;
    this.stream.addTrack(track);
    this.watch(track);
    const facing = track.getSettings().facingMode;
    if (facing) this.facingMode = facing;
    this.torchOn = false;
    this.learnControls();
    this.emit("change");
    return track;
  }

  async switchAudio(deviceId) {
    const enabled = this.audio ? this.audio.enabled : true;
    const track = await openAudio(deviceId);
    if (this.audio) {
      this.audio.stop();
      this.stream.removeTrack(this.audio);
    }
    track.enabled = enabled;
    this.stream.addTrack(track);
    this.watch(track);
    this.emit("change");
    return track;
  }

  // A device that ends by itself (not by us) is reported once; the page offers a restart.
  watch(track) {
    track.addEventListener("ended", () => {
      if (!this.stream.getTracks().includes(track)) return;
      this.dispatchEvent(new CustomEvent("ended", { detail: { kind: track.kind } }));
    });
  }

  async restartVideo() {
    return await this.switchVideo({ facingMode: this.facingMode });
  }

  learnControls() {
    this.controls = cameraControls(this.video);
    this.dispatchEvent(new CustomEvent("controls", { detail: { controls: this.controls } }));
  }

  async setTorch(on) {
    if (!this.controls.torch || !this.video) return false;
    await setTorch(this.video, on);
    this.torchOn = on;
    return true;
  }

  async setZoom(zoom) {
    if (!this.controls.zoom || !this.video) return;
    const { min, max } = this.controls.zoom;
    await setZoom(this.video, Math.min(max, Math.max(min, zoom)));
  }

  async focusAt(x, y) {
    if (!this.controls.focus || !this.video) return false;
    await focusAt(this.video, this.controls.focus, x, y);
    return true;
  }

  async devices() {
    return await listDevices();
  }

  setEnabled(kind, enabled) {
    for (const track of this.stream.getTracks()) if (track.kind === kind) track.enabled = enabled;
  }

  emit(type) {
    this.dispatchEvent(new CustomEvent(type, { detail: { stream: this.stream } }));
  }
}
