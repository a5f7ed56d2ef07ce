// The stylist's connection quality indicator, from the peer connection's getStats():
// round-trip time, packet loss and the customer's video as it arrives (size and frame rate).

const INTERVAL_MS = 2000;

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

function grade(rtt, loss) {
  if (loss > 0.05 || (rtt != null && rtt > 400)) return "poor";
  if (loss > 0.01 || (rtt != null && rtt > 200)) return "fair";
  return "good";
}
