import { cloudscale } from './cloudscale/index.ts';
import type { AnySourceModule } from './source.ts';
import { stackit } from './stackit/index.ts';
import { stackitTelemetry } from './stackit-telemetry/index.ts';

/** Every provider the shipper knows. Adding one is a folder under src/sources and a line here. */
export const sourceModules: ReadonlyMap<string, AnySourceModule> = new Map(
  [stackit, stackitTelemetry, cloudscale].map((m) => [m.type, m]),
);
