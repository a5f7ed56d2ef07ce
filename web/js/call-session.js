// One participant's side of a call, over the wire protocol in docs/protocol.md: the websocket,
// the peer connection with the server, and reconnecting by itself when either drops.
//
// States: idle -> connecting -> waiting | live -> (reconnecting -> connecting ...) -> left | ended.
// Events: "state" {state, partnerLeft, busy}, "remotestream" {stream}, "error" {code, message},
// "blocked" (the media never connected: the network is likely blocking it), "connected" (the
// media flows), "message" (any other server message, e.g. capture-request, still).

// Close codes after which reconnecting cannot help (docs/protocol.md).
export const FINAL = new Map([
  [4401, "invalid-token"],
  [4403, "revoked"],
  [4409, "replaced"],
  [4429, "too-many-attempts"],
]);
export const BACKOFF_MS = [300, 1000, 2000, 4000, 5000];
// A browser "disconnected" peer often recovers by itself; after this long we start afresh.
const DISCONNECTED_GRACE_MS = 4000;
const GATHER_TIMEOUT_MS = 5000;
// A network that let no media through is tried again this often (and on every network change).
const BLOCKED_RETRY_MS = 20000;

export class CallSession extends EventTarget {
  constructor(token, stream) {
    super();
    this.token = token;
    this.stream = stream;
    this.role = null;
    this.consultation = null;
    this.pc = null;
    this.state = "idle";
    this._emitted = "idle/false";
    this.partnerLeft = false;
    // The server had no room for a new call (server-busy): the page says so while it retries.
    this.busy = false;
    this.blocked = false;
    this._iceServers = [];
    this._reofferTimer = null;
    this.reconnects = 0;
    this._ws = null;
    this._generation = 0;
    this._attempt = 0;
    this._retryTimer = null;
    this._disconnectedTimer = null;
    this._onWake = () => this._reconnectNow();
    document.addEventListener("visibilitychange", this._onWake);
    window.addEventListener("online", this._onWake);
  }

  join() {
    this.partnerLeft = false;
    this._connect();
  }

  leave() {
    this._setState("left");
    this._send({ type: "bye" });
    this._teardown();
  }

  // Switch camera or microphone without renegotiating: each kind has its own sender from the
  // first offer on, with or without a track (a customer who joined without a camera can add
  // one later).
  async replaceStream(stream) {
    this.stream = stream;
    if (!this.pc) return;
    for (const transceiver of this.pc.getTransceivers()) {
      const kind = transceiver.receiver.track?.kind;
      const track = stream.getTracks().find((t) => t.kind === kind) || null;
      if (transceiver.sender.track !== track) await transceiver.sender.replaceTrack(track);
    }
  }

  // One place for state changes; repeats (same state, same partnerLeft) are skipped.
  _setState(state) {
    const key = `${state}/${this.partnerLeft}/${this.busy}`;
    if (key === this._emitted) return;
    this._emitted = key;
    this.state = state;
    const detail = { state, partnerLeft: this.partnerLeft, busy: this.busy };
    this.dispatchEvent(new CustomEvent("state", { detail }));
  }

