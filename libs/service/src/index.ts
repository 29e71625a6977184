export { ArgsError, parseFlags, type FlagSpec, type ParsedFlags } from "./args.js";
