/**
 * Configuration: the parameter table, TOML loading, and errors.
 *
 * @module
 */

export { ConfigError } from "./config_error.ts";
export {
  findKeyLine,
  loadConfig,
  overrideName,
  readConfigFile,
  resolveConfigText,
} from "./load.ts";
export type { LoadedConfig, LoadOptions } from "./load.ts";
export { isParamName, MAX_TIME_SECONDS, PARAMS } from "./schema.ts";
export type { Config, ParamName, ParamSpec } from "./schema.ts";
export { parseTime, splitList, toToml } from "./coerce.ts";
export { type Retirable, retireAll, retireWith } from "./retire.ts";
export { readRegularFile, unreadableReason } from "./paths.ts";
