#!/usr/bin/env node
// The `fastify-jwt-revocation` command (package.json `bin`). Help: fastify-jwt-revocation --help
import { main } from './main.js'

main(process.argv.slice(2), { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env })
  .then((code) => { process.exitCode = code })
