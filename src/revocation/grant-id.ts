import { randomBytes } from 'node:crypto'

/** A new client grant id, shaped like Auth0's (`cgr_…`), unguessable. */
export const newGrantId = (): string => 'cgr_' + randomBytes(12).toString('base64url')
