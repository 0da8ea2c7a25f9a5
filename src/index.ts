/** Public API for embedding verifyd in an existing Express app. */
export { createVerificationRouter, type VerificationRouterDeps } from '../routes/index';
export { createApp } from './app';
export { buildConfig, type Config, loadConfig } from './config';
export { ConfigError, type ErrorCode, VerifydError } from './errors';
export { createLogger } from './logger';
export { createProviders } from './providers';
export {
  type CompleteStore,
  createStore,
  type Store,
  type StoreCapabilities,
  type StorePrimitives,
} from './store';
/** A custom store implements StorePrimitives; this fills in what it does not do natively. */
export { completeStore } from './store/bridge';
