// Where a code comes from besides the USB scanner: the camera and an image file (chosen or dropped).
// The browser's BarcodeDetector decodes when it has one; otherwise the vendored jsQR does.
import { bi } from "./common.js";

let detector = null;
let detectorBroken = false;
const canvas = document.createElement("canvas");

async function withDetector(source) {
  if (detectorBroken || !("BarcodeDetector" in window)) return undefined;
  try {
    detector ??= new window.BarcodeDetector({ formats: ["qr_code"] });
    const codes = await detector.detect(source);
    return codes.length ? codes[0].rawValue : null;
  } catch {
    detectorBroken = true; // e.g. QR not among this platform's formats
    return undefined;
  }
}

function withJsQR(source, width, height) {
  if (!window.jsQR || !width || !height) return null;
  // Large photos are scaled down for speed; tiny images scaled up so modules are several pixels wide.
  const scale = Math.max(width, height) > 1600 ? 1600 / Math.max(width, height) : Math.max(1, Math.floor(800 / Math.max(width, height)));
  canvas.width = Math.round(width * scale);
  canvas.height = Math.round(height * scale);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.imageSmoothingEnabled = scale < 1;
  context.fillStyle = "#fff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.drawImage(source, 0, 0, canvas.width, canvas.height);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height);
  const code = window.jsQR(pixels.data, canvas.width, canvas.height, { inversionAttempts: "attemptBoth" });
  return code && code.data ? code.data : null;
}

/** The text of the first QR code in an image, video frame or bitmap, or null. */
export async function decode(source, width, height) {
  const found = await withDetector(source);
  return found === undefined ? withJsQR(source, width, height) : found;
}

async function decodeFile(file) {
  const bitmap = await createImageBitmap(file);
  try {
    return await decode(bitmap, bitmap.width, bitmap.height);
  } finally {
    bitmap.close();
  }
}

export function setupSources({ submit, notice }) {
  const $ = (id) => document.getElementById(id);
  const image = $("image");
  const hint = $("drop-hint");

  async function fromFile(file) {
    if (!file || !file.type.startsWith("image/")) {
      notice("请选择或拖入亮证码图片", "Please choose or drop an image of the code");
      return;
    }
    let text = null;
    try {
      text = await decodeFile(file);
    } catch {
      text = null;
    }
    if (text) submit(text);
    else notice("图片中未识别到亮证码", "No QR code found in the image");
  }

  image.addEventListener("change", () => {
    const file = image.files[0];
    image.value = "";
    fromFile(file);
  });
  // The label styled as a button opens the file chooser with Enter or Space too.
  $("image-label").tabIndex = 0;
  $("image-label").addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      image.click();
    }
  });

  const hasFiles = (event) => Array.from(event.dataTransfer?.types || []).includes("Files");
  let depth = 0;
  document.addEventListener("dragenter", (event) => {
    if (!hasFiles(event) || $("desk").hidden) return;
    depth += 1;
    hint.hidden = false;
  });
  document.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) hint.hidden = true;
  });
  document.addEventListener("dragover", (event) => {
    if (hasFiles(event)) event.preventDefault();
  });
  document.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth = 0;
    hint.hidden = true;
    if (!$("desk").hidden) fromFile(event.dataTransfer.files[0]);
  });

  setupCamera({ submit, notice });
}

function setupCamera({ submit, notice }) {
  const button = document.getElementById("camera");
  const box = document.getElementById("camera-box");
  const video = document.getElementById("video");
  if (!navigator.mediaDevices?.getUserMedia) return; // http on a LAN address: no camera, scanner only
  button.hidden = false;
  let stream = null;
  let timer = 0;

  function stop() {
    clearTimeout(timer);
    stream?.getTracks().forEach((track) => track.stop());
    stream = null;
    video.srcObject = null;
    box.hidden = true;
    bi(button, "摄像头扫码", "Camera");
  }

  async function tick() {
    if (!stream) return;
    if (video.readyState >= 2) {
      const text = await decode(video, video.videoWidth, video.videoHeight);
      if (text && stream) {
        stop();
        submit(text);
        return;
      }
    }
    timer = setTimeout(tick, 250);
  }

  async function start() {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    } catch {
      stream = null;
      notice("无法打开摄像头", "Cannot open the camera");
      return;
    }
    video.srcObject = stream;
    box.hidden = false;
    bi(button, "关闭摄像头", "Close camera");
    await video.play().catch(() => {});
    tick();
  }

  button.addEventListener("click", () => (stream ? stop() : start()));
  document.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && stream) stop();
  });
}
