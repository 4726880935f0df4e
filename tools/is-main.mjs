// @ts-check
/**
 * @module is-main
 * Whether a module is the script Node was started with (and not imported, e.g. by a test).
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** @param {string} moduleUrl `import.meta.url` of the asking module */
export function isMain(moduleUrl) {
  try {
    return process.argv[1] !== undefined && realpathSync(process.argv[1]) === realpathSync(fileURLToPath(moduleUrl));
  } catch {
    return false;
  }
}
