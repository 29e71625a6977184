// A process that owns a lab and then dies in a chosen way, for the lab's cleanup tests.
//   node --import tsx tools/scripts/lab-owner.mjs MODE     MODE: throw | exit | wait
// Prints one JSON line {id, netns} once the lab is up and a long-running process runs in it.
//   throw: uncaught exception   exit: process.exit(3)   wait: until a signal (the test sends it)
import { createLab } from "../src/lab/index.ts";

const mode = process.argv[2] ?? "wait";
const lab = await createLab({ hosts: ["a", "b"], extraHosts: ["hub"] });
lab.host("a").spawn("sleeper", ["sleep", "3600"]);
process.stdout.write(`${JSON.stringify({ id: lab.id, netns: [lab.lanNetns, ...lab.hosts.map((h) => h.netns)] })}\n`);
if (mode === "throw") setTimeout(() => { throw new Error("lab-owner: thrown on purpose"); }, 100);
else if (mode === "exit") setTimeout(() => process.exit(3), 100);
else setInterval(() => undefined, 60_000);