  _connect() {
    clearTimeout(this._retryTimer);
    const generation = ++this._generation;
    this._setState(this.reconnects ? "reconnecting" : "connecting");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws?token=${encodeURIComponent(this.token)}`);
    this._ws = ws;
    // Messages and closes of an older connection are ignored: it was replaced by this one.
    ws.onmessage = (event) => {
      if (generation === this._generation) this._handle(JSON.parse(event.data));
    };
    ws.onclose = (event) => {
      if (generation === this._generation) this._closed(event.code);
    };
  }

  _closed(code) {
    // The server gave up on media that never connected (media-failed): blocked, as above.
    if (code === 4410 && this.pc && !this._mediaConnected) {
      this.blocked = true;
      this.dispatchEvent(new CustomEvent("blocked"));
    }
    this._closePeer();
    if (this.state === "left" || this.state === "ended") return;
    if (FINAL.has(code)) {
      this.dispatchEvent(new CustomEvent("error", { detail: { code: FINAL.get(code) } }));
      this._setState("ended");
      this._teardown();
      return;
    }
    this.reconnects += 1;
    this._setState("reconnecting");
    const delay = BACKOFF_MS[Math.min(this._attempt, BACKOFF_MS.length - 1)];
    this._attempt += 1;
    this._retryTimer = setTimeout(() => this._connect(), delay);
  }

  _reconnectNow() {
    if (this.blocked && this._ws?.readyState === WebSocket.OPEN) return this._reoffer();
    if (document.visibilityState !== "visible" || this.state !== "reconnecting") return;
    this._connect();
  }

  // A new offer on the same websocket: the server replaces this side's peer.
  _reoffer() {
    clearTimeout(this._reofferTimer);
    if (this._ws?.readyState === WebSocket.OPEN) this._offer(this._iceServers);
  }

  // Start again from a fresh websocket and a fresh offer (the server replaces our old peer).
  _restart() {
    if (this._ws && this._ws.readyState <= WebSocket.OPEN) this._ws.close(4000, "restart");
  }

  async _handle(message) {
    switch (message.type) {
      case "welcome":
        this._attempt = 0;
        this.busy = false;
        this.role = message.role;
        this.consultation = message.consultation;
        if (message.peer === "present") this.partnerLeft = false;
        this._setState(message.peer === "present" ? "live" : "waiting");
        this.dispatchEvent(new CustomEvent("welcome", { detail: message }));
        this._iceServers = message.ice_servers;
        await this._offer(message.ice_servers);
        break;
      case "answer":
        if (this.pc) await this.pc.setRemoteDescription({ type: "answer", sdp: message.sdp });
        break;
      case "peer":
        this.partnerLeft = message.state === "left";
        this._setState(message.state === "joined" ? "live" : "waiting");
        break;
      case "error":
        if (message.code === "server-busy") {
          // Room comes as calls end, not in a second: retry at the longest back-off.
          this.busy = true;
          this._attempt = BACKOFF_MS.length - 1;
        }
        this.dispatchEvent(new CustomEvent("error", { detail: message }));
        break;
      default:
        this.dispatchEvent(new CustomEvent("message", { detail: message }));
    }
  }

  async _offer(iceServers) {
    this._closePeer();
    const pc = new RTCPeerConnection({ iceServers });
    this.pc = pc;
    const remote = new MediaStream();
    let connected = false;
    this._mediaConnected = false;
    for (const kind of ["audio", "video"]) {
      const track = this.stream.getTracks().find((t) => t.kind === kind);
      const { sender } = pc.addTransceiver(track || kind, { direction: "sendrecv", streams: [this.stream] });
      if (kind === "video") {
        // Keep the hand sharp: under pressure drop frames, never resolution.
        const params = sender.getParameters();
        params.degradationPreference = "maintain-resolution";
        await sender.setParameters(params).catch(() => {});
      }
    }
    pc.ontrack = (event) => {
      remote.addTrack(event.track);
      this.dispatchEvent(new CustomEvent("remotestream", { detail: { stream: remote } }));
    };
    pc.onconnectionstatechange = () => {
      if (pc !== this.pc) return;
      clearTimeout(this._disconnectedTimer);
      if (pc.connectionState === "connected" && !connected) {
        connected = true;
        this._mediaConnected = true;
        this.blocked = false;
        this.dispatchEvent(new CustomEvent("connected"));
      }
      if (pc.connectionState === "failed" && !connected) {
        // Not one packet got through: UDP is likely blocked here (hotel or office Wi-Fi).
        // The websocket works (the chat too): no reconnecting, only a fresh offer later, or
        // at once when the browser says the network changed.
        this.blocked = true;
        this.dispatchEvent(new CustomEvent("blocked"));
        clearTimeout(this._reofferTimer);
        this._reofferTimer = setTimeout(() => this._reoffer(), BLOCKED_RETRY_MS);
        return;
      }
      if (pc.connectionState === "failed") this._restart();
      if (pc.connectionState === "disconnected") {
        this._disconnectedTimer = setTimeout(() => {
          if (pc === this.pc && pc.connectionState === "disconnected") this._restart();
        }, DISCONNECTED_GRACE_MS);
      }
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    if (pc === this.pc) this._send({ type: "offer", sdp: pc.localDescription.sdp });
  }

  // Take a still of the customer's hand (docs/stills.md): always after the customer's
  // countdown; `cue`: what to fix, for a retake.
  capture({ cue = [] } = {}) {
    return this._send({ type: "capture", cue });
  }

  // The stylist asks the customer for light or a closer view.
  ask(what) {
    return this._send({ type: "ask", what });
  }

  // The customer's upload as its own getStats() sees it, for the stylist's panel.
  sendStats(stats) {
    return this._send({ type: "stats", ...stats });
  }

  // Chat: false if not connected now (the chat resends it, with the same id, on welcome).
  chat(text, id) {
    return this._send({ type: "chat", text, id });
  }

  read(seq) {
    return this._send({ type: "read", seq });
  }

  // The stylist's palette: show a swatch on the customer's screen (null clears it), or mark
  // one as the customer's choice.
  showSwatch(swatchId) {
    return this._send({ type: "swatch", swatch_id: swatchId });
  }

  chooseSwatch(swatchId, chosen) {
    return this._send({ type: "choose", swatch_id: swatchId, chosen });
  }

  // Recording the call: "ask", "agree", "refuse" (each on one's own screen) or "stop".
  record(action) {
    return this._send({ type: "record", action });
  }

  _send(message) {
    if (!this._ws || this._ws.readyState !== WebSocket.OPEN) return false;
    this._ws.send(JSON.stringify(message));
    return true;
  }

  _closePeer() {
    clearTimeout(this._disconnectedTimer);
    clearTimeout(this._reofferTimer);
    if (this.pc) {
      this.pc.close();
      this.pc = null;
    }
  }

  _teardown() {
    clearTimeout(this._retryTimer);
    this._generation += 1; // ignore whatever the old connection still says
    this._closePeer();
    if (this._ws) this._ws.close(1000);
    this._ws = null;
  }

  dispose() {
    this._teardown();
    document.removeEventListener("visibilitychange", this._onWake);
    window.removeEventListener("online", this._onWake);
  }
}

// Non-trickle: the offer goes out with all its candidates.
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, GATHER_TIMEOUT_MS);
    pc.addEventListener("icegatheringstatechange", () => {
      if (pc.iceGatheringState === "complete") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}
