/** Public API for embedding verifyd in an existing Express app. */
export { createVerificationRouter, type VerificationRouterDeps } from '../routes/index';
export { createApp } from './app';
export { buildConfig, type Config, loadConfig } from './config';
export { ConfigError, type ErrorCode, VerifydError } from './errors';
export { createLogger } from './logger';
export { createProviders } from './providers';
export { createStore, type Store } from './store';
/** For a custom Store without transactions: admit() built from its single-key operations. */
export { admitStepwise } from './store/admit-stepwise';
