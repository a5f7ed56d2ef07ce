// The local camera and microphone: asking for the best picture, listing and switching devices,
// and telling people exactly what is wrong when the camera cannot start.

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

export async function openCamera({ videoDeviceId, audioDeviceId, facingMode } = {}) {
  if (!window.isSecureContext) throw new CameraError("camera.insecure");
  const video = { ...VIDEO };
  if (videoDeviceId) video.deviceId = { exact: videoDeviceId };
  else if (facingMode) video.facingMode = { ideal: facingMode };
  const audio = { ...AUDIO };
  if (audioDeviceId) audio.deviceId = { exact: audioDeviceId };
  try {
    return await navigator.mediaDevices.getUserMedia({ video, audio });
  } catch (error) {
    if (error?.name === "NotFoundError" || error?.name === "OverconstrainedError") {
      // A missing microphone must not stop the camera, nor a vanished device the call.
      try {
        return await navigator.mediaDevices.getUserMedia({ video: VIDEO, audio: false });
      } catch (inner) {
        throw new CameraError(classify(inner), inner);
      }
    }
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
