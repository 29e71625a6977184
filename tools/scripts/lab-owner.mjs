// A process that owns a lab and then dies in a chosen way, for the lab's cleanup tests.
//   node --import tsx tools/scripts/lab-owner.mjs MODE     MODE: throw | exit | wait
// Prints one JSON line {id, netns} once the lab is up and a long-running process runs in it.
//   throw: uncaught exception   exit: process.exit(3)   wait: until a signal (the test sends it)
// throw and exit happen only on SIGUSR2, sent by the test once it has listed the lab's processes:
// a fixed delay raced the test on a loaded machine (the lab could be gone before it was counted).
import { createLab } from "../src/lab/index.ts";

const mode = process.argv[2] ?? "wait";
const lab = await createLab({ hosts: ["a", "b"], extraHosts: ["hub"] });
lab.host("a").spawn("sleeper", ["sleep", "3600"]);
setInterval(() => undefined, 60_000);
if (mode === "throw")
  process.once("SIGUSR2", () =>
    setImmediate(() => {
      throw new Error("lab-owner: thrown on purpose");
    }),
  );
else if (mode === "exit") process.once("SIGUSR2", () => setImmediate(() => process.exit(3)));
// Printed last: the test may signal as soon as it reads this line.
process.stdout.write(`${JSON.stringify({ id: lab.id, netns: [lab.lanNetns, ...lab.hosts.map((h) => h.netns)] })}\n`);
