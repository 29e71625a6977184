import { seededRandom } from "@potluck/gguf";
/**
 * What the retrieval bench stores and asks. Ten hand-written memories with one distinct question
 * each (recall must be 1.00: any truncation, reordering or dropped field on a path shows up), and
 * a seeded synthetic corpus for the latency sizes.
 */
export const distinctMemories: { text: string; question: string }[] = [
  {
    text: "The staging database runs PostgreSQL 16 and listens on port 5433.",
    question: "Which port does the staging PostgreSQL database listen on?",
  },
  {
    text: "School pickup for my daughter is at 3:15 pm on Wednesdays.",
    question: "What time is school pickup on Wednesday?",
  },
  {
    text: "The home router admin page is at 192.168.1.1; its password is in the vault.",
    question: "Where is the router admin page?",
  },
  {
    text: "Use pnpm, not npm, in the frontend monorepo.",
    question: "Which package manager does the frontend monorepo use?",
  },
  {
    text: "The Linux box has an RTX 2080 Ti GPU with 11 GB of VRAM.",
    question: "How much VRAM does the GPU in the Linux box have?",
  },
  { text: "Dentist appointment with Dr. Alvarez is booked for March 14.", question: "When is my dentist appointment?" },
  {
    text: "Production deploys happen on Tuesdays and Thursdays after standup.",
    question: "On which days do production deploys happen?",
  },
  { text: "The garage door keypad code is 4417.", question: "What is the garage door code?" },
  {
    text: "I prefer tabs over spaces and a line width of 100 characters.",
    question: "Which indentation and line width do I prefer?",
  },
  {
    text: "The cat takes her thyroid medication twice a day with food.",
    question: "How often does the cat take thyroid medication?",
  },
];

/** The tiny model's generator (mulberry32), so every run stores the same corpus. */
export { seededRandom };

const syllables = "ka lo mi ne su ta ri po de va shi gu ro ben tal mor fen dri qua zel pas nor vik lum sa".split(" ");

/** A vocabulary of pronounceable pseudo-words, so synthetic memories are distinct but word-like. */
export function vocabulary(size: number, random: () => number): string[] {
  const words = new Set<string>();
  while (words.size < size) {
    const parts = 2 + Math.floor(random() * 2);
    let word = "";
    for (let i = 0; i < parts; i++) word += syllables[Math.floor(random() * syllables.length)];
    words.add(word);
  }
  return [...words];
}

/**
 * `count` synthetic memories of 8-14 words: most words from one of `topicsCount` topic
 * vocabularies, a few from anywhere. Real stores are clustered by subject (field note 4), and
 * that structure is what an approximate index relies on; uniform word bags would make every
 * neighbour past the first a near-tie.
 */
export function syntheticTexts(count: number, seed = 7): string[] {
  const random = seededRandom(seed);
  const words = vocabulary(5_000, random);
  const pick = (from: readonly string[]) => from[Math.floor(random() * from.length)] ?? "x";
  const topicsCount = 500;
  const topics = Array.from({ length: topicsCount }, () => Array.from({ length: 40 }, () => pick(words)));
  const texts: string[] = [];
  for (let i = 0; i < count; i++) {
    const topic = topics[Math.floor(random() * topicsCount)] ?? words;
    const length = 8 + Math.floor(random() * 7);
    const picked: string[] = [];
    for (let j = 0; j < length; j++) picked.push(random() < 0.75 ? pick(topic) : pick(words));
    texts.push(picked.join(" "));
  }
  return texts;
}

/** A query built from part of a stored text plus question words: realistic partial overlap. */
export function questionFor(text: string, random: () => number): string {
  const words = text.split(" ").filter(() => random() < 0.6);
  return `what about ${words.join(" ")}?`;
}
