import { ArmadaTokens, definePlugin, type ArmadaPlugin, type ConfigManagerRegistration } from '@armada/core';
import { PUPPET_CONFIG_MANAGER_ID, PuppetConfigManager } from './puppet.js';

export { PuppetConfigManager, PUPPET_CONFIG_MANAGER_ID, parsePuppetRun, redact } from './puppet.js';
export { renderPuppet, renderRole, PUPPET_ROOT, secretFact } from './render.js';

/** The plugin: registers config manager id `puppet`. */
export function puppetConfigManagerPlugin(): ArmadaPlugin {
  return definePlugin({
    specificationVersion: 'v1',
    id: '@armada/config-puppet',
    register(container) {
      const registration: ConfigManagerRegistration = { id: PUPPET_CONFIG_MANAGER_ID, create: () => new PuppetConfigManager() as never };
      container.register(ArmadaTokens.ConfigManager, { useValue: registration });
    },
  });
}
