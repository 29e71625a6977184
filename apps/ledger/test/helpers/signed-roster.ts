import { generateIdentity, privateKeyFromPem, signCoordinatorAnswer } from "@potluck/peer";
import { Hono } from "hono";

/** A hub's answer-signing key, as the coordinator holds it. */
export function hubKey(): { privateKey: ReturnType<typeof privateKeyFromPem>; publicKey: string } {
  const identity = generateIdentity();
  return { privateKey: privateKeyFromPem(identity.privateKeyPem), publicKey: identity.publicKey };
}

/** GET /v1/roster answering `body` signed by `key`, as the coordinator's signAnswers does. */
export function signedRoster(
  body: unknown,
  key: ReturnType<typeof hubKey>,
  onFetch: () => void = () => undefined,
): (req: Request) => Response | Promise<Response> {
  return new Hono().get("/v1/roster", (c) => {
    onFetch();
    const text = JSON.stringify(body);
    return c.body(text, 200, { "content-type": "application/json", ...signCoordinatorAnswer("/v1/roster", text, key) });
  }).fetch;
}
