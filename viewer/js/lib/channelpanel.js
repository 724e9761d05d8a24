// @ts-check
// The channel panel: a row per channel, "All on", "Reset", "Save as default", presets, mix mode.

import { createChannelRow } from "./channelrow.js";
import { BROWSER_MAX_VISIBLE } from "./compositor.js";
import { el } from "./dom.js";
import { bandGroupPreset, presetsFor, rgbPreset, trueColourPreset } from "./presets.js";
import { MAX_VISIBLE } from "./render.js";

const $ = (root, testid) => root.querySelector(`[data-testid="${testid}"]`);

/** An <option> of a preset or channel picker. */
function option(value, text) {
  return el("option", { value, textContent: text });
}

export class ChannelPanel {
  /**
   * @param {HTMLElement} root the panel (view.html's aside)
   * @param {object} image GET /v1/images/{id}
   * @param {object} settings render settings to show first
   * @param {object} hooks onChange(settings) after every edit; save(settings) -> Promise of the
   *   saved settings; defaults: the saved defaults ("Reset"); converterDefaults: the
   *   converter's own settings ("Converter's")
   */
  constructor(root, image, settings, { onChange, save, defaults, converterDefaults, showPca = () => {} }) {
    this.root = root;
    this.image = image;
    this.settings = settings;
    this.onChange = onChange;
    this.save = save;
    this.defaults = defaults;
    this.showPca = showPca;
    this.soloed = null; // {index, before: visibility of every channel before solo}
    this.rows = new Map();
    const list = $(root, "channel-rows");
    for (const channel of image.channels) {
      const row = createChannelRow(channel, {
        update: (index, changes) => this.update(index, changes),
        solo: (index) => this.solo(index),
      });
      this.rows.set(channel.index, row);
      list.append(row.element);
    }
    $(root, "channels-all-on").addEventListener("click", () => this.allOn());
    $(root, "channels-reset").addEventListener("click", () => this.apply(this.defaults));
    $(root, "channels-converter").addEventListener("click", () => this.apply(converterDefaults));
    $(root, "channels-save").addEventListener("click", () => this.saveDefaults());
    $(root, "panel-toggle").addEventListener("click", () => this.toggle());
    this.setUpPresets();
    this.show();
    root.hidden = false;
  }

  /** Show `settings` in every row (no notification). */
  show(settings = this.settings) {
    this.settings = settings;
    for (const setting of settings.channels) {
      this.rows.get(setting.index)?.show(setting, this.soloed?.index === setting.index);
    }
  }

  /** New settings from the panel: show them and tell the viewer. */
  apply(settings, keepSolo = false) {
    if (!keepSolo) this.soloed = null;
    this.show(settings);
    this.onChange(settings);
  }

  /** Show every channel, or the first MAX_VISIBLE (what the render model mixes at most). */
  allOn() {
    const channels = this.settings.channels.map((c, i) => ({ ...c, visible: i < MAX_VISIBLE }));
    if (channels.length > MAX_VISIBLE) this.status(`At most ${MAX_VISIBLE} channels are shown at once.`);
    this.apply({ channels });
  }

  update(index, changes) {
    const channels = this.settings.channels.map((c) => (c.index === index ? { ...c, ...changes } : c));
    if (channels.filter((c) => c.visible !== false).length > MAX_VISIBLE) {
      this.status(`At most ${MAX_VISIBLE} channels can be shown at once; hide one first.`, "error");
      this.show();
      return;
    }
    this.apply({ channels }, !("visible" in changes));
  }

  /** Show only channel `index`; pressed again, bring back what was visible before. */
  solo(index) {
    const { channels } = this.settings;
    if (this.soloed?.index === index) {
      const before = this.soloed.before;
      this.soloed = null;
      this.apply({ channels: channels.map((c) => ({ ...c, visible: before.get(c.index) })) });
      return;
    }
    const before = this.soloed?.before ?? new Map(channels.map((c) => [c.index, c.visible !== false]));
    this.soloed = { index, before };
    this.apply({ channels: channels.map((c) => ({ ...c, visible: c.index === index })) }, true);
  }

  async saveDefaults() {
    const button = $(this.root, "channels-save");
    button.disabled = true;
    try {
      this.defaults = await this.save(this.settings);
      this.status("Saved as this image's default view.", "ok");
    } catch (err) {
      this.status(`Not saved: ${err.message}`, "error");
    } finally {
      button.disabled = false;
    }
  }

  status(text, kind = "") {
    const line = $(this.root, "panel-status");
    line.textContent = text;
    line.dataset.kind = kind;
  }

  toggle() {
    const collapsed = this.root.dataset.collapsed !== "1";
    this.root.dataset.collapsed = collapsed ? "1" : "0";
    $(this.root, "panel-toggle").setAttribute("aria-expanded", String(!collapsed));
  }

  setUpPresets() {
    const presets = presetsFor(this.image.channels);
    // PCA weighs channels negatively: the server renders it once, at conversion (links.pca).
    if (this.image.links?.pca) presets.push({ id: "pca", label: "PCA → RGB (first three components)" });
    const select = $(this.root, "preset-select");
    const picks = $(this.root, "preset-picks");
    $(this.root, "presets").hidden = presets.length === 0;
    select.append(...presets.map((p) => option(p.id, p.label)));
    const pickers = ["r", "g", "b"].map((slot) => $(this.root, `preset-${slot}`));
    pickers.forEach((picker, slot) => {
      picker.append(option("", "none"), ...this.image.channels.map((c) => option(String(c.index), c.name)));
      picker.value = String(this.image.channels[slot]?.index ?? "");
      picker.addEventListener("change", () => this.applyRgb(pickers));
    });
    select.addEventListener("change", () => {
      picks.hidden = select.value !== "rgb";
      this.showPca(select.value === "pca");
      if (select.value === "rgb") this.applyRgb(pickers);
      if (select.value === "groups") this.apply(bandGroupPreset(this.settings, this.image.channels));
      if (select.value === "truecolour") this.apply(trueColourPreset(this.settings, this.image.channels));
    });
  }

  applyRgb(pickers) {
    this.apply(rgbPreset(this.settings, pickers.map((p) => (p.value === "" ? null : Number(p.value)))));
  }

  /** Native values under the cursor: Map(channel index -> {value}); others cleared. */
  showValues(values) {
    for (const [index, row] of this.rows) row.showValue(values.get(index)?.value);
  }

  /** Say who mixes: the browser (and its drawer) or the server. */
  showMode(mode, drawer) {
    const visible = this.settings.channels.filter((c) => c.visible !== false).length;
    const label = $(this.root, "mix-mode");
    label.textContent = mode === "browser" ? `browser mix · ${drawer}` : `server mix · ${visible} channels`;
    label.title = mode === "browser"
      ? `Up to ${BROWSER_MAX_VISIBLE} visible channels are mixed in the browser from downloaded tiles ` +
        `(OpenSeadragon ${drawer} drawer); changes need no download.`
      : `${visible} visible channels: over ${BROWSER_MAX_VISIBLE}, the server renders the mix, ` +
        "and each change downloads the tiles again.";
    label.dataset.mode = mode;
  }
}
