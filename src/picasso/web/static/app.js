// Picasso's pages: small progressive enhancements; every form also works without it.
"use strict";

const FINISHED = ["done", "failed", "cancelled", "interrupted"];
const RELOAD_DELAY_MS = 400;
const MAX_STREAMS = 4;

function modelSwitcher() {
  const select = document.getElementById("model-select");
  if (select) select.addEventListener("change", () => select.form.submit());
}

function dropzone() {
  const zone = document.getElementById("dropzone");
  const input = document.getElementById("files");
  const list = document.getElementById("chosen-files");
  if (!zone || !input) return;
  let previews = [];
  const show = () => {
    // A preview of each chosen image (the browser decodes it; nothing is uploaded yet).
    previews.forEach((url) => URL.revokeObjectURL(url));
    previews = [];
    list.replaceChildren(...Array.from(input.files).map((f) => {
      const item = document.createElement("li");
      if (f.type.startsWith("image/")) {
        const img = document.createElement("img");
        const url = URL.createObjectURL(f);
        previews.push(url);
        img.src = url;
        img.alt = "";
        img.className = "preview";
        item.append(img);
      }
      item.append(document.createTextNode(`${f.name} (${Math.ceil(f.size / 1024)} KB)`));
      return item;
    }));
  };
  input.addEventListener("change", show);
  ["dragenter", "dragover"].forEach((kind) => zone.addEventListener(kind, (e) => {
    e.preventDefault();
    zone.classList.add("over");
  }));
  ["dragleave", "drop"].forEach((kind) => zone.addEventListener(kind, () => zone.classList.remove("over")));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    if (e.dataTransfer && e.dataTransfer.files.length) {
      input.files = e.dataTransfer.files;
      show();
    }
  });
}

function methodPanels() {
  const form = document.querySelector("form.method-form");
  if (!form) return;
  const radios = form.querySelectorAll("input[name=method], input[name=also]");
  const update = () => {
    // The settings of every chosen visualization: the main one and the "also" ones.
    const chosen = new Set(Array.from(
      form.querySelectorAll("input[name=method]:checked, input[name=also]:checked"),
    ).map((input) => input.value));
    form.querySelectorAll(".settings-panel").forEach((panel) => {
      panel.hidden = !chosen.has(panel.dataset.method);
    });
  };
  radios.forEach((r) => r.addEventListener("change", update));
  update();
  form.addEventListener("submit", (e) => {
    const panels = Array.from(form.querySelectorAll(".settings-panel:not([hidden])"));
    const fields = panels.flatMap((panel) => Array.from(panel.querySelectorAll("input, select")));
    const bad = fields.find((f) => !f.checkValidity());
    if (bad) {
      e.preventDefault();
      bad.reportValidity();
    }
  });
}

function progressText(job) {
  // "12 / 225 · 3 s elapsed, about 40 s left": the remaining time from the pace so far.
  const { done, total } = job.progress;
  let line = `${done} / ${total || "?"}`;
  if (job.started) {
    const elapsed = Math.max(0, Date.now() / 1000 - job.started);
    line += ` · ${formatSeconds(elapsed)} elapsed`;
    if (done > 0 && total > done) line += `, about ${formatSeconds((elapsed * (total - done)) / done)} left`;
  }
  return line;
}

