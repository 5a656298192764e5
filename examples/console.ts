// The admin console at /admin: one static page and its script, served with headers that
// keep it safe to open in a browser (no inline script or style runs, it cannot be framed,
// it calls only this origin, nothing is cached).
import type { FastifyInstance } from 'fastify'
import { readFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

export interface ConsoleOptions {
  /** Audience of admin tokens (the Management API's). */
  audience: string
  /** Where the admin routes are mounted. */
  adminBase: string
  tokenEndpoint: string
  /** The APIs whose grants and tokens the console manages. */
  apiAudiences: string[]
}

const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  // The sign-in form is sent by the script; a form that would submit itself (script blocked) must not.
  "form-action 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
].join('; ')

const files = {
  '/admin': { file: 'index.html', type: 'text/html; charset=utf-8' },
  '/admin/console.js': { file: 'console.js', type: 'text/javascript; charset=utf-8' },
  '/admin/console.css': { file: 'console.css', type: 'text/css; charset=utf-8' },
  '/admin/favicon.svg': { file: 'favicon.svg', type: 'image/svg+xml' },
} as const

export async function adminConsole (app: FastifyInstance, options: ConsoleOptions): Promise<void> {
  const open = { auth: false as const }
  // Registered unwrapped, so this hook covers the console's routes only.
  app.addHook('onSend', async (_request, reply) => {
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY)
    reply.header('x-content-type-options', 'nosniff')
    reply.header('x-frame-options', 'DENY')
    reply.header('referrer-policy', 'no-referrer')
    reply.header('cache-control', 'no-store')
  })
  for (const [path, { file, type }] of Object.entries(files)) {
    const body = await readFile(fileURLToPath(new URL(`./console/${file}`, import.meta.url)))
    app.get(path, { config: open }, async (_request, reply) => reply.type(type).send(body))
  }
  const config = JSON.stringify(options)
  app.get('/admin/config.json', { config: open }, async (_request, reply) => reply.type('application/json').send(config))
}
