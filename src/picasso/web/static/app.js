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

document.addEventListener("DOMContentLoaded", () => {
  modelSwitcher();
  dropzone();
  methodPanels();
  liveJobs();
  results();
});
