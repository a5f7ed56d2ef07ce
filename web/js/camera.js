// The local camera and microphone: asking for the best picture from the right camera, listing
// and switching devices, the camera's own controls (light, zoom, focus) where it has them, and
// telling people exactly what is wrong when the camera cannot start.

// The camera's best picture: ideal, never exact, so any camera still starts.
const VIDEO = { width: { ideal: 1920 }, height: { ideal: 1080 }, frameRate: { ideal: 30 } };
const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

export class CameraError extends Error {
  constructor(key, cause) {
    super(key);
    this.key = key; // an i18n key: camera.denied, camera.missing, ...
    this.cause = cause;
  }
}

export function webrtcSupported() {
  return Boolean(window.RTCPeerConnection && navigator.mediaDevices?.getUserMedia);
}

function classify(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "PermissionDeniedError":
    case "SecurityError":
      return "camera.denied";
    case "NotFoundError":
    case "DevicesNotFoundError":
      return "camera.missing";
    case "NotReadableError":
    case "TrackStartError":
    case "AbortError":
      return "camera.busy";
    case "OverconstrainedError":
      return "camera.constraints";
    default:
      return "camera.failed";
  }
}

// What to ask getUserMedia for. A phone's rear camera focuses close and has the torch: the
// customer starts on it (`facingMode: "environment"`), the stylist on the front one.
export function videoConstraints({ deviceId, facingMode } = {}) {
  const video = { ...VIDEO };
  if (deviceId) video.deviceId = { exact: deviceId };
  else if (facingMode) video.facingMode = { ideal: facingMode };
  return video;
}

export async function openCamera({ videoDeviceId, audioDeviceId, facingMode, video = true, audio = true } = {}) {
  if (!window.isSecureContext) throw new CameraError("camera.insecure");
  const constraints = {
    video: video && videoConstraints({ deviceId: videoDeviceId, facingMode }),
    audio: audio && { ...AUDIO, ...(audioDeviceId ? { deviceId: { exact: audioDeviceId } } : {}) },
  };
  try {
    return await navigator.mediaDevices.getUserMedia(constraints);
  } catch (error) {
    if (video && (error?.name === "NotFoundError" || error?.name === "OverconstrainedError")) {
      // A missing microphone must not stop the camera, nor a vanished device the call.
      try {
        return await navigator.mediaDevices.getUserMedia({ video: videoConstraints({ facingMode }), audio: false });
      } catch (inner) {
        throw new CameraError(classify(inner), inner);
      }
    }
    throw new CameraError(classify(error), error);
  }
}

// Only the camera: the microphone keeps running while the camera is switched.
export async function openVideo(options) {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ video: videoConstraints(options), audio: false });
    return stream.getVideoTracks()[0];
  } catch (error) {
    throw new CameraError(classify(error), error);
  }
}

export async function openAudio(deviceId) {
  try {
    const stream = await navigator.mediaDevices.getUserMedia({
      audio: { ...AUDIO, ...(deviceId ? { deviceId: { exact: deviceId } } : {}) },
    });
    return stream.getAudioTracks()[0];
  } catch (error) {
    throw new CameraError(classify(error), error);
  }
}

export async function listDevices() {
  const devices = await navigator.mediaDevices.enumerateDevices();
  return {
    cameras: devices.filter((d) => d.kind === "videoinput"),
    microphones: devices.filter((d) => d.kind === "audioinput"),
  };
}

export function stopStream(stream) {
  for (const track of stream?.getTracks() || []) track.stop();
}

// A front camera is shown mirrored, as in a mirror; a rear camera as it is, so the customer's
// left is on the left of what the stylist sees too. A laptop's camera faces its user.
export function facesUser(track) {
  const facing = track?.getSettings?.().facingMode;
  if (facing) return facing === "user";
  return !/back|rear|environment/i.test(track?.label || "");
}

// No camera, or one with nothing to offer.
export const NO_CONTROLS = Object.freeze({ torch: false, zoom: null, focus: null });

// The controls a camera offers, found with getCapabilities(); what is absent is null, and the
// page shows no button for it (never a dead one). The photo's sizes are asked for when a photo
// is taken (capture.js): the camera may have changed since.
export function cameraControls(track) {
  if (!track) return NO_CONTROLS;
  const caps = track.getCapabilities?.() || {};
  const supported = navigator.mediaDevices.getSupportedConstraints?.() || {};
  const focusModes = caps.focusMode || [];
  return {
    torch: Boolean(caps.torch),
    zoom: caps.zoom && caps.zoom.max > caps.zoom.min ? caps.zoom : null,
    // Tap to focus: a point of interest where the camera takes one, else a single-shot focus.
    focus: supported.pointsOfInterest && caps.pointsOfInterest !== undefined
      ? "point"
      : focusModes.includes("single-shot") ? "single-shot" : null,
  };
}

export async function setTorch(track, on) {
  await track.applyConstraints({ advanced: [{ torch: on }] });
}

export async function setZoom(track, zoom) {
  await track.applyConstraints({ advanced: [{ zoom }] });
}

// x, y: 0-1 across the picture as the camera sees it (not mirrored).
export async function focusAt(track, mode, x, y) {
  const advanced = mode === "point"
    ? [{ pointsOfInterest: [{ x, y }], focusMode: "single-shot" }]
    : [{ focusMode: "single-shot" }];
  await track.applyConstraints({ advanced });
}
