#!/usr/bin/env node
import { main } from '../dist/src/cli/main.js';

// `kernelgate sign ... | head` closes the pipe early; that is not an error.
process.stdout.on('error', (error) => {
  if (error.code === 'EPIPE') process.exit(0);
  throw error;
});

const code = await main(process.argv.slice(2));
if (code >= 0) process.exitCode = code;