function formatSeconds(seconds) {
  if (seconds < 90) return `${Math.round(seconds)} s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

function liveJobs() {
  // Each stream holds a connection and browsers allow about six per server: follow a
  // few jobs live; the page reloads (and follows the next ones) when one finishes.
  Array.from(document.querySelectorAll("[data-events]")).slice(0, MAX_STREAMS).forEach((el) => {
    const source = new EventSource(el.dataset.events);
    const bar = el.querySelector("progress");
    const text = el.querySelector(".progress-text");
    const status = el.querySelector(".status");
    source.onmessage = (event) => {
      const job = JSON.parse(event.data);
      if (bar && job.progress.total) {
        bar.max = job.progress.total;
        bar.value = job.progress.done;
      }
      if (text) text.textContent = progressText(job);
      if (status) status.textContent = job.status;
      const preview = el.querySelector("figure.preview");
      if (preview && job.preview && preview.dataset.src !== job.preview) {
        // The partial map, drawn by the server as the job works.
        preview.dataset.src = job.preview;
        preview.querySelector("img").src = job.preview;
        preview.hidden = false;
      }
      el.dataset.status = job.status;
      if (FINISHED.includes(job.status)) {
        source.close();
        if (text) text.textContent += ` · ${job.status}, loading the result`;
        // Leave the full bar in view for a moment, then show the result.
        window.setTimeout(() => window.location.reload(), RELOAD_DELAY_MS);
      }
    };
    source.onerror = () => source.close();
  });
}

function parseNpy(buffer) {
  // NumPy .npy, version 1-3, little-endian float32 (what Picasso writes).
  const bytes = new Uint8Array(buffer);
  const major = bytes[6];
  const view = new DataView(buffer);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder().decode(bytes.slice(start, start + headerLength));
  if (!header.includes("<f4")) throw new Error("expected float32 maps");
  const shape = header.match(/\(([^)]*)\)/)[1].split(",").filter((s) => s.trim()).map(Number);
  return { shape, data: new Float32Array(buffer, start + headerLength) };
}

function displayControls(result) {
  // Draw the maps again under other display settings (the server renders them from
  // the raw maps and says the limits it drew in X-Picasso-Limits).
  const form = result.querySelector("form.display-controls");
  if (!form) return;
  const urls = new Map();
  const redraw = () => {
    const params = new URLSearchParams(new FormData(form));
    if (!params.get("colormap")) params.delete("colormap");
    result.querySelectorAll("img.heat, img.colorbar").forEach((img) => {
      const base = img.dataset.base || img.src.split("?")[0];
      img.dataset.base = base;
      fetch(`${base}?${params}`).then((response) => {
        if (!response.ok) throw new Error(String(response.status));
        const limits = (response.headers.get("X-Picasso-Limits") || "").split(",");
        return response.blob().then((blob) => ({ blob, limits }));
      }).then(({ blob, limits }) => {
        if (urls.has(img)) URL.revokeObjectURL(urls.get(img));
        const url = URL.createObjectURL(blob);
        urls.set(img, url);
        img.src = url;
        if (img.classList.contains("colorbar") && limits.length === 3) {
          const legend = img.closest(".legend");
          legend.querySelector(".lo").textContent = Number(limits[0]).toPrecision(3);
          legend.querySelector(".hi").textContent = Number(limits[1]).toPrecision(3);
          const mid = legend.querySelector(".mid");
          if (mid) mid.hidden = limits[2] !== "1";
        }
      }).catch(() => {});
    });
  };
  form.addEventListener("change", redraw);
  form.addEventListener("submit", (e) => { e.preventDefault(); redraw(); });
}

function results() {
  // Colour swatches of a segmentation's legend (styles set from script: the page's CSP
  // allows no inline style attributes).
  document.querySelectorAll(".swatch[data-colour]").forEach((swatch) => {
    swatch.style.background = swatch.dataset.colour;
  });
  document.querySelectorAll(".result[data-npy]").forEach((result) => {
    displayControls(result);
    const tabs = result.querySelectorAll(".tab");
    const panels = result.querySelectorAll(".target-panel");
    tabs.forEach((tab) => tab.addEventListener("click", () => {
      tabs.forEach((t) => t.setAttribute("aria-selected", String(t === tab)));
      panels.forEach((p) => { p.hidden = p.dataset.index !== tab.dataset.index; });
    }));
    panels.forEach((panel) => {
      const heat = panel.querySelector("img.heat");
      const slider = panel.querySelector("input.opacity");
      const readout = panel.querySelector(".readout");
      if (slider && heat) {
        const apply = () => { heat.style.opacity = String(slider.value / 100); };
        slider.addEventListener("input", apply);
        apply();
      }
      let maps = null;
      let last = null;
      const stack = panel.querySelector(".stack");
      if (!stack || !readout) return;
      const show = () => {
        if (!maps || !last) return;
        const [, h, w] = maps.shape;
        const box = stack.getBoundingClientRect();
        const x = Math.min(w - 1, Math.floor(((last.clientX - box.left) / box.width) * w));
        const y = Math.min(h - 1, Math.floor(((last.clientY - box.top) / box.height) * h));
        const k = Number(panel.dataset.index);
        const value = maps.data[k * h * w + y * w + x];
        readout.textContent = `value at (${x}, ${y}): ${value.toPrecision(4)}`;
      };
      let loading = null;
      stack.addEventListener("mousemove", (e) => {
        last = { clientX: e.clientX, clientY: e.clientY };
        if (!loading) {
          // The raw maps are fetched once, on the first hover.
          loading = fetch(result.dataset.npy)
            .then((response) => response.arrayBuffer())
            .then((buffer) => { maps = parseNpy(buffer); show(); })
            .catch(() => { readout.textContent = "values unavailable"; });
        }
        show();
      });
    });
  });
}

function explore() {
  // The explore page: paint a mask over the image (at the model's input size) and ask
  // POST /api/v1/predict for the probabilities with those pixels hidden. One request in
  // flight at a time: while one runs, only the latest state waits to be sent.
  const root = document.getElementById("explore");
  if (!root) return;
  const W = Number(root.dataset.width);
  const H = Number(root.dataset.height);
  const view = document.getElementById("explore-paint");
  const ctx = view.getContext("2d");
  const mask = document.createElement("canvas"); // white = painted, transparent = not
  mask.width = W;
  mask.height = H;
  const mctx = mask.getContext("2d");
  const $ = (id) => document.getElementById(id);
  const status = $("explore-status");
  const bars = $("explore-bars").querySelector("tbody");
  const brush = $("brush-size");
  const patchSize = $("patch-size");
  const patchStep = $("patch-step");
  const fill = $("fill");
  const fillCustom = $("fill-custom");
  const invert = $("invert");
  const target = $("target");
  const patchReadout = $("patch-readout");
  const undoButton = $("undo");
  const redoButton = $("redo");
  const overlay = $("explore-overlay");
  const overlaySelect = $("overlay-select");
  const overlayOpacity = $("overlay-opacity");
  const undo = [];
  const redo = [];
  const MAX_UNDO = 50;
  let painted = false; // whether the mask holds any paint
  let stroke = null; // {x, y} of the last brush point, or the rectangle's corner
  let rect = null; // the rectangle being dragged: {x0, y0, x1, y1}
  let patch = null; // the patch's box [x0, y0, x1, y1]
  let inFlight = false;
  let waiting = null; // the latest request body not yet sent
  let lastSent = "";
  let timer = null;
  let original = null; // the first answer: the image with nothing hidden

  const tool = () => root.querySelector("input[name=tool]:checked").value;
  const fillValue = () => {
    if (fill.value === "mean" || fill.value === "blur") return fill.value;
    const value = fill.value === "custom" ? Number(fillCustom.value) : Number(fill.value);
    return Number.isFinite(value) ? value : 0;
  };
  const size = () => Math.max(1, Math.min(W, H, Math.round(Number(patchSize.value) || 1)));
  const step = () => Math.max(1, Math.round(Number(patchStep.value) || 1));
  const hideRule = (extra) => ({ fill: fillValue(), blur_window: size(), ...extra });

  function body() {
    // What the server is asked now: the patch alone (patch tool), or the painted mask.
    const base = { model: root.dataset.model, image: root.dataset.image, top_k: 5 };
    if (target.value !== "") base.target = Number(target.value);
    if (tool() === "patch") {
      if (patch) base.hide = hideRule({ boxes: [patch] });
    } else if (painted || invert.checked) {
      base.hide = hideRule({ png: mask.toDataURL("image/png"), invert: invert.checked });
    }
    return base;
  }

  function draw() {
    // Hidden pixels are shown dark; the patch as a dark square with an outline.
    ctx.clearRect(0, 0, W, H);
    ctx.save();
    if (tool() === "patch") {
      if (patch) {
        ctx.fillStyle = "rgba(20, 24, 32, 0.75)";
        ctx.fillRect(patch[0], patch[1], patch[2] - patch[0], patch[3] - patch[1]);
      }
    } else {
      if (invert.checked) {
        ctx.fillStyle = "rgba(20, 24, 32, 0.75)";
        ctx.fillRect(0, 0, W, H);
        ctx.globalCompositeOperation = "destination-out";
        ctx.drawImage(mask, 0, 0);
      } else {
        ctx.drawImage(mask, 0, 0);
        ctx.globalCompositeOperation = "source-in";
        ctx.fillStyle = "rgba(20, 24, 32, 0.75)";
        ctx.fillRect(0, 0, W, H);
      }
      ctx.globalCompositeOperation = "source-over";
      if (rect) {
        ctx.strokeStyle = "#ffcc33";
        ctx.lineWidth = 1;
        ctx.strokeRect(rect.x0 + 0.5, rect.y0 + 0.5, rect.x1 - rect.x0 - 1, rect.y1 - rect.y0 - 1);
      }
    }
    ctx.restore();
  }

  function settle() {
    // data-settled="true": the answer shown is for what is on the canvas (tests wait on it).
    root.dataset.settled = String(!inFlight && !waiting && timer === null);
  }

  function request(now) {
    // Coalesce: remember the latest state; send it when nothing is in flight.
    window.clearTimeout(timer);
    timer = null;
    const send = () => {
      timer = null;
      const b = body();
      if (JSON.stringify(b) !== lastSent || now) waiting = b;
      pump();
      settle();
    };
    if (now) send();
    else {
      timer = window.setTimeout(send, 30);
      settle();
    }
  }

  function pump() {
    if (inFlight || !waiting) return;
    const b = waiting;
    waiting = null;
    inFlight = true;
    lastSent = JSON.stringify(b);
    const started = performance.now();
    fetch("/api/v1/predict", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(b),
    }).then((response) => response.json().then((json) => ({ ok: response.ok, json })))
      .then(({ ok, json }) => {
        if (!ok) throw new Error(typeof json.detail === "string" ? json.detail : JSON.stringify(json.detail));
        show(json, b, performance.now() - started);
      })
      .catch((error) => {
        status.textContent = `the model could not answer: ${error.message}`;
        status.classList.add("field-error");
      })
      .finally(() => {
        inFlight = false;
        pump();
        settle();
      });
  }

  function show(json, sent, ms) {
    if (!original) {
      original = json;
      if (!target.options.length) {
        json.classes.forEach((c) => target.add(new Option(c.label, String(c.index))));
      }
      target.value = String(json.classes[0].index);
      request(true);
    }
    status.classList.remove("field-error");
    const hidden = (json.hidden * 100).toFixed(1);
    status.textContent = `${hidden} % of the image hidden · answered in ${Math.round(ms)} ms`;
    root.dataset.hidden = String(json.hidden);
    bars.replaceChildren(...json.classes.map((c) => {
      const row = document.createElement("tr");
      row.dataset.index = String(c.index);
      row.dataset.probability = String(c.probability);
      const name = document.createElement("td");
      name.textContent = c.label;
      const bar = document.createElement("td");
      bar.className = "prob-cell";
      bar.innerHTML = '<span class="prob-bar"><span class="now"></span><span class="was"></span></span> <span class="value"></span>';
      bar.querySelector(".now").style.width = `${(c.probability * 100).toFixed(2)}%`;
      bar.querySelector(".was").style.left = `${(c.original * 100).toFixed(2)}%`;
      bar.querySelector(".value").textContent = c.probability.toFixed(3);
      const change = document.createElement("td");
      change.className = c.change < -0.0005 ? "down" : (c.change > 0.0005 ? "up" : "");
      change.textContent = `${c.change >= 0 ? "+" : "−"}${Math.abs(c.change).toFixed(3)}`;
      row.append(name, bar, change);
      return row;
    }));
    if (json.target && sent.hide && sent.hide.boxes) {
      const [x0, y0] = sent.hide.boxes[0];
      const t = json.target;
      patchReadout.textContent = `p(${t.label}) with the patch at (${x0}, ${y0}): ${t.probability.toFixed(4)} · original ${t.original.toFixed(4)} · drop ${t.drop.toFixed(4)}`;
      patchReadout.dataset.drop = String(t.drop);
      patchReadout.dataset.x = String(x0);
      patchReadout.dataset.y = String(y0);
    }
    root.dataset.answers = String(Number(root.dataset.answers || 0) + 1);
  }

  function point(e) {
    const box = view.getBoundingClientRect();
    return {
      x: Math.max(0, Math.min(W - 1e-6, ((e.clientX - box.left) / box.width) * W)),
      y: Math.max(0, Math.min(H - 1e-6, ((e.clientY - box.top) / box.height) * H)),
    };
  }

  function remember() {
    undo.push(mctx.getImageData(0, 0, W, H));
    if (undo.length > MAX_UNDO) undo.shift();
    redo.length = 0;
    buttons();
  }

  function buttons() {
    undoButton.disabled = !undo.length;
    redoButton.disabled = !redo.length;
  }

  function restore(from, to) {
    if (!from.length) return;
    to.push(mctx.getImageData(0, 0, W, H));
    mctx.putImageData(from.pop(), 0, 0);
    painted = hasPaint();
    buttons();
    draw();
    request();
  }

  function hasPaint() {
    const data = mctx.getImageData(0, 0, W, H).data;
    for (let i = 3; i < data.length; i += 4) if (data[i] >= 128) return true;
    return false;
  }

  function dab(from, to) {
    mctx.strokeStyle = "#fff";
    mctx.fillStyle = "#fff";
    mctx.lineCap = "round";
    mctx.lineWidth = Number(brush.value);
    mctx.beginPath();
    mctx.moveTo(from.x, from.y);
    mctx.lineTo(to.x, to.y);
    mctx.stroke();
    mctx.beginPath();
    mctx.arc(to.x, to.y, Number(brush.value) / 2, 0, 2 * Math.PI);
    mctx.fill();
    painted = true;
  }

  function placePatch(p) {
    // Windows start on multiples of the step, as occlusion's do with that stride.
    const s = size();
    const st = step();
    const last = Math.max(0, Math.ceil((W - s) / st)) * st;
    const lastY = Math.max(0, Math.ceil((H - s) / st)) * st;
    const x0 = Math.max(0, Math.min(last, Math.round((p.x - s / 2) / st) * st));
    const y0 = Math.max(0, Math.min(lastY, Math.round((p.y - s / 2) / st) * st));
    const next = [x0, y0, Math.min(W, x0 + s), Math.min(H, y0 + s)];
    if (patch && next.every((v, i) => v === patch[i])) return;
    patch = next;
    draw();
    request();
  }

  view.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    view.focus();
    view.setPointerCapture(e.pointerId);
    const p = point(e);
    if (tool() === "patch") {
      placePatch(p);
      return;
    }
    remember();
    if (tool() === "brush") {
      stroke = p;
      dab(p, p);
      draw();
      request();
    } else {
      stroke = p;
      rect = { x0: Math.floor(p.x), y0: Math.floor(p.y), x1: Math.ceil(p.x), y1: Math.ceil(p.y) };
      draw();
    }
  });
  view.addEventListener("pointermove", (e) => {
    const p = point(e);
    if (tool() === "patch") {
      if (e.pointerType === "mouse" || e.buttons) placePatch(p);
      return;
    }
    if (!stroke) return;
    if (tool() === "brush") {
      dab(stroke, p);
      stroke = p;
      draw();
      request();
    } else {
      rect = {
        x0: Math.floor(Math.min(stroke.x, p.x)),
        y0: Math.floor(Math.min(stroke.y, p.y)),
        x1: Math.ceil(Math.max(stroke.x, p.x)),
        y1: Math.ceil(Math.max(stroke.y, p.y)),
      };
      draw();
    }
  });
  const end = () => {
    if (rect) {
      mctx.fillStyle = "#fff";
      mctx.fillRect(rect.x0, rect.y0, Math.max(1, rect.x1 - rect.x0), Math.max(1, rect.y1 - rect.y0));
      painted = true;
      rect = null;
      draw();
      request();
    }
    stroke = null;
  };
  view.addEventListener("pointerup", end);
  view.addEventListener("pointercancel", end);

  view.addEventListener("keydown", (e) => {
    // The patch moves with the arrow keys, one step at a time.
    if (tool() !== "patch") return;
    const moves = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
    if (!moves[e.key]) return;
    e.preventDefault();
    const s = size();
    const [dx, dy] = moves[e.key];
    const x = (patch ? patch[0] : 0) + dx * step() + s / 2;
    const y = (patch ? patch[1] : 0) + dy * step() + s / 2;
    placePatch({ x, y });
  });

  document.addEventListener("keydown", (e) => {
    const typing = e.target.matches && e.target.matches("input[type=number], input[type=text], select");
    if ((e.ctrlKey || e.metaKey) && (e.key === "z" || e.key === "Z" || e.key === "y")) {
      e.preventDefault();
      if (e.key === "y" || e.shiftKey) restore(redo, undo);
      else restore(undo, redo);
      return;
    }
    if (typing || e.ctrlKey || e.metaKey || e.altKey) return;
    const tools = { b: "brush", r: "rect", p: "patch" };
    if (tools[e.key]) {
      const radio = root.querySelector(`input[name=tool][value=${tools[e.key]}]`);
      radio.checked = true;
      radio.dispatchEvent(new Event("change", { bubbles: true }));
    } else if (e.key === "[" || e.key === "]") {
      brush.value = String(Number(brush.value) + (e.key === "]" ? 1 : -1));
      brush.dispatchEvent(new Event("input"));
    }
  });

  root.querySelectorAll("input[name=tool]").forEach((r) => r.addEventListener("change", () => {
    view.dataset.tool = tool();
    draw();
    request();
  }));
  const brushOut = $("brush-size-out");
  brush.addEventListener("input", () => { brushOut.textContent = brush.value; });
  brushOut.textContent = brush.value;
  [patchSize, patchStep].forEach((input) => input.addEventListener("change", () => {
    if (patch) placePatch({ x: patch[0] + size() / 2, y: patch[1] + size() / 2 });
    request();
  }));
  fill.addEventListener("change", () => {
    $("fill-custom-label").hidden = fill.value !== "custom";
    request();
  });
  fillCustom.addEventListener("change", () => request());
  invert.addEventListener("change", () => { draw(); request(); });
  target.addEventListener("change", () => request(true));
  undoButton.addEventListener("click", () => restore(undo, redo));
  redoButton.addEventListener("click", () => restore(redo, undo));
  $("clear").addEventListener("click", () => {
    if (!painted && !patch) return;
    remember();
    mctx.clearRect(0, 0, W, H);
    painted = false;
    patch = null;
    draw();
    request();
  });

  const showOverlay = () => {
    const id = overlaySelect.value;
    overlay.hidden = !id;
    if (id) overlay.src = `/api/v1/jobs/${id}/layers/map-0.png`;
    overlay.style.opacity = String(overlayOpacity.value / 100);
  };
  overlaySelect.addEventListener("change", showOverlay);
  overlayOpacity.addEventListener("input", showOverlay);
  showOverlay();

  $("save").addEventListener("click", () => {
    // A job like any other (class probabilities with these pixels hidden).
    const b = body();
    const job = { model: b.model, image: b.image, method: "class-probabilities", settings: {} };
    if (b.hide) job.hide = b.hide;
    fetch("/api/v1/jobs", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(job),
    }).then((response) => response.json().then((json) => ({ ok: response.ok, json })))
      .then(({ ok, json }) => {
        if (!ok) throw new Error(typeof json.detail === "string" ? json.detail : JSON.stringify(json.detail));
        window.location.href = `/jobs/${json.id}`;
      })
      .catch((error) => {
        status.textContent = `could not save: ${error.message}`;
        status.classList.add("field-error");
      });
  });

  view.dataset.tool = tool();
  draw();
  request(true);
}

function segmentPicker() {
  // A segmentation result: a click picks the class under the pointer (read from
  // labels.png, the class index of every pixel), a drag draws a region box.
  const figure = document.getElementById("segment-picker");
  if (!figure) return;
  const canvas = figure.querySelector("canvas.pick-box");
  const select = figure.querySelector("select.pick-class");
  const region = figure.querySelector("input.pick-region");
  const ctx = canvas.getContext("2d");
  const W = canvas.width;
  const H = canvas.height;
  let labels = null;
  const image = new Image();
  image.onload = () => {
    const off = document.createElement("canvas");
    off.width = W;
    off.height = H;
    const offCtx = off.getContext("2d");
    offCtx.drawImage(image, 0, 0);
    labels = offCtx.getImageData(0, 0, W, H).data;
    figure.dataset.ready = "true";
  };
  image.src = figure.dataset.labels;
  const at = (e, snap = Math.round) => {
    // Box corners snap to pixel edges (round); a click names the pixel under it (floor).
    const box = canvas.getBoundingClientRect();
    return {
      x: Math.max(0, Math.min(W, snap(((e.clientX - box.left) / box.width) * W))),
      y: Math.max(0, Math.min(H, snap(((e.clientY - box.top) / box.height) * H))),
    };
  };
  let start = null;
  const draw = (a, b) => {
    ctx.clearRect(0, 0, W, H);
    if (!a || !b) return;
    ctx.strokeStyle = "#ffcc33";
    ctx.lineWidth = Math.max(1, W / 128);
    ctx.strokeRect(Math.min(a.x, b.x), Math.min(a.y, b.y), Math.abs(b.x - a.x), Math.abs(b.y - a.y));
  };
  canvas.addEventListener("pointerdown", (e) => {
    e.preventDefault();
    canvas.setPointerCapture(e.pointerId);
    start = at(e);
  });
  canvas.addEventListener("pointermove", (e) => { if (start) draw(start, at(e)); });
  canvas.addEventListener("pointerup", (e) => {
    if (!start) return;
    const end = at(e);
    if (Math.abs(end.x - start.x) < 2 && Math.abs(end.y - start.y) < 2) {
      draw(null, null);
      region.value = "";
      if (labels) {  // a click: the class of that pixel
        const pixel = at(e, Math.floor);
        const x = Math.min(W - 1, pixel.x);
        const y = Math.min(H - 1, pixel.y);
        const value = String(labels[(y * W + x) * 4]);
        if (Array.from(select.options).some((o) => o.value === value)) select.value = value;
      }
    } else {
      draw(start, end);
      region.value = [Math.min(start.x, end.x), Math.min(start.y, end.y),
        Math.max(start.x, end.x), Math.max(start.y, end.y)].join(",");
    }
    start = null;
  });
}

function detectionPicker() {
  // A detection result: a click picks the smallest drawn box under the pointer (boxes
  // overlap; the smallest is the one a click inside it most plausibly means).
  const figure = document.getElementById("detection-picker");
  if (!figure) return;
  const svg = figure.querySelector("svg.boxes");
  const select = figure.querySelector("select.pick-detection");
  const boxes = Array.from(svg.querySelectorAll("rect.box"));
  const view = svg.viewBox.baseVal;
  const mark = () => {
    for (const box of boxes) box.classList.toggle("picked", box.dataset.index === select.value);
  };
  svg.addEventListener("click", (e) => {
    const area = svg.getBoundingClientRect();
    const x = ((e.clientX - area.left) / area.width) * view.width;
    const y = ((e.clientY - area.top) / area.height) * view.height;
    let best = null;
    let smallest = Infinity;
    for (const box of boxes) {
      const [bx, by, bw, bh] = ["x", "y", "width", "height"].map((k) => Number(box.getAttribute(k)));
      if (x >= bx && x <= bx + bw && y >= by && y <= by + bh && bw * bh < smallest) {
        best = box;
        smallest = bw * bh;
      }
    }
    if (!best) return;
    select.value = best.dataset.index;
    mark();
  });
  select.addEventListener("change", mark);
}

document.addEventListener("DOMContentLoaded", () => {
  modelSwitcher();
  dropzone();
  methodPanels();
  liveJobs();
  results();
  explore();
  segmentPicker();
  detectionPicker();
});
