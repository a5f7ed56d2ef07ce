// A phone's camera, for the browser tests: what no test browser has. Chromium's fake camera has
// one device, no facing mode, no torch, zoom or focus, and photos no larger than its video.
// This shim, installed before the page's scripts, gives the page two cameras (a rear one with
// torch, zoom, tap-to-focus and a 4032x3024 photo; a front one at 640x360), over Chromium's
// real fake camera. Everything the page asks of them is logged in window.__shim for the test.
(() => {
  const log = (window.__shim = { gum: [], gumOpened: [], applied: [], photos: [], photoCaps: 0 });
  const devices = navigator.mediaDevices;
  const facingOf = new WeakMap();
  const realGetUserMedia = devices.getUserMedia.bind(devices);
  devices.getUserMedia = async (constraints) => {
    log.gum.push(JSON.parse(JSON.stringify(constraints)));
    let video = constraints.video;
    let facing = null;
    if (video) {
      const id = video.deviceId?.exact || video.deviceId;
      const asked = video.facingMode?.exact || video.facingMode?.ideal || video.facingMode;
      facing = id === "shim-front" ? "user" : id === "shim-back" ? "environment" : asked || "user";
      // The front camera is a smaller one, so the stylist can tell which camera arrives.
      video = facing === "user"
        ? { width: { exact: 640 }, height: { exact: 360 } }
        : { width: { ideal: 1280 }, height: { ideal: 720 } };
    }
    const stream = await realGetUserMedia({ ...constraints, video });
    log.gumOpened.push(Date.now());
    for (const track of stream.getVideoTracks()) facingOf.set(track, facing);
    return stream;
  };
  const realEnumerate = devices.enumerateDevices.bind(devices);
  devices.enumerateDevices = async () => {
    const others = (await realEnumerate()).filter((d) => d.kind !== "videoinput");
    const camera = (deviceId, label) => ({ kind: "videoinput", deviceId, groupId: "shim", label });
    return [camera("shim-front", "Front camera"), camera("shim-back", "Back camera"), ...others];
  };
  const realSupported = devices.getSupportedConstraints.bind(devices);
  devices.getSupportedConstraints = () => ({ ...realSupported(), torch: true, zoom: true, pointsOfInterest: true });

  const track = MediaStreamTrack.prototype;
  const realSettings = track.getSettings;
  track.getSettings = function () {
    const settings = realSettings.call(this);
    if (this.kind !== "video" || !facingOf.has(this)) return settings;
    const facing = facingOf.get(this);
    return { ...settings, facingMode: facing, deviceId: facing === "user" ? "shim-front" : "shim-back",
             zoom: this.__zoom ?? 1, torch: this.__torch ?? false };
  };
  const realCapabilities = track.getCapabilities;
  track.getCapabilities = function () {
    const caps = realCapabilities.call(this);
    if (this.kind !== "video" || facingOf.get(this) !== "environment") return caps;
    return { ...caps, facingMode: ["environment"], torch: true, zoom: { min: 1, max: 8, step: 0.1 },
             focusMode: ["continuous", "single-shot"], pointsOfInterest: true };
  };
  const realApply = track.applyConstraints;
  track.applyConstraints = async function (constraints = {}) {
    log.applied.push(JSON.parse(JSON.stringify(constraints)));
    const { advanced = [], ...rest } = constraints;
    for (const step of advanced) {
      if ("zoom" in step) this.__zoom = step.zoom;
      if ("torch" in step) this.__torch = step.torch;
    }
    return realApply.call(this, rest);
  };

  if ("ImageCapture" in window) {
    ImageCapture.prototype.getPhotoCapabilities = async function () {
      log.photoCaps += 1;
      return { imageWidth: { min: 640, max: 4032, step: 16 }, imageHeight: { min: 480, max: 3024, step: 16 },
               fillLightMode: ["auto", "off", "flash"], redEyeReduction: "never" };
    };
    // The sensor's full size: the current frame drawn at the size asked for.
    ImageCapture.prototype.takePhoto = async function (settings) {
      log.photos.push(settings ? JSON.parse(JSON.stringify(settings)) : null);
      const frame = await this.grabFrame();
      const width = settings?.imageWidth || frame.width;
      const height = settings?.imageHeight || frame.height;
      const canvas = new OffscreenCanvas(width, height);
      canvas.getContext("2d").drawImage(frame, 0, 0, width, height);
      return await canvas.convertToBlob({ type: "image/jpeg", quality: 0.9 });
    };
  }
})();
