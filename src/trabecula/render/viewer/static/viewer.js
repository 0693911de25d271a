/*
 * trabecula browser viewer: linked MPR (axial, coronal, sagittal) and 3-D views of several volumes, side by
 * side, on NiiVue (the global `niivue`, loaded before this script from the package's vendored bundle).
 *
 * The page (served by `trabecula view`, or embedded in a report opened from file://) holds
 *   - one panel per volume: <div class="tv-panel" data-index=i> with a <canvas class="tv-canvas">,
 *   - the configuration as JSON in <script type="application/json" id="tv-config-ROOT">,
 * and calls trabeculaViewer.start(rootId). Every volume is fetched from its `url` (an http URL served by
 * trabecula, or a data: URL embedded in the report) as NIfTI bytes.
 *
 * World coordinates: NiiVue works in NIfTI RAS millimetres; trabecula's frame is LPS with (z, y, x) order, so
 * LPS (z, y, x) = (ras[2], -ras[1], -ras[0]). The cursor is linked across volumes by world position, and
 * window/level across volumes that share the same units.
 *
 * For tests and scripting: trabeculaViewer.ready (all volumes drawn), .errors, .setCursorLPS([z,y,x]),
 * .cursorLPS(i), .setWindow(i, level, width), .window(i), .setLayout(name), .setClip(on, depth, azi, elev),
 * .tileRect(i, view) (CSS pixels of the slice image, or of the 3-D view, inside panel i's canvas), .nv(i) (the Niivue instance).
 */
