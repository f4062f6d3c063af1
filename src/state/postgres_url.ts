/**
 * PostgreSQL connection URLs are read by the config (src/config/postgres_url.ts, where the config
 * validator checks them); the state store uses the same functions.
 * @module
 */
export * from "../config/postgres_url.ts";
