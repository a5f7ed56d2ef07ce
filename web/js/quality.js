// Connection quality from the peer connection's getStats(): the stylist's own link (round trip,
// loss, the video as it arrives), and the customer's upload (the leg that carries the hand),
// measured on the customer's page and reported to the server (docs/protocol.md, "stats").

const INTERVAL_MS = 2000;
// How often the customer's page reports its upload: a few times a minute.
export const UPLOAD_REPORT_MS = 10000;

export function watchQuality(getPeer, render) {
  let previous = null;
  const timer = setInterval(async () => {
    const pc = getPeer();
    if (!pc || pc.connectionState === "closed") {
      previous = null;
      render(null);
      return;
    }
    const report = await pc.getStats();
    const sample = { rtt: null, lost: 0, received: 0, width: 0, height: 0, fps: 0 };
    report.forEach((stat) => {
      if (stat.type === "candidate-pair" && stat.nominated && stat.currentRoundTripTime != null) {
        sample.rtt = stat.currentRoundTripTime * 1000;
      }
      if (stat.type === "inbound-rtp" && !stat.isRemote) {
        sample.lost += stat.packetsLost || 0;
        sample.received += stat.packetsReceived || 0;
        if (stat.kind === "video") {
          sample.width = stat.frameWidth || 0;
          sample.height = stat.frameHeight || 0;
          sample.fps = stat.framesPerSecond || 0;
        }
      }
    });
    // Loss over the last interval, not since the call began.
    let loss = 0;
    if (previous) {
      const lost = sample.lost - previous.lost;
      const total = lost + sample.received - previous.received;
      loss = total > 0 ? Math.max(0, lost) / total : 0;
    }
    previous = sample;
    render({ ...sample, loss, grade: grade(sample.rtt, loss) });
  }, INTERVAL_MS);
  return () => clearInterval(timer);
}

// The customer's outgoing video over each interval: size, frame rate, bitrate, the loss the
// server reports back (RTCP), and why the browser holds it back, if it does.
export function watchUpload(getPeer, report, interval = UPLOAD_REPORT_MS) {
  let previous = null;
  const tick = async () => {
    const pc = getPeer();
    if (!pc || pc.connectionState !== "connected") {
      previous = null;
      return;
    }
    const stats = await pc.getStats();
    const now = { at: performance.now(), bytes: 0, sent: 0, lost: 0, rtt: null, video: null };
    stats.forEach((stat) => {
      if (stat.type === "outbound-rtp" && stat.kind === "video") {
        now.bytes += stat.bytesSent || 0;
        now.sent += stat.packetsSent || 0;
        now.video = {
          width: stat.frameWidth || 0,
          height: stat.frameHeight || 0,
          fps: stat.framesPerSecond || 0,
          limit: ["none", "cpu", "bandwidth"].includes(stat.qualityLimitationReason) ? stat.qualityLimitationReason : stat.qualityLimitationReason ? "other" : "none",
        };
      }
      if (stat.type === "remote-inbound-rtp" && stat.kind === "video") now.lost += Math.max(0, stat.packetsLost || 0);
      if (stat.type === "candidate-pair" && stat.nominated && stat.currentRoundTripTime != null) {
        now.rtt = stat.currentRoundTripTime * 1000;
      }
    });
    if (previous && now.video) {
      const seconds = (now.at - previous.at) / 1000;
      const sent = now.sent - previous.sent;
      const lost = Math.max(0, now.lost - previous.lost);
      const video = {
        ...now.video,
        kbps: Math.max(0, (now.bytes - previous.bytes) * 8 / 1000 / seconds),
        loss: sent + lost > 0 ? Math.min(1, lost / (sent + lost)) : 0,
      };
      report({ video, rtt_ms: now.rtt, grade: uploadGrade(video, now.rtt) });
    }
    previous = now;
  };
  // A first figure soon after joining, then a few a minute.
  const early = [setTimeout(tick, 2000), setTimeout(tick, 4000)];
  const timer = setInterval(tick, interval);
  return () => {
    early.forEach(clearTimeout);
    clearInterval(timer);
  };
}

function grade(rtt, loss) {
  if (loss > 0.05 || (rtt != null && rtt > 400)) return "poor";
  if (loss > 0.01 || (rtt != null && rtt > 200)) return "fair";
  return "good";
}

// The upload carries the hand: a picture too small or too slow is as bad as loss.
export function uploadGrade(video, rtt) {
  if (!video || video.width === 0) return "poor";
  const base = grade(rtt, video.loss);
  if (base === "poor" || video.height < 360 || video.fps < 10 || video.kbps < 300) return "poor";
  if (base === "fair" || video.height < 720 || video.fps < 20 || video.kbps < 1000) return "fair";
  return "good";
}
