#!/usr/bin/env node
import { Command } from 'commander';
import { VERSION } from '../version.ts';
import { register as registerBackfill } from './commands/backfill.ts';
import { register as registerDlq } from './commands/dlq.ts';
import { register as registerDoctor } from './commands/doctor.ts';
import { register as registerRun } from './commands/run.ts';
import { register as registerSimulate } from './commands/simulate.ts';
import { register as registerStackit } from './commands/stackit.ts';
import { register as registerState } from './commands/state.ts';
import { register as registerStatus } from './commands/status.ts';
import { register as registerValidate } from './commands/validate.ts';

const program = new Command('auditlog-shipper')
  .description('Polls cloud audit-log APIs and ships every event, once, to your log stores.')
  .version(VERSION)
  .showHelpAfterError();

const commands = [
  registerRun,
  registerValidate,
  registerDoctor,
  registerSimulate,
  registerState,
  registerStatus,
  registerDlq,
  registerBackfill,
  registerStackit,
];
for (const register of commands) register(program);

await program.parseAsync(process.argv);
