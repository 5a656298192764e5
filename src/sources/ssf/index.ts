export { ssfReceiver, type SsfReceiverOptions } from './receiver.js'
export { REVOKING_EVENTS, type ResolveSubject, type SubjectIdentifier } from './events.js'
export { SetRefusal, type SetErrorCode } from './refusal.js'
