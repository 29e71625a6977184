import type { LayerCode } from "@potluck/protocol";

/**
 * Remembers since when each (path, layer) has been failing, so a failure shows only after it has
 * persisted for its layer's time-to-visible, and recovery shows at once (the state is forgotten
 * on the first pass). Bounded: the oldest path is forgotten past `pathsMax`.
 */
export class VisibilityTracker {
  readonly #brokenSince = new Map<string, Map<LayerCode, number>>();

  constructor(private readonly pathsMax: number) {}

  /** Records a failure first observed at `observedAt`; returns how long, by `now`, the layer has been failing. */
  failing(path: string, layer: LayerCode, observedAt: number, now: number): number {
    let layers = this.#brokenSince.get(path);
    if (layers === undefined) {
      layers = new Map();
      this.#brokenSince.set(path, layers);
      this.#evict();
    }
    const since = layers.get(layer) ?? observedAt;
    layers.set(layer, since);
    return now - since;
  }

  /** Since when `layer` has been failing on `path`, if it is. */
  since(path: string, layer: LayerCode): number | undefined {
    return this.#brokenSince.get(path)?.get(layer);
  }

  /** A pass, or a layer no longer checked because its upstream broke: its history no longer applies. */
  clear(path: string, layer: LayerCode): void {
    const layers = this.#brokenSince.get(path);
    if (layers === undefined) return;
    layers.delete(layer);
    if (layers.size === 0) this.#brokenSince.delete(path);
  }

  #evict(): void {
    while (this.#brokenSince.size > this.pathsMax) {
      const oldest = this.#brokenSince.keys().next().value;
      if (oldest === undefined) return;
      this.#brokenSince.delete(oldest);
    }
  }
}
