export { backchannelLogout, type BackchannelLogoutOptions } from './receiver.js'
export { BACKCHANNEL_LOGOUT_EVENT, type LogoutToken } from './verify-logout-token.js'
export { LogoutRefusal } from './refusal.js'
