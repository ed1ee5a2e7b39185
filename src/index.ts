export * from './client/index.js';
export * as signing from './signing/index.js';
export { createGateway, type Gateway } from './gateway.js';
export { defaultConfig, loadConfigFile, configFromObject, readConfigFile, buildConfig, type Config, type LoadedConfig } from './config/config.js';
