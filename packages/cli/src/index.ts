export { runCli, createProgram, EXIT_CODES_HELP } from './cli.js';
export { ExitCode } from './exit-codes.js';
export type { CliIO, CliReadable, CliWritable } from './io.js';
export {
  BUILT_IN_PROVIDERS,
  awsPluginFromEnv,
  createRegistry,
  digitalOceanEndpoint,
  digitalOceanPluginFromEnv,
  inMemoryPlugin,
  isBuiltInProvider,
  loadPluginModule,
  type BuiltInProviderId,
  type CreateRegistryOptions,
  type Env,
} from './registry.js';
export { UsageError, ViolationsError, describeError, type ErrorReport } from './errors.js';
export { CliRuntime, Session, withCommonOptions, type CommandHandler, type CommonOptions } from './session.js';
export { commands, type RegisterCommand } from './commands/index.js';
