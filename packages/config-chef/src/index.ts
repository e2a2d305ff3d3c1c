import { ArmadaTokens, definePlugin, type ArmadaPlugin, type ConfigManagerRegistration } from '@armada/core';
import { CHEF_CONFIG_MANAGER_ID, ChefConfigManager } from './chef.js';

export { ChefConfigManager, CHEF_CONFIG_MANAGER_ID, parseChefRun } from './chef.js';
export { renderCookbook, renderRecipe, rubyString, CHEF_ROOT } from './render.js';

/** The plugin: registers config manager id `chef`. */
export function chefConfigManagerPlugin(): ArmadaPlugin {
  return definePlugin({
    specificationVersion: 'v1',
    id: '@armada/config-chef',
    register(container) {
      const registration: ConfigManagerRegistration = { id: CHEF_CONFIG_MANAGER_ID, create: () => new ChefConfigManager() as never };
      container.register(ArmadaTokens.ConfigManager, { useValue: registration });
    },
  });
}
