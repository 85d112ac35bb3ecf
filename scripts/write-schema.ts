/**
 * Writes config/schema.json, the JSON Schema editors use to check and complete config files
 * (`# yaml-language-server: $schema=./schema.json`). Run `npm run schema` after changing a config schema;
 * a test fails while the committed file is stale.
 */
import { writeFileSync } from 'node:fs';
import { renderJsonSchema, SCHEMA_FILE } from '../src/config/json-schema.ts';

writeFileSync(SCHEMA_FILE, renderJsonSchema());
console.log(`wrote ${SCHEMA_FILE.pathname}`);
