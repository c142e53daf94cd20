/**
 * The Data API gateway: MongoDB Atlas Data API v1 (plus findOneAndUpdate, findOneAndDelete, bulkWrite,
 * createIndexes, listIndexes) in front of MongoDB or, in dev and tests, the embedded document engine.
 */
export { createGatewayApp, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_LIMIT, type GatewayAppOptions } from "./app";
// The embedded engine is exported as a type only, so importing the gateway never loads it (see backends/index.ts).
export { type BackendConfig, type EmbeddedBackend, MongoBackend, openBackend } from "./backends/index";
export type { Backend, BackendKind, Document, IndexSpec, Namespace } from "./backends/types";
export { GatewayError, type GatewayErrorCode } from "./errors";
export { type GatewayOptions, type RunningGateway, startGateway } from "./node";