(function () {
  "use strict";

  const T = { ready: false, loaded: 0, errors: [], viewers: [], config: null, linked: true, active: null, timings: [] };
  window.trabeculaViewer = T;

  const LAYOUTS = ["multiplanar", "axial", "coronal", "sagittal", "render"];

  function fail(msg) {
    T.errors.push(String(msg));
    console.error("trabecula viewer: " + msg);
    const banner = document.querySelector(".tv-error");
    if (banner) {
      banner.textContent = "viewer error: " + T.errors.join("; ");
      banner.hidden = false;
    }
  }

  function fmt(x, digits) {
    if (x === null || x === undefined || !isFinite(x)) return "–";
    const d = digits === undefined ? 4 : digits;
    return Number(x).toPrecision(d).replace(/\.?0+$/, "").replace(/\.?0+e/, "e");
  }

  function rasToLps(mm) { return [mm[2], -mm[1], -mm[0]]; }  // (z, y, x) LPS
  function lpsToRas(zyx) { return [-zyx[2], -zyx[1], zyx[0]]; }

  function sliceType(nv, name) {
    return {
      multiplanar: nv.sliceTypeMultiplanar, axial: nv.sliceTypeAxial, coronal: nv.sliceTypeCoronal,
      sagittal: nv.sliceTypeSagittal, render: nv.sliceTypeRender,
    }[name];
  }

  function q(root, sel) { return root.querySelector(sel); }

  // ------------------------------------------------------------------------------------------ window/level
  function applyWindow(v, level, width, propagate) {
    if (!(width > 0) || !isFinite(level)) return;
    const vol = v.nv.volumes[0];
    if (!vol) return;
    vol.cal_min = level - width / 2;
    vol.cal_max = level + width / 2;
    v.nv.updateGLVolume();
    v.level = level; v.width = width;
    v.levelInput.value = fmt(level, 6);
    v.widthInput.value = fmt(width, 6);
    if (propagate && T.linked) {
      for (const o of T.viewers) {
        if (o !== v && o.info.units === v.info.units) applyWindow(o, level, width, false);
      }
    }
  }

  function readWindowFromNiivue(v) {
    const vol = v.nv.volumes[0];
    if (!vol) return;
    const level = (vol.cal_max + vol.cal_min) / 2, width = vol.cal_max - vol.cal_min;
    if (Math.abs(level - v.level) > 1e-9 || Math.abs(width - v.width) > 1e-9) applyWindow(v, level, width, true);
  }

  // ---------------------------------------------------------------------------------------------- cursor
  // Only the viewer the user is working in (last pointer/wheel/key event on its canvas) drives the others:
  // NiiVue also fires location events on the other canvases (e.g. when it syncs their 3-D views), and those
  // must not echo back.
  let syncing = false;
  function onLocation(v, data) {
    const lps = rasToLps(data.mm);
    const val = data.values && data.values.length ? data.values[0].value : NaN;
    v.valueEl.textContent = fmt(val, 5) + " " + v.info.units;
    if (v === T.active || !T.active) {
      T.cursorEl.textContent = "(z, y, x) = " + lps.map((c) => c.toFixed(2)).join(", ") + " mm (LPS)";
    }
    if (syncing || !T.linked || v !== T.active) return;
    syncing = true;
    try {
      for (const o of T.viewers) {
        if (o === v || !o.nv.volumes.length) continue;
        o.nv.scene.crosshairPos = o.nv.mm2frac(data.mm);
        o.nv.drawScene();
        o.nv.createOnLocationChange();
      }
    } finally {
      syncing = false;
    }
  }

  T.setCursorLPS = function (zyx) {
    const ras = lpsToRas(zyx);
    for (const v of T.viewers) {
      v.nv.scene.crosshairPos = v.nv.mm2frac(ras);
      v.nv.drawScene();
    }
    syncing = true;
    try { for (const v of T.viewers) v.nv.createOnLocationChange(); } finally { syncing = false; }
  };

  T.cursorLPS = function (i) {
    const nv = T.viewers[i].nv;
    return rasToLps(Array.from(nv.frac2mm(nv.scene.crosshairPos, 0, true)).slice(0, 3));
  };

  T.setWindow = function (i, level, width) { applyWindow(T.viewers[i], level, width, true); };
  T.window = function (i) {
    const vol = T.viewers[i].nv.volumes[0];
    return [(vol.cal_max + vol.cal_min) / 2, vol.cal_max - vol.cal_min];
  };

  // ---------------------------------------------------------------------------------------- layout, clip
  T.setLayout = function (name) {
    if (!LAYOUTS.includes(name)) throw new Error("unknown layout " + name);
    for (const v of T.viewers) v.nv.setSliceType(sliceType(v.nv, name));
    const sel = document.querySelector(".tv-layout");
    if (sel) sel.value = name;
  };

  T.setRadiological = function (on) {
    for (const v of T.viewers) { v.nv.setRadiologicalConvention(!!on); v.nv.drawScene(); }
    const box = document.querySelector(".tv-radiological");
    if (box) box.checked = !!on;
    const label = document.querySelector(".tv-convention");
    if (label) label.textContent = on ? "radiological: patient's right on the screen's left"
                                      : "neurological: patient's right on the screen's right";
  };

  T.setClip = function (on, depth, azimuth, elevation) {
    for (const v of T.viewers) {
      v.nv.setClipPlane(on ? [depth, azimuth, elevation] : [2, 0, 0]);  // depth > 1.8 disables clipping
    }
  };

  function clipFromControls() {
    const on = document.querySelector(".tv-clip-on").checked;
    const d = parseFloat(document.querySelector(".tv-clip-depth").value);
    const a = parseFloat(document.querySelector(".tv-clip-azimuth").value);
    const e = parseFloat(document.querySelector(".tv-clip-elevation").value);
    T.setClip(on, d, a, e);
  }

  // view name -> NiiVue axCorSag code (0 axial, 1 coronal, 2 sagittal, 4 render)
  const VIEW_CODE = { axial: 0, coronal: 1, sagittal: 2, render: 4 };
  T.tileRect = function (i, view) {
    const nv = T.viewers[i].nv, canvas = T.viewers[i].canvas;
    const scale = canvas.width / canvas.clientWidth;
    const s = nv.screenSlices.find((t) => t.axCorSag === VIEW_CODE[view]);
    if (!s) return null;
    let [l, t, w, h] = s.leftTopWidthHeight;
    if (view !== "render") {
      // a single 2-D view fills the canvas; the slice image is fitted inside it, centred, keeping its aspect
      const range = nv.sceneExtentsMinMax(true)[2];
      const [ew, eh] = { axial: [range[0], range[1]], coronal: [range[0], range[2]], sagittal: [range[1], range[2]] }[view];
      const k = Math.min(w / ew, h / eh);
      l += (w - ew * k) / 2; t += (h - eh * k) / 2; w = ew * k; h = eh * k;
    }
    return { left: l / scale, top: t / scale, width: w / scale, height: h / scale };
  };
  T.nv = function (i) { return T.viewers[i].nv; };

  // ------------------------------------------------------------------------------------------- start-up
  async function loadOne(v) {
    const info = v.info;
    const t0 = performance.now();
    const resp = await fetch(info.url);
    if (!resp.ok) throw new Error(info.name + ": HTTP " + resp.status + " for " + info.url);
    const buffer = await resp.arrayBuffer();
    const t1 = performance.now();
    const fname = info.url.startsWith("data:") ? "volume.nii.gz" : info.url.split("/").pop();
    await v.nv.addVolumeFromUrl({ url: fname, name: fname, buffer: buffer, colormap: "gray" });
    applyWindow(v, info.window[0], info.window[1], false);
    T.timings.push({ name: info.name, fetch_ms: t1 - t0, load_ms: performance.now() - t1 });
  }

  // Without a GPU, WebGL runs in software (SwiftShader, llvmpipe) and large volumes draw slowly: say so.
  function noteSoftwareRendering(root, gl) {
    let renderer = "";
    try {
      const ext = gl.getExtension("WEBGL_debug_renderer_info");
      renderer = String(gl.getParameter(ext ? ext.UNMASKED_RENDERER_WEBGL : gl.RENDERER));
    } catch (e) { return; }
    T.renderer = renderer;
    const box = q(root, ".tv-notice");
    if (box && /swiftshader|llvmpipe|softpipe|software/i.test(renderer)) {
      const biggest = Math.max(...T.config.volumes.map((v) => v.shape[0] * v.shape[1] * v.shape[2]));
      box.textContent = "WebGL is running in software (" + renderer.slice(0, 60) + "), without a GPU: drawing is slow" +
        (biggest > 2000000 ? "; the first frame of a " + biggest.toLocaleString("en") + "-voxel volume can take " +
         "minutes (trabecula view --max-voxels 2000000 draws sooner)." : ".");
      box.hidden = false;
    }
  }

  function bindControls(root) {
    const layout = q(root, ".tv-layout");
    if (layout) layout.addEventListener("change", () => T.setLayout(layout.value));
    const rad = q(root, ".tv-radiological");
    if (rad) rad.addEventListener("change", () => T.setRadiological(rad.checked));
    const link = q(root, ".tv-link");
    if (link) link.addEventListener("change", () => { T.linked = link.checked; });
    for (const sel of root.querySelectorAll(".tv-clip-on, .tv-clip-depth, .tv-clip-azimuth, .tv-clip-elevation")) {
      sel.addEventListener("input", clipFromControls);
      sel.addEventListener("change", clipFromControls);
    }
    for (const v of T.viewers) {
      const apply = () => applyWindow(v, parseFloat(v.levelInput.value), parseFloat(v.widthInput.value), true);
      v.levelInput.addEventListener("change", apply);
      v.widthInput.addEventListener("change", apply);
      if (v.presetSelect) {
        v.presetSelect.addEventListener("change", () => {
          const p = T.config.presets[v.presetSelect.value];
          if (p) applyWindow(v, p[0], p[1], true);
        });
      }
      for (const type of ["pointerdown", "wheel", "keydown"]) {
        v.canvas.addEventListener(type, () => { T.active = v; }, { capture: true, passive: true });
      }
      // right-drag windowing in NiiVue changes cal_min/cal_max without a callback: pick it up on release
      v.canvas.addEventListener("pointerup", () => setTimeout(() => readWindowFromNiivue(v), 0));
    }
  }

  T.start = async function (rootId) {
    const root = document.getElementById(rootId);
    const cfgEl = document.getElementById("tv-config-" + rootId);
    try {
      if (!root || !cfgEl) throw new Error("viewer markup " + rootId + " missing");
      if (typeof niivue === "undefined" || !niivue.Niivue) throw new Error("NiiVue did not load");
      const config = JSON.parse(cfgEl.textContent);
      T.config = config;
      T.linked = config.link !== false;
      T.cursorEl = q(root, ".tv-cursor");
      const panels = root.querySelectorAll(".tv-panel");
      config.volumes.forEach((info, i) => {
        const panel = panels[i];
        const canvas = q(panel, "canvas.tv-canvas");
        const nv = new niivue.Niivue({
          backColor: [0, 0, 0, 1],
          show3Dcrosshair: true,
          isRadiologicalConvention: !!config.radiological,
          multiplanarShowRender: niivue.SHOW_RENDER.ALWAYS,
          dragMode: niivue.DRAG_MODE.windowing,
          crosshairColor: [1, 0.85, 0, 0.9],
          clipPlaneColor: [0, 0, 0, 0],
          loadingText: "loading " + info.name + " ...",
          isOrientationTextVisible: true,
          logLevel: "warn",
        });
        T.viewers.push({
          nv, canvas, info, panel, level: NaN, width: NaN,
          levelInput: q(panel, ".tv-level"), widthInput: q(panel, ".tv-width"),
          presetSelect: q(panel, ".tv-preset"), valueEl: q(panel, ".tv-value"),
        });
      });
      for (const v of T.viewers) await v.nv.attachToCanvas(v.canvas);
      noteSoftwareRendering(root, T.viewers[0].nv.gl);
      bindControls(root);
      await Promise.all(T.viewers.map(async (v) => {
        await loadOne(v);
        T.loaded += 1;
      }));
      for (const v of T.viewers) {
        v.nv.onLocationChange = (data) => onLocation(v, data);
        v.nv.setSliceType(sliceType(v.nv, config.layout || "multiplanar"));
        if (config.clip) v.nv.setClipPlane(config.clip);
        else v.nv.setClipPlane([2, 0, 0]);
      }
      // link 3-D rotation and zoom/pan between canvases (NiiVue's own sync, on user interaction)
      if (T.viewers.length > 1) {
        for (const v of T.viewers) {
          v.nv.broadcastTo(T.viewers.filter((o) => o !== v).map((o) => o.nv), { "3d": true, zoomPan: true });
        }
      }
      // start linked: every volume at the first one's centre, where that point lies inside it
      if (T.linked && T.viewers.length > 1) {
        const mm = T.viewers[0].nv.frac2mm(T.viewers[0].nv.scene.crosshairPos, 0, true);
        for (const o of T.viewers.slice(1)) {
          const f = o.nv.mm2frac(mm);
          if (Array.from(f).every((c) => c >= 0 && c <= 1)) o.nv.scene.crosshairPos = f;
        }
      }
      const tDraw = performance.now();
      T.setRadiological(!!config.radiological);
      for (const v of T.viewers) v.nv.createOnLocationChange();
      await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
      T.timings.push({ name: "first draw", draw_ms: performance.now() - tDraw });
      T.ready = true;
      root.dataset.ready = "1";
    } catch (err) {
      fail(err && err.message ? err.message : err);
    }
  };
})();
