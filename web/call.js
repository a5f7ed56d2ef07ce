// The call page behind both links: camera preview, join, and the call through the server.
// Wire protocol: docs/protocol.md.
const token = location.pathname.split("/")[2];
const $ = (id) => document.getElementById(id);
const status = (text) => { $("status").textContent = text; };

const FINAL_CLOSE = new Set([4401, 4403, 4409]); // invalid link, revoked, opened elsewhere
const MESSAGES = {
  "invalid-token": "This link is not valid. Please ask your salon for a new one.",
  "revoked": "This link was replaced. Please ask your salon for the new one.",
  "replaced": "This consultation was opened in another window.",
  "media-failed": "The video connection failed. Reconnecting…",
};

let stream = null;
let ws = null;
let pc = null;
let role = null;
let leaving = false;

async function preview() {
  if (!window.RTCPeerConnection || !navigator.mediaDevices) {
    status("This browser cannot make video calls. Please open the link in an up-to-date browser.");
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { width: { ideal: 1920 }, height: { ideal: 1080 } },
      audio: { echoCancellation: true, noiseSuppression: true },
    });
  } catch (err) {
    status(err.name === "NotAllowedError"
      ? "Camera access was refused. Allow the camera in your browser settings, then reload."
      : `The camera could not be started (${err.name}).`);
    return;
  }
  $("local").srcObject = stream;
  $("join").disabled = false;
  status("Ready when you are.");
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(token)}`);
  ws.onmessage = (event) => handle(JSON.parse(event.data));
  ws.onclose = (event) => {
    closePeer();
    if (leaving || FINAL_CLOSE.has(event.code)) return;
    status("Connection lost. Reconnecting…");
    setTimeout(connect, 1500);
  };
}

async function handle(msg) {
  switch (msg.type) {
    case "welcome":
      role = msg.role;
      status(msg.peer === "present" ? "Connecting…" : waitingText());
      await offer(msg.ice_servers);
      break;
    case "answer":
      await pc.setRemoteDescription({ type: "answer", sdp: msg.sdp });
      break;
    case "peer":
      status(msg.state === "joined" ? "In the call." : waitingText());
      break;
    case "error":
      status(MESSAGES[msg.code] || msg.message);
      break;
  }
}

function waitingText() {
  return role === "customer" ? "Your stylist will join shortly." : "Waiting for the customer to join.";
}

async function offer(iceServers) {
  closePeer();
  pc = new RTCPeerConnection({ iceServers });
  for (const track of stream.getTracks()) {
    const sender = pc.addTrack(track, stream);
    if (track.kind === "video") {
      const params = sender.getParameters();
      params.degradationPreference = "maintain-resolution";
      await sender.setParameters(params).catch(() => {});
    }
  }
  pc.ontrack = (event) => {
    if (event.track.kind === "video") $("remote").srcObject = event.streams[0] || new MediaStream([event.track]);
  };
  pc.onconnectionstatechange = () => {
    if (pc && pc.connectionState === "failed") ws.close();
  };
  await pc.setLocalDescription(await pc.createOffer());
  await gathered(pc);
  ws.send(JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }));
}

function gathered(peer) {
  if (peer.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    peer.addEventListener("icegatheringstatechange", () => {
      if (peer.iceGatheringState === "complete") resolve();
    });
  });
}

function closePeer() {
  if (pc) { pc.close(); pc = null; }
}

$("join").addEventListener("click", () => {
  $("join").hidden = true;
  $("leave").hidden = false;
  leaving = false;
  status("Joining…");
  connect();
});

$("leave").addEventListener("click", () => {
  leaving = true;
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: "bye" }));
  closePeer();
  $("leave").hidden = true;
  $("join").hidden = false;
  status("You have left the consultation. You can join again with the same link.");
});

preview();
