import type { SecurityEventToken } from './verify-set.js'

const CAEP = 'https://schemas.openid.net/secevent/caep/event-type/'
const RISC = 'https://schemas.openid.net/secevent/risc/event-type/'

/**
 * Events after which none of the subject's tokens issued before the event may be used:
 * its sessions are gone, its account is disabled or deleted, or a credential changed or
 * leaked. Every other event type is accepted and ignored (RFC 8417 §2.2; SSF 1.0 asks
 * receivers to ignore what they do not understand).
 */
const SESSION_REVOKED = CAEP + 'session-revoked'

export const REVOKING_EVENTS: ReadonlySet<string> = new Set([
  SESSION_REVOKED,
  CAEP + 'credential-change',
  RISC + 'account-disabled',
  RISC + 'account-purged',
  RISC + 'sessions-revoked',
  RISC + 'credential-compromise',
])

/** An RFC 9493 subject identifier: `{ format, ...members }`. */
export interface SubjectIdentifier {
  format: string
  [member: string]: unknown
}

export type ResolveSubject = (subId: SubjectIdentifier) => string | string[] | null | undefined | Promise<string | string[] | null | undefined>

export interface SubjectPolicy {
  /** `iss` values of `iss_sub` identifiers that name this API's token subjects. */
  tokenIssuers: ReadonlySet<string>
  resolveSubject: ResolveSubject | undefined
}

export interface RevokingEvent {
  type: string
  subId: SubjectIdentifier | undefined
  /**
   * The one session a CAEP `session-revoked` event names (a complex subject's `session`
   * member, an `opaque` id: the token's `sid`); undefined when it names none.
   */
  sessionId: string | undefined
  /**
   * The issuer a CAEP `session-revoked` event's session belongs to: that of the complex
   * subject's `iss_sub` user; undefined when it names none.
   */
  sessionIssuer: string | undefined
  /** When the event happened, ms; undefined when the SET does not say. */
  at: number | undefined
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v)
const isSubjectIdentifier = (v: unknown): v is SubjectIdentifier => isObject(v) && typeof v.format === 'string'

/**
 * The revoking events of a SET with their subject and time. The subject is the SET's
 * `sub_id` (SSF 1.0, CAEP 1.0), else the event's own `subject` (RISC and CAEP drafts).
 * The time is the event's `event_timestamp` (CAEP) or the SET's `toe` (RFC 8417 §2.2),
 * seconds; a time in the future is ignored (the revocation is then dated now).
 */
export function revokingEvents (set: SecurityEventToken, nowMs: number): RevokingEvent[] {
  const found: RevokingEvent[] = []
  for (const [type, payload] of Object.entries(set.events)) {
    if (!REVOKING_EVENTS.has(type)) continue
    const event = isObject(payload) ? payload : {}
    const subId = isSubjectIdentifier(set.sub_id) ? set.sub_id : isSubjectIdentifier(event.subject) ? event.subject : undefined
    const seconds = typeof event.event_timestamp === 'number' ? event.event_timestamp : set.toe
    const at = typeof seconds === 'number' && Number.isFinite(seconds) && seconds >= 0 && seconds * 1000 <= nowMs ? seconds * 1000 : undefined
    const session = type === SESSION_REVOKED ? sessionOf(subId) : undefined
    found.push({ type, subId, sessionId: session, sessionIssuer: session === undefined ? undefined : userIssuerOf(subId), at })
  }
  return found
}

const nonEmptyString = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && !v.includes('\u0000')

/**
 * The session of a complex subject (SSF 1.0 §3.2, CAEP's session-revoked example:
 * `{ format: 'complex', session: { format: 'opaque', id }, user: … }`), when its id is
 * opaque: the identity provider's session id, which its tokens carry as `sid`.
 */
function sessionOf (subId: SubjectIdentifier | undefined): string | undefined {
  if (subId?.format !== 'complex' || !isSubjectIdentifier(subId.session)) return undefined
  const session = subId.session
  return session.format === 'opaque' && nonEmptyString(session.id) ? session.id : undefined
}

/** The `iss` of a complex subject's `iss_sub` user. */
function userIssuerOf (subId: SubjectIdentifier | undefined): string | undefined {
  const user = subId?.format === 'complex' && isSubjectIdentifier(subId.user) ? subId.user : undefined
  return user?.format === 'iss_sub' && nonEmptyString(user.iss) ? user.iss : undefined
}

/** A token subject an identifier names, with the issuer it is a subject of when the identifier says (`iss_sub`). */
export interface TokenSubject {
  sub: string
  iss?: string
}

/**
 * The token subjects (`sub` values) an RFC 9493 identifier names: `iss_sub` from the
 * access tokens' issuer and `opaque` directly, `aliases` through its members, a complex
 * subject through its `user`, any other format through `resolveSubject`. Empty when nothing here can name a token subject.
 */
export async function subjectsOf (subId: SubjectIdentifier, policy: SubjectPolicy): Promise<TokenSubject[]> {
  if (subId.format === 'iss_sub') {
    if (nonEmptyString(subId.iss) && nonEmptyString(subId.sub) && policy.tokenIssuers.has(subId.iss)) return [{ sub: subId.sub, iss: subId.iss }]
  } else if (subId.format === 'opaque') {
    if (nonEmptyString(subId.id)) return [{ sub: subId.id }]
  } else if (subId.format === 'complex' && isSubjectIdentifier(subId.user) && subId.user.format !== 'complex') {
    // A complex subject names the user in its `user` member; its session and tenant are no token subject.
    const users = await subjectsOf(subId.user, policy)
    if (users.length > 0) return users
  } else if (subId.format === 'aliases' && Array.isArray(subId.identifiers)) {
    const all = await Promise.all(subId.identifiers.filter(isSubjectIdentifier).filter((id) => id.format !== 'aliases').map((id) => subjectsOf(id, policy)))
    // The same subject named twice (of the same issuer, or of none) is revoked once.
    return [...new Map(all.flat().map((s) => [`${s.iss ?? ''}\u0000${s.sub}`, s])).values()]
  }
  if (policy.resolveSubject === undefined || subId.format === 'aliases') return []
  const resolved = await policy.resolveSubject(subId)
  const list = resolved === null || resolved === undefined ? [] : Array.isArray(resolved) ? resolved : [resolved]
  return list.filter(nonEmptyString).map((sub) => ({ sub }))
}
