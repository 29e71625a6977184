import type { FixAction, LayerCode, Severity } from "@potluck/protocol";
import { DetailKey, type Details } from "./detail.js";

/**
 * The check model, in the shape of Tailscale's health package: every layer is one registered
 * value with a code, a title, a severity, what it depends on, how long a failure must persist
 * before it is shown, and its named failures, each with a message and a concrete fix.
 */

/** What a fix or message may name: filled in per run so every fix is a command a person can type. */
export interface FixContext {
  /** This machine. */
  from: string;
  /** The machine the path leads to (equal to `from` for the local path). */
  peer: string;
  interfaceName: string;
  /** This machine's sidecar port. */
  localPort: number;
  peerPort: number;
  meshIp?: string;
  coordinatorUrl?: string;
  model?: string;
  /** This machine's OS (process.platform's names): a fix run here names its services in this OS's tools. */
  fromOs?: string;
  /** The peer's OS, once its capabilities said (or this machine's, on the local path); else unknown. */
  peerOs?: string;
  /** Facts the probes learned so far, e.g. the runtime's reason or the handshake age, as printable text. */
  detail: Details;
}

export interface FailureSpec {
  /** One sentence for the person: what is wrong, in this machine's terms. */
  message: (ctx: FixContext) => string;
  /** A command or a setting that fixes it, with machine and interface names filled in. */
  fix: (ctx: FixContext) => string;
  /** A fix the sidecar can apply for the user once they consent. */
  offerFix?: FixAction;
  /** A warning does not block the path (e.g. relayed): reported, never suppresses downstream. */
  warningOnly?: boolean;
}

/** `K`: the detail keys this check's probe may record (see `defineCheck`). */
export interface Check<K extends DetailKey = DetailKey> {
  code: LayerCode;
  title: string;
  severity: Severity;
  /** Layers that must pass before this one means anything; registered before it. */
  dependsOn: readonly LayerCode[];
  /** A failure shows only after persisting this long; 0 shows at once. Recovery always shows at once. */
  timeToVisibleMs: number;
  /** What an ok result says, given what the probe learned. */
  okMessage: (ctx: FixContext) => string;
  failures: Readonly<Record<string, FailureSpec>>;
  /** Every detail key this check's probe may record; recording any other is a programmer error. */
  detailKeys: readonly K[];
}

/** Keeps a check's detail keys as a literal union, so its probe's type allows exactly those. */
export function defineCheck<const K extends DetailKey>(check: Check<K>): Check<K> {
  return check;
}

const detailKeys: ReadonlySet<string> = new Set(Object.values(DetailKey));

export class DuplicateCheckError extends Error {
  override name = "DuplicateCheckError";
}

/**
 * The registry of checks, in registration order. Order is dependency order: a check may depend
 * only on checks registered before it, so walking the list never meets an unchecked dependency
 * and cycles cannot be expressed.
 */
export class CheckRegistry {
  readonly #checks = new Map<LayerCode, Check>();

  register(check: Check): Check {
    if (this.#checks.has(check.code)) throw new DuplicateCheckError(`check ${check.code} is already registered`);
    for (const dependency of check.dependsOn) {
      if (!this.#checks.has(dependency)) {
        throw new Error(`check ${check.code} depends on ${dependency}, which is not registered before it`);
      }
    }
    if (!(check.timeToVisibleMs >= 0)) throw new Error(`check ${check.code}: timeToVisibleMs must be ≥ 0`);
    for (const key of check.detailKeys) {
      if (!detailKeys.has(key)) throw new Error(`check ${check.code} declares ${key}, which is not a DetailKey`);
    }
    this.#checks.set(check.code, check);
    return check;
  }

  get(code: LayerCode): Check {
    const check = this.#checks.get(code);
    if (check === undefined) throw new Error(`no check registered for ${code}`);
    return check;
  }

  /** Every check, dependencies first. */
  ordered(): Check[] {
    return [...this.#checks.values()];
  }

  failure(code: LayerCode, name: string): FailureSpec {
    const spec = this.get(code).failures[name];
    if (spec === undefined) throw new Error(`check ${code} has no failure named ${name}`);
    return spec;
  }
}
