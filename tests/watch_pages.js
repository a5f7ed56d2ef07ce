// Test instruments, installed before a page's own scripts (tests/test_inbox_pages.py): what
// the page asked of the camera, the notifications it showed and the tones it played.
window.__watch = { camera: 0, notifications: [], tones: 0 };
const realGetUserMedia = navigator.mediaDevices?.getUserMedia?.bind(navigator.mediaDevices);
if (realGetUserMedia) {
  navigator.mediaDevices.getUserMedia = (constraints) => {
    window.__watch.camera += 1;
    return realGetUserMedia(constraints);
  };
}
const RealNotification = window.Notification;
if (RealNotification) {
  window.Notification = class extends RealNotification {
    constructor(title, options) {
      super(title, options);
      window.__watch.notifications.push(title);
    }
  };
  Object.defineProperty(window.Notification, "permission", { get: () => RealNotification.permission });
  window.Notification.requestPermission = (...args) => RealNotification.requestPermission(...args);
}
const realStart = OscillatorNode.prototype.start;
OscillatorNode.prototype.start = function (...args) {
  window.__watch.tones += 1;
  return realStart.apply(this, args);
};
